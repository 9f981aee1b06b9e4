"""How long the grid will train, from training steps timed in the dry run.

The dry run (:func:`dcat.experiment.runner.dry_run`) already pushes a batch through every
model of the plan. :func:`time_task` times that step again once it is warm, on 2 samples and
on as many as take about 0.2 s (at most the training batch size), and fits
``fixed + per_sample · n``, so the step at the training batch size follows without running a
video step of that size. Before the first model trains, :func:`estimate_lines` prints::

    models × epochs × steps per epoch × measured step

summed over the models still to train (a finished model, its ``metrics.json`` in the results
folder, costs nothing), plus one pass of each cached source over its training part. Epochs are
the train configuration's ``max_epochs`` for the model's target modality (early stopping can
only end sooner); steps per epoch are ``ceil(training samples / batch_size)``. Validation, test
and data loading are not counted.

When the estimate passes :data:`LONG_ON_CPU_S` (30 minutes) and training runs on the CPU, the
console suggests lighter settings with the exact ``--set`` options: the small video encoder
(:class:`dcat.nn.encoders.video_small.SmallVideoEncoder`), fewer or smaller frames, fewer
epochs. The default encoder never depends on the hardware: a configuration builds the same
network wherever it runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from dcat.data import PairedDataset, Split
from dcat.data.registry import get_dataset
from dcat.experiment.config import ExperimentConfig
from dcat.experiment.plan import Job
from dcat.experiment.recipe import train_options
from dcat.training.run_folder import RunFolder
from dcat.training.tasks import TransferTask, UnimodalTask

__all__ = [
    "LONG_ON_CPU_S",
    "ModelCost",
    "StepTime",
    "break_even_s",
    "estimate_lines",
    "format_duration",
    "grid_costs",
    "time_step",
    "time_task",
    "workers_advice",
]

LONG_ON_CPU_S = 30 * 60
"""Above this estimate, on a CPU, the console suggests lighter settings."""

# What local workers cost and give, from benchmarks/bench_experiment.py on the 2-core CPU
# (2026-12-07; utd_mhad_paper's 60 models × 5 epochs, one thread a model): starting a local Ray
# instance and its workers, beyond a run in one process (workers_ray_start_s 10.96); the seconds
# a model costs besides its epochs, which the estimate's steps leave out (fixed_s_per_model
# 0.0651); and the throughput of 2 workers over one process once started (2.028). Together: 2
# workers pay from about 22 s of work in one process (workers_break_even_s 21.63).
RAY_START_S = 10.96
FIXED_S_PER_MODEL = 0.0651
TWO_WORKERS_SPEEDUP = 2.028

# Timed repeats of a step at one batch size: at most this many, and no more once this many
# seconds are spent (a video step of a third of a second is timed once: the dry run stays short).
_MAX_REPEATS, _TIME_BUDGET_S = 5, 0.3
# A step slower than this is timed at 4 samples and scaled in proportion (time_task).
_SLOW_S = 0.05
# A dry-run check slower than this stands for a step on 2 samples: a first step's extra cost is
# negligible beside it. A faster check is timed again warm, since a cold first step (kernel
# choices, allocations, a loaded machine) can take ten times a warm one.
_TRUSTED_S = 1.0
# The second batch size timed is the one whose step takes about this long (see time_task).
_PROBE_S = 0.2

DryRunKey = tuple[str, str, str]
"""``(target, method, source)``: the models of the plan that share one dry-run step."""


@dataclass(frozen=True)
class StepTime:
    """Seconds of one training step (forward, loss, backward) on ``n`` samples:
    ``fixed_s + per_sample_s · n``.

    Attributes:
        fixed_s: What a step costs whatever its size (≥ 0).
        per_sample_s: What each sample adds (≥ 0).
        sources_s: The part of the step spent in frozen source networks, which a source
            cache serves instead (``None``: no source network), as its own ``StepTime``.
    """

    fixed_s: float
    per_sample_s: float
    sources_s: StepTime | None = None

    def seconds(self, samples: int, *, cached_sources: bool = False) -> float:
        """One step on ``samples`` samples; ``cached_sources``: without the source networks."""
        total = self.fixed_s + self.per_sample_s * samples
        if cached_sources and self.sources_s is not None:
            total -= self.sources_s.seconds(samples)
        return max(total, 0.0)


def time_step(
    step: Callable[[int], None], sizes: Sequence[int], *, warm: Collection[int] = ()
) -> StepTime:
    """Time ``step(n)`` (one forward and backward on ``n`` samples) at each of ``sizes`` and
    fit ``fixed + per_sample · n``.

    A size not in ``warm`` is run once untimed first: the first step of a shape pays for
    allocations and kernel choices that later steps do not. Each size is then timed once, and
    again while under 0.3 s have been spent (five times at most), and the fastest kept: the
    others measure what else the machine was doing. With one size the fit goes through zero
    (all per sample).

    Args:
        step: Runs one step on its argument's number of samples.
        sizes: Batch sizes to time, e.g. ``(2, 4)``; distinct, positive.
        warm: Sizes that have already run once.

    Returns:
        The fitted :class:`StepTime` (without ``sources_s``).
    """
    return _fit({size: _fastest(step, size, warm=size in warm) for size in sizes})


def _fastest(step: Callable[[int], None], size: int, *, warm: bool) -> float:
    """The fastest of a few timed ``step(size)`` (see :func:`time_step`)."""
    if not warm:
        step(size)
    spent = 0.0
    times: list[float] = []
    while len(times) < _MAX_REPEATS and (not times or spent < _TIME_BUDGET_S):
        started = time.perf_counter()
        step(size)
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return min(times)


def _fit(fastest: Mapping[int, float], *, proportional: bool = False) -> StepTime:
    """``fixed + per_sample · n`` through the smallest and the largest size's time, or, with
    ``proportional``, no fixed cost and the least time per sample of any size (a busy machine
    only ever slows a step down, so the least is the best measured)."""
    (small, t_small), (large, t_large) = min(fastest.items()), max(fastest.items())
    if small == large or proportional:
        return StepTime(0.0, min(t / n for n, t in fastest.items()))
    # a noisy machine can time the larger batch faster: then the step is all fixed cost
    per_sample = max(t_large - t_small, 0.0) / (large - small)
    return StepTime(max(t_small - per_sample * small, 0.0), per_sample)


def time_task(
    task: UnimodalTask | TransferTask,
    train: PairedDataset,
    batch_size: int,
    threads: int | None = None,
    *,
    check_s: float | None = None,
) -> StepTime:
    """Time ``task``'s training step (forward, loss, backward) on 2 samples of ``train``
    and on as many as take about :data:`_PROBE_S` (at most ``batch_size``), and, for a
    transfer, the part of it its source networks take.

    A cheap step is thus timed at the training batch size itself, and ``fixed + per_sample ·
    n`` fitted through the two sizes. A slower one (video: a second or more at the batch
    size) is timed at 4 samples and scaled in proportion: its cost is all per sample (the
    least per sample of the two sizes is taken), and a slope between 2 and 4 samples
    extrapolated to 32 would multiply the timing noise by 15. A step whose check took over a
    second is not timed again on 2 samples: the dry run's check (``check_s``) stands for it,
    so that timing costs the dry run one step on 4 samples. A quicker check is timed again
    warm: a cold first step can take ten times a warm one.

    Args:
        task: The model's task, as the dry run built it, after one step on 2 samples (the
            dry run's check), so that nothing cheap is timed cold.
        train: Training samples to draw the batches from.
        batch_size: The batch size the model trains with.
        threads: torch's intra-op threads while timing (the ``resources.cpus`` the models
            train with); ``None`` leaves them.
        check_s: Seconds the check's step took (on the threads torch had before).
    """
    from torch.utils.data import default_collate

    batches: dict[int, Any] = {}

    def collate(samples: int) -> int:  # outside the timed steps
        batches[samples] = default_collate([train[i] for i in range(samples)])
        return samples

    def step(samples: int) -> None:
        task(batches[samples])["loss"].backward()
        task.zero_grad(set_to_none=True)

    networks = [s for s in task.specs if s.name in task.sources] if isinstance(
        task, TransferTask
    ) else []  # fmt: skip
    transfer = cast(TransferTask, task)  # used for networks only, which only a transfer has

    def sources(samples: int) -> None:
        for spec in networks:
            transfer.source_outputs(spec, batches[samples])

    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        first, limit = min(2, len(train)), min(batch_size, len(train))
        # the check ran on the threads of before: it stands for a step on others only then
        check = check_s if threads in (None, before) else None
        slow = check is not None and check > _SLOW_S
        if check is not None and check > _TRUSTED_S:  # trusted
            fastest = {first: check}
        else:
            fastest = {first: _fastest(step, collate(first), warm=True)}
        larger = min(limit, max(2 * first, int(first * _PROBE_S / max(fastest[first], 1e-6))))
        if larger > first:
            fastest[larger] = _fastest(step, collate(larger), warm=slow)
        proportional = larger < limit  # not timed at the batch size
        timing = _fit(fastest, proportional=proportional)
        if networks:  # run inside the steps above: warm
            sizes = [larger] if proportional else list(fastest)
            for n in sizes:
                if n not in batches:  # a trusted check timed 2 samples alone
                    collate(n)
            inside = {n: _fastest(sources, n, warm=True) for n in sizes}
            sources_s = _fit(inside, proportional=proportional)
            return StepTime(timing.fixed_s, timing.per_sample_s, sources_s)
        return timing
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class ModelCost:
    """What one model of the grid costs to train.

    Attributes:
        job: The model.
        epochs: Its epochs (``max_epochs`` of its target's train configuration).
        steps: Training steps per epoch, ``ceil(training samples / batch_size)``.
        step_s: Seconds per step at its batch size (source networks left out when cached).
    """

    job: Job
    epochs: int
    steps: int
    step_s: float

    @property
    def seconds(self) -> float:
        """``epochs × steps × step_s``."""
        return self.epochs * self.steps * self.step_s


def _key(job: Job) -> DryRunKey:
    return (job.target, job.method, job.source)


def grid_costs(
    config: ExperimentConfig,
    jobs: Sequence[Job],
    splits: Mapping[tuple[int, int], Split],
    timings: Mapping[DryRunKey, StepTime],
    out: Path,
) -> tuple[list[ModelCost], float]:
    """The cost of each model still to train, and of the source passes their caches need.

    Args:
        config: The experiment.
        jobs: The plan.
        splits: The drawn splits by ``(index in config.splits, seed)``.
        timings: Step times by dry-run key (:data:`DryRunKey`).
        out: The results folder: a model whose ``metrics.json`` is there costs nothing.

    Returns:
        The models' costs (plan order) and the seconds of one pass of each cached source
        network over the training part of its split and seed.
    """
    kinds: list[str] = [s.label for s in config.splits]
    costs, passes = [], {}
    for job in jobs:
        if RunFolder(out / job.folder).finished():
            continue
        train = train_options(config, job.target, job.seed)
        samples = len(splits[kinds.index(job.split), job.seed].train)
        batch = min(train.batch_size, samples)
        timing = timings[_key(job)]
        step = timing.seconds(batch, cached_sources=train.cache_sources)
        costs.append(ModelCost(job, train.max_epochs, math.ceil(samples / batch), step))
        networks = [p.modality for p in job.parts if p.needs_network]
        if train.cache_sources and timing.sources_s is not None and networks:
            # each source's pass is shared by the models of its split and seed; the sources
            # of one model were timed together, so each is given an equal share
            share = math.ceil(samples / batch) * timing.sources_s.seconds(batch) / len(networks)
            for modality in networks:
                passes[job.split, job.seed, modality] = share
    return costs, sum(passes.values())


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2 h 30 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _on_cpu(config: ExperimentConfig, jobs: Sequence[Job]) -> str | None:
    """``None`` when every model trains on the CPU, else the accelerator one trains on."""
    for job in jobs:
        accelerator = train_options(config, job.target, job.seed).accelerator
        if accelerator != "cpu" and (accelerator != "auto" or torch.cuda.is_available()):
            return accelerator
    return None


def estimate_lines(
    config: ExperimentConfig,
    data: PairedDataset,
    jobs: Sequence[Job],
    splits: Mapping[tuple[int, int], Split],
    timings: Mapping[DryRunKey, StepTime],
    out: Path,
    *,
    workers: int = 1,
    local_ray: bool = False,
) -> list[str]:
    """The console lines of the grid's estimate, printed before the first model trains.

    Args:
        config, jobs, splits, timings, out: As :func:`grid_costs`.
        data: The data set (its video shapes, for the suggestions).
        workers: Models trained at once.
        local_ray: The workers are a Ray instance this run started on this machine: a line
            says when the grid is too small for them to pay (:func:`workers_advice`).

    Returns:
        One line with the total and its arithmetic for the costliest kind of model, and, when
        the total is long on a CPU (:data:`LONG_ON_CPU_S`), lines suggesting lighter settings.
    """
    accelerator = _on_cpu(config, jobs)
    if accelerator is not None:
        return [
            f"grid estimate: none (the dry run times steps on the CPU; training runs on "
            f"{accelerator})"
        ]
    costs, passes = grid_costs(config, jobs, splits, timings, out)
    if not costs:
        return ["grid estimate: every model is finished; nothing to train"]
    total = sum(c.seconds for c in costs) + passes
    groups: dict[DryRunKey, list[ModelCost]] = {}
    for cost in costs:
        groups.setdefault(_key(cost.job), []).append(cost)
    key, members = max(groups.items(), key=lambda item: sum(c.seconds for c in item[1]))
    steps = sorted({c.steps for c in members})
    what = f"{key[2]}→{key[0]}" if key[2] else key[0]
    largest = (
        f"largest: {what} {key[1]}, {len(members)} × {members[0].epochs} epochs × "
        f"{steps[0] if len(steps) == 1 else f'{steps[0]}–{steps[-1]}'} steps × "
        f"{members[0].step_s:.3g} s = {format_duration(sum(c.seconds for c in members))}"
    )
    shared = f"; {workers} at once: ≈ {format_duration(total / workers)}" if workers > 1 else ""
    advice = workers_advice(total, len(costs), workers) if local_ray else None
    # a refit's epochs are its original's best epoch: unknown until the original is trained
    uncounted = "validation, loading and refits" if config.refit else "validation and loading"
    lines = [
        f"grid estimate: ≈ {format_duration(total)} on the CPU for {len(costs)} "
        f"model{'s' if len(costs) != 1 else ''} "
        f"(models × epochs × steps × the step timed in the dry run; {largest}; {uncounted} "
        f"not counted){shared}"
    ]
    if advice is not None:
        lines.append(advice)
    if total > LONG_ON_CPU_S:
        lines += _suggestions(config, data, costs)
    return lines


def workers_advice(seconds: float, models: int, workers: int) -> str | None:
    """One line when ``models`` whose epochs take ``seconds`` in one process are likely to
    finish later on ``workers`` local Ray workers than in one process, else ``None``.

    One process takes ``seconds + models · FIXED_S_PER_MODEL``; the workers take
    :data:`RAY_START_S` more to start, then run ``TWO_WORKERS_SPEEDUP / 2`` as fast per worker.
    """
    if workers < 2:
        return None
    alone = seconds + models * FIXED_S_PER_MODEL
    shared = RAY_START_S + alone / (workers * TWO_WORKERS_SPEEDUP / 2)
    if shared < alone:
        return None
    return (
        f"{models} small model{'s' if models != 1 else ''} (≈ {format_duration(alone)} in one "
        f"process): --workers {workers} is likely slower than one process here (starting Ray "
        f"and its workers takes ≈ {format_duration(RAY_START_S)}; workers pay from ≈ "
        f"{format_duration(break_even_s(workers))} of training)"
    )


def break_even_s(workers: int) -> float:
    """Seconds of a run in one process above which ``workers`` local workers finish first."""
    speedup = workers * TWO_WORKERS_SPEEDUP / 2
    return RAY_START_S * speedup / (speedup - 1) if speedup > 1 else math.inf


def _suggestions(
    config: ExperimentConfig, data: PairedDataset, costs: Sequence[ModelCost]
) -> list[str]:
    """Lighter settings, each with the ``--set`` options that choose it."""
    lines = [f"that is long for a CPU (over {LONG_ON_CPU_S // 60} min); lighter settings:"]
    modalities = {c.job.target for c in costs} | {p.modality for c in costs for p in c.job.parts}
    declared = {o.name for o in get_dataset(config.data.dataset).options}
    for name in sorted(m for m in modalities if len(data.shape(m)) == 4):
        spec = config.modalities[name]
        if spec.encoder == "video":
            options = f" --set modalities.{name}.options={{}}" if spec.options else ""
            lines.append(
                f"  a lighter video encoder (3-D convolutions, about 13× fewer FLOPs than "
                f"ResNet-18): --set modalities.{name}.encoder=video_small{options}"
            )
        frames, _, height, width = data.shape(name)
        sets = _frame_options(config, declared, name, frames, (height, width))
        if sets:
            lines.append(
                f"  fewer or smaller frames for {name} (now {frames} of {height}×{width}; the "
                f"step scales with both): {sets}"
            )
    halved = _halved_epochs(config, costs)
    if halved:
        lines.append(f"  fewer epochs: {halved}")
    return lines


def _halved_epochs(config: ExperimentConfig, costs: Sequence[ModelCost]) -> str:
    """``--set`` options halving the epochs of every model, each under the key that sets them
    (a modality's own ``train.max_epochs``, else the experiment's)."""
    keys: dict[str, int] = {}
    for cost in costs:
        own = "max_epochs" in config.modalities[cost.job.target].train
        key = f"modalities.{cost.job.target}.train.max_epochs" if own else "train.max_epochs"
        keys[key] = max(keys.get(key, 0), cost.epochs)
    return " ".join(
        f"--set {key}={epochs // 2}" for key, epochs in sorted(keys.items()) if epochs > 1
    )


def _frame_options(
    config: ExperimentConfig, declared: set[str], name: str, frames: int, size: tuple[int, int]
) -> str:
    """``--set`` options halving the frames and the frame size of video modality ``name``, as
    its data set's reader names them (``""`` when it has no such option)."""
    frames_key: str | None
    size_key: str | None
    if config.data.dataset == "manifest":  # per modality, under data.options.media
        frames_key, size_key = f"media.{name}.frames", f"media.{name}.size"
    else:  # a reader's own options, e.g. frames and size, or avletters' lips_size
        frames_key = "frames" if "frames" in declared else None
        size_key = next((k for k in ("size", f"{name}_size") if k in declared), None)
    sets = []
    if frames_key is not None and frames > 1:
        sets.append(f"--set data.options.{frames_key}={frames // 2}")
    if size_key is not None and min(size) > 1:
        sets.append(f"--set data.options.{size_key}=[{size[0] // 2},{size[1] // 2}]")
    return " ".join(sets)
