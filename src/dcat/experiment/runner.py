"""The paper's protocol end to end (docs/design.md, "The protocol") → a results folder.

For every split kind and seed: draw the split (saved), fit normalisation on its training part,
train a unimodal baseline per modality (each is also the frozen source of transfers from that
modality), then for every source → target pair train a fresh target with each requested method
and the λ sweep, and evaluate every model on the test part. Then write ``results.json``,
``results.csv`` and ``report.md`` with plots.

Run folder::

    OUT/config.yaml                 resolved configuration and versions
    OUT/experiment.log              every line of every run on this folder, with Lightning's
    OUT/dcat.lock                   while a run holds the folder (dcat.io.lock)
    OUT/splits/<kind>_seed<k>.json  the splits (indices, and subjects by name)
    OUT/runs/<kind>/seed<k>/<target>/<method>/   one engine run each (checkpoints, logs, metrics)
    OUT/results.json, results.csv   one record per trained model
    OUT/report.md, OUT/*.png        tables like the paper's II–IV, plots

A finished model (its ``metrics.json`` present) is not trained again, and an interrupted one
resumes from its last checkpoint, so running the same command again completes a run.

Models are trained in plan order in this process, or with ``workers`` > 1 as Ray tasks
(:mod:`dcat.experiment.cluster`); both train each model with
:func:`dcat.experiment.grid.train_model`, so with the same torch threads (``resources.cpus``)
they give the same records.

Bad input (the data, reader and encoder options, every split of every seed, checkpoints an
earlier run left in the folder) is found before the folder is written to (a folder the run
created to hold its lock is removed again); the cases and their messages are catalogued in
``docs/errors.md``. The lock and Ray (``workers`` > 1) come first, before the data are read.
SIGINT and SIGTERM end the run through its ``finally`` (:mod:`dcat.io.interrupt`): the lock is
released, and the model being trained resumes from its ``last.ckpt`` the next time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from dcat.data import PairedDataset, Split, make_split, resolve_subjects
from dcat.data.registry import get_dataset
from dcat.data.splits import labelled_share, left_out, subject_name
from dcat.data.virtual import with_virtual_imu
from dcat.errors import DcatError
from dcat.experiment.build import (
    augmentation,
    build_net,
    make_task,
    net_of,
    normalization_kinds,
    teacher_lacks,
    teacher_net,
    teacher_of,
    teachers,
)
from dcat.experiment.config import ExperimentConfig, SplitConfig
from dcat.experiment.console import Console, quiet_libraries
from dcat.experiment.estimate import DryRunKey, StepTime, estimate_lines, time_task
from dcat.experiment.fingerprint import (
    FINGERPRINT_FILE,
    digest,
    find_mismatches,
    job_fingerprints,
    mismatch_message,
)
from dcat.experiment.grid import ModelResult, ModelSpec, clear_cache, run_in_order
from dcat.experiment.pick import mark_picks
from dcat.experiment.plan import Job, learns_without_labels, plan_jobs, trained_here
from dcat.experiment.recipe import Recipe, train_options
from dcat.experiment.teachers import TeacherWatch
from dcat.io.atomic import write_atomic
from dcat.io.lock import RunLock
from dcat.training.methods import get_method
from dcat.training.provenance import versions
from dcat.training.run_folder import RunFolder

if TYPE_CHECKING:
    from dcat.experiment.cluster import RaySession

# Samples per modality in the dry run's batch: two, so batch norm sees a batch, not one value.
_DRY_RUN_SAMPLES = 2

__all__ = [
    "RESULT_FIELDS",
    "Job",
    "build_net",
    "dry_run",
    "load_dataset",
    "plan_jobs",
    "run_experiment",
]

RESULT_FIELDS = [
    "dataset", "split", "seed", "source", "target", "method", "lambda", "mcma",
    "accuracy", "precision", "recall", "f1", "val_f1", "pick", "refit", "run",
]  # fmt: skip
"""Columns of ``results.csv``: test metrics, the validation F1 the pick is chosen by, whether
the model is its split, seed and target's pick (:mod:`dcat.experiment.pick`), and whether it
is a refit on training and validation data (``refit: true`` in the configuration)."""


def load_dataset(config: ExperimentConfig) -> PairedDataset:
    """Read the configured data set through the data-set registry (:mod:`dcat.data.registry`).

    Raises:
        DcatError: An unknown data set, unknown or mistyped ``data.options``, a missing
            ``data.root``, or bad files.
    """
    data = config.data
    return derive_modalities(config, get_dataset(data.dataset).load(data.root, dict(data.options)))


def derive_modalities(config: ExperimentConfig, data: PairedDataset) -> PairedDataset:
    """``data`` plus the modalities the configuration derives from others
    (``modalities.<name>.derive``: channels, or a virtual IMU from a skeleton); already-present
    ones are kept as they are. Derivation reads the raw arrays, before any normalisation.

    Raises:
        DcatError: The base modality is not in the data set, or the channels do not fit it.
    """
    for name, spec in config.modalities.items():
        if spec.derive is None or name in data.modalities:
            continue
        where = f"config: modalities.{name}.derive"
        if spec.derive.modality not in data.modalities:
            raise DcatError(
                f"{where}: modality {spec.derive.modality!r} is not in the data set "
                f"{config.data.dataset!r}, which has {data.modalities}"
            )
        virtual = spec.derive.virtual_imu
        try:
            if virtual is None:
                data = data.with_channels(name, spec.derive.modality, spec.derive.channel_indices())
            else:
                data = with_virtual_imu(
                    data, name, spec.derive.modality, virtual.like,
                    segment=virtual.segment, placement=virtual.placement_map(),
                    joints=virtual.joint_names(), smoothing=virtual.smoothing,
                )  # fmt: skip
        except DcatError as err:
            raise DcatError(f"{where}: {err}") from err
    return data


# Channel names that mark a series as inertial (accelerometer, gyroscope, magnetometer).
_INERTIAL = ("acc", "gyr", "mag")


def default_encoder(data: PairedDataset, modality: str) -> str:
    """The encoder a modality gets when its config names none: ``video`` for frames,
    ``audio`` for sound, ``imu`` for inertial series and ``sequence`` for any other series.

    A series is inertial when its acc/gyr/mag channels (by name) come in whole triads and are
    at least half of its channels: extra channels beside them (orientation ``ori_*``, a
    quaternion, temperature) still give ``imu``, which reads any channel count.
    """
    stream = data.stream(modality)
    if len(data.shape(modality)) == 4 or stream.kind == "video":
        return "video"
    if stream.kind == "audio":
        return "audio"
    names = [name.lower() for name in stream.channels or ()]
    inertial = sum(any(mark in name for mark in _INERTIAL) for name in names)
    return "imu" if inertial and inertial % 3 == 0 and 2 * inertial >= len(names) else "sequence"


def default_encoders(
    config: ExperimentConfig, data: PairedDataset, log: Callable[[str], None] = print
) -> ExperimentConfig:
    """``config`` with an encoder for every modality that names none and is in the data (see
    :func:`default_encoder`); an audio encoder gets the stream's sample rate."""
    modalities = dict(config.modalities)
    for name, spec in config.modalities.items():
        if spec.encoder is not None or name not in data.modalities:
            continue
        encoder = default_encoder(data, name)
        options = dict(spec.options)
        rate = data.stream(name).rate_hz
        if encoder == "audio" and rate is not None and "sample_rate" not in options:
            options["sample_rate"] = round(rate)
        modalities[name] = spec.model_copy(update={"encoder": encoder, "options": options})
        log(f"modality {name}: encoder {encoder} (default for its {data.stream(name).kind} data)")
    return config.model_copy(update={"modalities": modalities})


def _check_augmentation(config: ExperimentConfig, data: PairedDataset) -> None:
    for modality, spec in config.data.augment.items():
        where = f"config: data.augment.{modality}"
        if modality not in data.modalities:
            raise DcatError(f"{where}: modality {modality!r} is not in the data set")
        shape = data.shape(modality)
        if len(shape) != 2:
            raise DcatError(f"{where}: inertial augmentation needs (C, T) series, got {shape}")
        if spec.rotation > 0 and shape[0] % 3:
            raise DcatError(
                f"{where}: rotation needs channels in (x, y, z) triads, {modality!r} has {shape[0]}"
            )


def _record(job: Job, metrics: dict, dataset: str) -> dict[str, Any]:
    test = metrics["test"]
    return {
        "dataset": dataset, "split": job.split, "seed": job.seed,
        "source": job.source, "target": job.target, "method": job.method,
        "lambda": job.weight, "mcma": job.mcma,
        "accuracy": test["acc"], "precision": test["precision"], "recall": test["recall"],
        "f1": test["f1"], "val_f1": metrics.get("val", {}).get("f1"), "refit": job.refit,
        "run": job.folder,
    }  # fmt: skip


def _check_data(config: ExperimentConfig, data: PairedDataset, jobs: list[Job]) -> None:
    missing = [m for m in config.modalities if m not in data.modalities]
    # a derived modality's own problems are named by derive_modalities
    missing = [m for m in missing if config.modalities[m].derive is None]
    if missing:
        raise DcatError(
            f"config: modalities {missing} are not in the data set "
            f"{config.data.dataset!r}, which has {data.modalities}"
        )
    pairs = {(p.modality, job.target, p.base) for job in jobs for p in job.parts}
    for source, target, method in sorted(pairs):
        if {source, target} <= set(data.modalities):
            get_method(method).check_data(
                (source, data.shape(source)), (target, data.shape(target))
            )


_Checked = tuple[
    list[Recipe], dict[tuple[int, int], Split], dict[str, dict[str, Any]], list[Any],
    dict[DryRunKey, StepTime],
]  # fmt: skip
"""What :func:`_check_everything` returns."""


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    *,
    data: PairedDataset | None = None,
    log: Callable[[str], None] = print,
    retrain_changed: bool = False,
    workers: int = 1,
    cluster: str | None = None,
    verbose: bool = False,
    progress: bool | None = None,
) -> Path:
    """Run the protocol and write the results folder; returns the path of ``report.md``.

    Args:
        config: The experiment.
        out_dir: Results folder (created; an existing one is completed, not overwritten).
        data: The data set, if already loaded (default: :func:`load_dataset`).
        log: Where progress lines go (all of them are also appended to
            ``OUT/experiment.log``).
        retrain_changed: Retrain the models in ``out_dir`` that were trained with other
            settings (and those that depend on them) instead of refusing to run.
        workers: Models trained at once. ``1`` trains them in order in this process (no
            Ray); more runs each model as a Ray task (:mod:`dcat.experiment.cluster`), with
            the same results.
        cluster: With ``workers`` > 1, the Ray cluster to join (default ``RAY_ADDRESS``,
            else a local Ray instance).
        verbose: Show Lightning's banners and tips and the known third-party warnings
            (:mod:`dcat.experiment.console`); they always go to the log file.
        progress: Show a progress bar (default: when stderr is a terminal and ``log`` is
            print).

    Raises:
        DcatError: Bad input, found before anything is written: the data and reader options,
            every split, a network or method that does not fit the data (the dry run), or
            models in ``out_dir`` trained with other settings (unless ``retrain_changed``);
            ``workers`` < 1; Ray missing or its cluster unreachable for ``workers`` > 1;
            another run holding ``out_dir``'s lock (found first, before the data are read).
        dcat.io.interrupt.Interrupted: The run was stopped by SIGINT or SIGTERM (raised where
            the main thread was when a :func:`~dcat.io.interrupt.interruptible` caller set
            the handler; Lightning's own exit on SIGTERM becomes one too).
    """
    from dcat.experiment.report import write_report  # matplotlib only when a report is written

    _check_workers(workers, cluster)
    # under DDP every rank runs the protocol in step; only rank 0 speaks and keeps the log
    rank = _rank()
    console = Console(
        log if rank == 0 else _silent, verbose=verbose, progress=progress if rank == 0 else False
    )
    out = Path(out_dir)
    lock = _take_lock(out, console, rank)
    ray = ExitStack()
    try:
        with quiet_libraries(verbose):
            session = _join_ray(ray, config, workers, cluster, verbose)
            data = derive_modalities(config, data) if data is not None else load_dataset(config)
            config = default_encoders(config, data, console.line)
            checked = _check_everything(config, data, out, retrain_changed)
        counts = np.bincount(data.labels[data.labelled], minlength=data.num_classes).tolist()
        out.mkdir(parents=True, exist_ok=True)  # (ranks other than 0)
        with console.recording(out / "experiment.log" if rank == 0 else None):
            local = session is not None and session.own_instance
            _start_folder(config, data, out, console, checked, counts, workers, local)
            grid = _Grid(config, data, out, console, workers, cluster, session)
            records = _train_grid(config, data, checked, grid)
            _write_results(out, records)
            jobs = [recipe.job for recipe in checked[0]]  # the plan the run was made from
            report = write_report(out, records, config, data, jobs)
            console.line(f"report: {report}")
            return report
    finally:
        ray.close()
        clear_cache()
        lock.release()


def _take_lock(out: Path, console: Console, rank: int) -> RunLock:
    """The lock of ``out`` (:mod:`dcat.io.lock`), held by rank 0 on return; release it when
    the run ends.

    Raises:
        DcatError: Another run holds ``out``.
    """
    # One run per folder: a second one would write the same checkpoints. Taken before the data
    # are read (minutes, for some), so a second run is refused at once; the folder it creates
    # goes again if the run stops before writing there (bad input leaves no folder). Under DDP
    # every rank runs this; rank 0 holds the lock for them all.
    lock = RunLock(out, warn=console.line, create=True)
    if rank == 0:
        lock.acquire()
    return lock


def _check_workers(workers: int, cluster: str | None) -> None:
    """Refuse a bad ``workers``/``cluster`` pair, and a missing Ray, before anything is written.

    Raises:
        DcatError: ``workers`` < 1, a ``cluster`` with one worker, or Ray not installed for
            ``workers`` > 1.
    """
    if workers < 1:
        raise DcatError(f"--workers must be at least 1, got {workers}")
    if cluster is not None and workers == 1:
        raise DcatError(f"--cluster {cluster} needs --workers N with N > 1 (models at once)")
    if workers > 1:
        from dcat.experiment.cluster import require_ray

        require_ray()


def _join_ray(
    stack: ExitStack, config: ExperimentConfig, workers: int, cluster: str | None, verbose: bool
) -> RaySession | None:
    """With ``workers`` > 1, join (or start) Ray for the whole run, closed with ``stack``; it
    comes before the data, so an unreachable cluster is said at once. ``None`` without Ray.

    Raises:
        DcatError: The cluster cannot be reached, or a local instance cannot start.
    """
    if workers == 1:
        return None
    from dcat.experiment.cluster import ray_session

    cpus = config.resources.cpus
    return stack.enter_context(ray_session(cluster, workers, cpus, verbose))


def _start_folder(
    config: ExperimentConfig,
    data: PairedDataset,
    out: Path,
    console: Console,
    checked: _Checked,
    counts: list[int],
    workers: int,
    local_ray: bool = False,
) -> None:
    """Write ``config.yaml`` and the splits, clear the models to retrain, and say what the run
    will do: the data, what each split leaves out, the retrains and the time estimate (and,
    on workers of a Ray instance started here, whether the grid is large enough for them).

    Args:
        config: The experiment, encoders resolved.
        data: The data set.
        out: The results folder.
        console: Where the lines go.
        checked: What :func:`_check_everything` found.
        counts: Samples per class, in ``data.class_names`` order.
        workers: Models at once.
        local_ray: The workers are a Ray instance this run started (see ``estimate_lines``).
    """
    recipes, splits, _fingerprints, mismatches, timings = checked
    jobs = [recipe.job for recipe in recipes]
    write_atomic(
        out / "config.yaml", yaml.safe_dump(_resolved(config, data, counts), sort_keys=False)
    )
    console.line(
        f"dcat experiment {config.name!r}: {len(data)} samples of {data.name}, "
        f"{len(jobs)} models to train → {out}" + (f" on {workers} workers" if workers > 1 else "")
    )
    shown = ", ".join(f"{c} {n}" for c, n in zip(data.class_names, counts, strict=True))
    unlabelled = len(data) - int(data.labelled.sum())
    tail = f"; {unlabelled} unlabelled (training data only)" if unlabelled else ""
    console.line(f"samples per class: {shown}{tail}")
    for modality in teachers(config):
        teacher = teacher_of(config, data, modality)
        lacks = teacher_lacks(config, data, modality)
        said = f"; it was not trained on the classes {lacks}" if lacks else ""
        console.line(
            f"teacher of {modality} trained elsewhere: {teacher.origin} (weights and card "
            f"{teacher.digest[:12]}){said}"
        )
    for line in _left_out_lines(config, data, splits):
        console.line(line)
    for mismatch in mismatches:  # and those that depend on them
        console.line(f"retraining {mismatch.describe()}")
        shutil.rmtree(out / mismatch.run, ignore_errors=True)
    for (i, seed), split in splits.items():
        (out / "splits").mkdir(exist_ok=True)
        split.save(
            out / "splits" / f"{config.splits[i].label}_seed{seed}.json",
            data.subjects,
            data.subject_names,
        )
    # after the retrains are cleared: the models finished before cost nothing
    for line in estimate_lines(
        config, data, jobs, splits, timings, out, workers=workers, local_ray=local_ray
    ):
        console.line(line)


def _resolved(config: ExperimentConfig, data: PairedDataset, counts: list[int]) -> dict[str, Any]:
    """What ``config.yaml`` records: the configuration, the versions and the data set read."""
    return {
        "experiment": config.to_dict(),
        "versions": versions(),
        "data": {
            "name": data.name,
            "samples": len(data),
            "classes": data.class_names,
            "class_counts": dict(zip(data.class_names, counts, strict=True)),
            "modalities": data.modalities,
            "group": getattr(data, "group", "subject"),
        },
    }


def _train_grid(
    config: ExperimentConfig, data: PairedDataset, checked: _Checked, grid: _Grid
) -> list[dict[str, Any]]:
    """Train (or read) every planned model, then the refits when asked; their records, picks
    marked."""
    recipes, splits, fingerprints, _mismatches, _timings = checked
    specs = [
        ModelSpec(
            recipe,
            splits[_split_index(config, recipe.job.split), recipe.job.seed],
            fingerprints[recipe.job.folder],
            sources=_source_runs(config, recipe.job),
        )
        for recipe in recipes
    ]
    results = grid.run(specs, label=lambda spec: spec.describe())
    records = [_record(recipe.job, results[recipe.job.folder], data.name) for recipe in recipes]
    if config.refit:
        records = _refit(config, data, recipes, records, splits, fingerprints, grid)
    return mark_picks(records + _teacher_records(config, data, splits), config.selection)


def _teacher_records(
    config: ExperimentConfig, data: PairedDataset, splits: dict[tuple[int, int], Split]
) -> list[dict[str, Any]]:
    """Each teacher trained elsewhere, evaluated on every split's validation and test parts
    (as its modality's baseline would be), so the report shows what it knows where the
    student is tested: a record per split and seed, its run ``teachers/<modality>``."""
    from dcat.training.engine import evaluate
    from dcat.training.tasks import UnimodalTask

    records: list[dict[str, Any]] = []
    for modality in teachers(config):
        task = UnimodalTask(teacher_net(config, data, modality), modality)
        # its inputs normalised as it was trained (fit_stats gives its modality the same)
        own = teacher_of(config, data, modality).normalization
        stats = {modality: own} if own is not None else {}
        seen: dict[bytes, dict[str, Any]] = {}  # splits of fixed subjects share their parts
        for (i, seed), split in splits.items():
            key = split.val.tobytes() + b"|" + split.test.tobytes()
            if key not in seen:
                val, test = (
                    data.subset(p).select([modality]).normalized(stats)
                    for p in (split.val, split.test)
                )
                seen[key] = {"val": evaluate(task, val), "test": evaluate(task, test)}
            job = Job(config.splits[i].label, seed, modality, "baseline")
            records.append({**_record(job, seen[key], data.name), "run": f"teachers/{modality}"})
    return records


def _check_everything(
    config: ExperimentConfig, data: PairedDataset, out: Path, retrain_changed: bool
) -> _Checked:
    """What can be checked is checked before anything is written or trained, so a bad option
    or a bad split of the last seed does not fail a run hours in, beside finished models.

    Returns:
        The plan's recipes, the splits by ``(split index, seed)``, the fingerprints by run
        folder, the finished models of other settings to retrain and the dry run's step times.
    """
    jobs = plan_jobs(config)  # the plan, made once: everything below reads it
    # teachers trained elsewhere: read, their cards checked against the data, classes mapped
    teacher_digests = {m: teacher_of(config, data, m).digest for m in teachers(config)}
    _check_data(config, data, jobs)
    _check_augmentation(config, data)
    recipes = [Recipe.of(config, job) for job in jobs]  # the plan made into recipes, once
    normalization_kinds(config, data)  # checked against the data set
    subject_lists = [
        _subject_lists(data, split_cfg, i) for i, split_cfg in enumerate(config.splits)
    ]
    splits = {
        (i, seed): _draw_split(data, split_cfg, i, seed, subject_lists[i])
        for i, split_cfg in enumerate(config.splits)
        for seed in config.seeds
    }
    jobs = _unlabelled_training(config, data, jobs, splits)
    kept = set(jobs)
    recipes = [recipe for recipe in recipes if recipe.job in kept]
    timings = dry_run(config, data, jobs, data.subset(splits[0, config.seeds[0]].train))
    fingerprints = job_fingerprints(
        config,
        recipes,
        class_names=data.class_names,
        data_digests={m: data.fingerprint([m]) for m in config.modalities},
        split_digests={
            (config.splits[i].label, seed): _split_digest(split)
            for (i, seed), split in splits.items()
        },
        split_subjects={
            split_cfg.label: subject_lists[i] for i, split_cfg in enumerate(config.splits)
        },
        teacher_digests=teacher_digests,
    )
    mismatches = find_mismatches(out, fingerprints)
    if mismatches and not retrain_changed:
        raise DcatError(mismatch_message(out, mismatches))
    retrain = {m.run for m in mismatches}
    for recipe in recipes:  # models finished by an earlier run must fit this configuration
        job = recipe.job
        run_dir = out / job.folder
        reused = job.folder not in retrain and RunFolder(run_dir).finished()
        if reused and job.method == "baseline":
            RunFolder(run_dir).load_target(net_of(recipe, data))
    return recipes, splits, fingerprints, mismatches, timings


def _unlabelled_training(
    config: ExperimentConfig,
    data: PairedDataset,
    jobs: list[Job],
    splits: dict[tuple[int, int], Split],
) -> list[Job]:
    """``jobs`` without those that need labels in a split whose training part has none (a
    manifest of unlabelled recordings): there only the methods that learn without labels train,
    from teachers trained elsewhere; with a source trained here, or no such method, it is
    refused.

    Raises:
        DcatError: Naming the split, and the sources trained here or the lack of methods.
    """
    empty = {
        config.splits[i].label
        for (i, _seed), split in splits.items()
        if not data.labelled[np.setdiff1d(split.train, split.hidden)].any()
    }
    if not empty:
        return jobs
    name = sorted(empty)[0]
    here = sorted({p.modality for j in jobs if j.split in empty for p in j.parts
                   if p.needs_network and trained_here(config, p.modality)})  # fmt: skip
    kept = [j for j in jobs if j.split not in empty or learns_without_labels(j)]
    if here or not any(j.split in empty for j in kept):
        why = (
            f"the sources {here} would be trained on them (give modalities.{here[0]}.teacher, "
            "a model trained elsewhere)"
            if here
            else "no method of the run learns without labels (e.g. logit_kd, pseudo_label)"
        )
        raise DcatError(
            f"config: splits: {name}: its training part has no labelled sample, and {why}"
        )
    return kept


def _source_runs(config: ExperimentConfig, job: Job) -> tuple[str, ...]:
    """Run folders of the baselines ``job`` learns from (a method of samples needs none, and a
    teacher trained elsewhere has none)."""
    return tuple(
        job.baseline(p.modality).folder
        for p in job.parts
        if p.needs_network and trained_here(config, p.modality)
    )


def _silent(line: str) -> None:
    """Where a DDP rank other than 0 sends its lines."""


def _rank() -> int:
    """This process's global rank under DDP (torchrun, srun, Lightning's launcher); 0 alone."""
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _split_index(config: ExperimentConfig, kind: str) -> int:
    return next(i for i, s in enumerate(config.splits) if s.label == kind)


class _Grid:
    """Trains specs in this process or on Ray workers and reports each on the console."""

    def __init__(
        self,
        config: ExperimentConfig,
        data: PairedDataset,
        out: Path,
        console: Console,
        workers: int,
        cluster: str | None,
        session: RaySession | None = None,
    ) -> None:
        self.config, self.data, self.out, self.console = config, data, out, console
        self.workers, self.cluster = workers, cluster
        self.session = session  # the run's Ray, when it has one (workers > 1)
        self.token = uuid.uuid4().hex
        # a source at chance or weaker than its target is named once its baselines are in
        self.teachers = TeacherWatch(config, data.num_classes, console.line)

    def run(
        self, specs: list[ModelSpec], label: Callable[[ModelSpec], str]
    ) -> dict[str, dict[str, Any]]:
        """Train every spec (those finished before are read); run folder → metrics."""
        results: dict[str, dict[str, Any]] = {}
        todo = []
        for spec in specs:
            folder = RunFolder(self.out / spec.folder)
            if folder.finished():
                results[spec.folder] = folder.read_metrics()
            else:
                todo.append(spec)
        console = self.console

        def line(spec: ModelSpec, result: ModelResult) -> None:
            results[spec.folder] = result.metrics
            when = "(done before)" if not result.trained else f"({result.seconds:.1f} s)"
            text = f"{label(spec)} f1={result.metrics['test']['f1']:.3f} {when}"
            console.line(console.finished(spec.folder, text, trained=result.trained))
            self.teachers.add(spec.job, result.metrics, len(spec.split.val))

        def started(spec: ModelSpec) -> None:
            console.started(spec.folder, label(spec))

        with console.grid(len(specs)):
            for spec in specs:  # in plan order, as a run in order always wrote them
                if spec.folder in results:
                    line(spec, ModelResult(spec.folder, results[spec.folder], False, 0.0))
            self._say_other_threads([s.folder for s in specs if s.folder in results])
            if self.workers == 1 or len(todo) < 2:
                run_in_order(
                    self.config, self.data, todo, self.out, token=self.token,
                    started=started, done=line,
                )  # fmt: skip
            else:
                from dcat.experiment.cluster import run_on_ray

                run_on_ray(
                    self.config, self.data, todo, self.out, token=self.token,
                    workers=self.workers, address=self.cluster, verbose=console.verbose,
                    session=self.session, started=started, done=line,
                )  # fmt: skip
        return results

    def _say_other_threads(self, folders: list[str]) -> None:
        """One line per thread count, other than ``resources.cpus``, that models finished
        before trained with: their fingerprints match (resources are not in them), but on the
        CPU another thread count may round differently, so they may differ from a fresh run."""
        cpus = self.config.resources.cpus
        found = Counter(RunFolder(self.out / f).threads() for f in folders)
        for threads, count in sorted((t, n) for t, n in found.items() if t not in (None, cpus)):
            self.console.line(
                f"{count} model{'s' if count != 1 else ''} finished before trained with "
                f"{threads} torch thread{'s' if threads != 1 else ''}, and resources.cpus is "
                f"{cpus} now: on the CPU their numbers may differ from a fresh run's (set "
                f"resources.cpus: {threads} to match them, or delete them to retrain)"
            )


def _refit(
    config: ExperimentConfig,
    data: PairedDataset,
    recipes: list[Recipe],
    records: list[dict[str, Any]],
    splits: dict[tuple[int, int], Split],
    fingerprints: dict[str, dict[str, Any]],
    grid: _Grid,
) -> list[dict[str, Any]]:
    """``records`` with, after each split's, the refits of its seeds: each target's baseline,
    plain reference and pick (marked by :func:`mark_picks` on validation, over every seed of
    the split, as the ``mean`` rule needs) retrained on training and validation parts together
    for the epoch count of the original's best validation F1.

    Inputs keep the training part's normalisation, so that a refit sees its sources' inputs
    as the original did. The sources are the baselines trained on the training part, or with
    ``refit_sources`` their refits, trained first (a source's refit is recorded too).
    """
    # the models to ship: those of the targets (a source-only baseline is never deployed)
    targets = {t.target for t in config.transfers} or set(config.modalities)
    picked = mark_picks(records, config.selection)  # picks are per split: one call serves all
    jobs = [recipe.job for recipe in recipes]
    chosen = [  # the plan lists each split's jobs together, in the configuration's order
        recipe
        for recipe, record in zip(recipes, picked, strict=True)
        if recipe.job.target in targets
        and (recipe.job.method in ("baseline", "plain") or record["pick"])
    ]
    teachers: list[Recipe] = []
    if config.refit_sources:
        by_folder = {recipe.job.folder: recipe for recipe in recipes}
        needed = dict.fromkeys(f for recipe in chosen for f in _source_runs(config, recipe.job))
        refitted = {recipe.job.folder for recipe in chosen}  # a target's baseline is already
        teachers = [by_folder[folder] for folder in needed if folder not in refitted]
    # a source's refit first: the plan order, and Ray waits on ModelSpec.sources
    specs = [_refit_spec(config, recipe, splits, fingerprints, grid) for recipe in teachers]
    specs += [_refit_spec(config, recipe, splits, fingerprints, grid) for recipe in chosen]
    results = grid.run(
        specs, label=lambda s: f"refit {s.describe()}, {s.epochs} epochs on train + val,"
    )
    out: list[dict[str, Any]] = []
    for split_cfg in config.splits:  # each split's records, then its refits
        out += [r for job, r in zip(jobs, records, strict=True) if job.split == split_cfg.label]
        out += [
            _record(spec.job, results[spec.folder], data.name)
            for spec in specs
            if spec.job.split == split_cfg.label
        ]
    return out


def _refit_spec(
    config: ExperimentConfig,
    recipe: Recipe,
    splits: dict[tuple[int, int], Split],
    fingerprints: dict[str, dict[str, Any]],
    grid: _Grid,
) -> ModelSpec:
    """The refit of one model of the grid: its epoch count is that of its best validation F1,
    its fingerprint the original's with the refit's (a refit whose original, epoch count or
    sources changed is trained again)."""
    job = recipe.job
    original = RunFolder(grid.out / job.folder).read_metrics()
    epochs = int(original["val"]["epoch"]) + 1
    # only a model that reads a source network has a teacher to refit (not one of samples)
    refits_sources = config.refit_sources and bool(_source_runs(config, job))
    again = replace(job, refit=True, sources_refit=refits_sources)
    what: dict[str, Any] = {"of": job.folder, "digest": digest(fingerprints[job.folder]),
                            "epochs": epochs}  # fmt: skip
    if again.sources_refit:  # absent otherwise: refits of earlier versions still match
        what["sources"] = list(_source_runs(config, again))
    fingerprint = {**fingerprints[job.folder], "refit": what}
    recorded = grid.out / again.folder / FINGERPRINT_FILE
    # an interrupted refit too: it would resume from a checkpoint of the other configuration
    started = RunFolder(grid.out / again.folder).has_state() and recorded.is_file()
    if started and json.loads(recorded.read_text()) != fingerprint:
        grid.console.line(f"retraining {again.folder}: its original, epoch count or sources "
                          "changed")  # fmt: skip
        shutil.rmtree(grid.out / again.folder)
    split = splits[_split_index(config, job.split), job.seed]
    sources = _source_runs(config, again)
    return ModelSpec(replace(recipe, job=again), split, fingerprint, sources, epochs)


def _split_digest(split: Split) -> str:
    digest = hashlib.sha256()
    for name, indices in split.parts().items():
        digest.update(name.encode())
        digest.update(np.asarray(indices, dtype=np.int64).tobytes())
    if split.hidden.size:  # a label-efficiency point: which training labels are hidden
        digest.update(b"hidden")
        digest.update(split.hidden.tobytes())
    return digest.hexdigest()


def dry_run(
    config: ExperimentConfig, data: PairedDataset, jobs: list[Job], train: PairedDataset
) -> dict[DryRunKey, StepTime]:
    """Build every network of the plan and push one tiny batch of real training data through
    each model's task (forward, loss, backward) on the CPU, every source → target pair included.
    Then time that step, warm, at two batch sizes (:func:`dcat.experiment.estimate.time_task`):
    the grid's estimate before training is made from it.

    Args:
        config: The experiment.
        data: The data set (its shapes size the networks).
        jobs: The plan.
        train: Training samples to draw the batch from (the first split's training part).

    Returns:
        The step times by ``(target, method, source)``.

    Raises:
        DcatError: A network or method that does not fit the data: names the model, the error
            and the shapes of the batch.
    """
    from torch.utils.data import default_collate

    count = min(_DRY_RUN_SAMPLES, len(train))
    batch = default_collate([train[i] for i in range(count)])
    shapes = ", ".join(f"{m} {tuple(x.shape)}" for m, x in batch["inputs"].items())
    baselines = {
        modality: build_net(config, data, modality, 0)
        for modality in dict.fromkeys(j.target for j in jobs if j.method == "baseline")
    }
    baselines |= {m: teacher_net(config, data, m) for m in teachers(config)}
    timings: dict[DryRunKey, StepTime] = {}
    for job in jobs:
        key = (job.target, job.method, job.source)  # λ scales the loss, never the shapes
        if key in timings:
            continue
        what = job.target if not job.source else f"{job.source} → {job.target} {job.method}"
        net = baselines[job.target] if job.method == "baseline" else None
        try:
            plain = job.method == "plain"
            net = net if net is not None else build_net(config, data, job.target, 0, plain=plain)
            task = make_task(job, net, baselines, augmentation(config, job.target, {}))
            started = time.perf_counter()
            loss = task(batch)["loss"]
            loss.backward()
            check_s = time.perf_counter() - started  # a slow step is not timed again on 2
            batch_size = train_options(config, job.target, job.seed).batch_size
            timings[key] = time_task(
                task, train, batch_size, config.resources.cpus, check_s=check_s
            )
        except (ValueError, RuntimeError, TypeError, KeyError) as err:
            raise DcatError(
                f"dry run of the {what} model on one batch of training data ({shapes}): "
                f"{err}".replace("\n", " ")
            ) from err
        finally:
            for model in (net, *baselines.values()):
                if model is not None:
                    model.zero_grad(set_to_none=True)
    return timings


_SUBJECT_LISTS = ("train_subjects", "val_subjects", "test_subjects")


def _subject_lists(
    data: PairedDataset, split_cfg: SplitConfig, index: int
) -> dict[str, list[int] | None]:
    """The subject lists of ``config.splits[index]``, written as the subjects are named in the
    data, as the data's subject ids (:func:`dcat.data.resolve_subjects`)."""
    lists: dict[str, list[int] | None] = {}
    for field in _SUBJECT_LISTS:
        written = getattr(split_cfg, field)
        lists[field] = None if written is None else resolve_subjects(
            data.subjects, data.subject_names, written, f"config: splits[{index}].{field}"
        )  # fmt: skip
    return lists


def _draw_split(
    data: PairedDataset,
    split_cfg: SplitConfig,
    index: int,
    seed: int,
    subjects: dict[str, list[int] | None],
) -> Split:
    """The split ``config.splits[index]`` at ``seed``, every class in its training part;
    ``subjects`` holds its subject lists as ids (:func:`_subject_lists`)."""
    try:
        split = make_split(
            data.labels, data.subjects, split_cfg.kind, seed=seed,
            test_size=split_cfg.test_size, val_size=split_cfg.val_size,
            train_subjects=subjects["train_subjects"], val_subjects=subjects["val_subjects"],
            test_subjects=subjects["test_subjects"], val_rotation=split_cfg.val_rotation,
            subject_names=data.subject_names,
        )  # fmt: skip
        left_out(split, data.subjects, data.subject_names, data.recordings, data.group)
        if data.labelled[split.train].any():  # else: _unlabelled_training
            _check_classes(data, split, split_cfg.kind, seed)
        split = _point(data, split_cfg, split)
    except ValueError as err:
        # a curve's points are listed in place of their split: the point names itself
        where = f"splits[{index}]" if split_cfg.labelled is None else f"splits: {split_cfg.label}"
        raise DcatError(f"config: {where}: {err}") from err
    return split


def _point(
    data: PairedDataset,
    split_cfg: SplitConfig,
    split: Split,
) -> Split:
    """``split`` as the point ``split_cfg.labelled`` of a label-efficiency curve: the labels
    of the training samples outside its labelled part hidden; named ``split_cfg.label``."""
    labelled = split_cfg.labelled
    if labelled is None:
        return replace(split, name=split_cfg.name or "")
    if isinstance(labelled, list):
        known = resolve_subjects(data.subjects, data.subject_names, labelled, "labelled")
        stray = sorted(set(known) - set(np.unique(data.subjects[split.train]).tolist()))
        if stray:
            names = [subject_name(s, data.subject_names) for s in stray]
            raise DcatError(
                f"labelled {data.group}s {names} have no training sample in seed {split.seed}'s "
                f"split (the labelled {data.group}s must be training {data.group}s)"
            )
        kept = split.train[np.isin(data.subjects[split.train], known)]
    else:
        kept = labelled_share(data.labels, data.subjects, split.train, labelled, split.seed)
    kept = kept[data.labelled[kept]]
    point = split.hiding(kept, split_cfg.label)
    if kept.size:
        _check_classes(data, replace(point, train=kept), split_cfg.label, split.seed)
    return point


def _left_out_lines(
    config: ExperimentConfig, data: PairedDataset, splits: dict[tuple[int, int], Split]
) -> list[str]:
    """A line per split whose subject lists leave subjects out on purpose, so that it is never
    silent (the lists are the same for every seed, so the first seed's split says it)."""
    lines = []
    for i, split_cfg in enumerate(config.splits):
        split = splits[i, config.seeds[0]]
        left = left_out(split, data.subjects, data.subject_names, data.recordings, data.group)
        if left:
            shown = ", ".join(f"{name} ({count})" for name, count in left.items())
            lines.append(
                f"splits[{i}] ({split_cfg.label}): {sum(left.values())} samples are in no part: "
                f"{data.group}s {shown} are in none of its subject lists"
            )
    return lines


def _check_classes(data: PairedDataset, split: Any, kind: str, seed: int) -> None:
    present = set(np.unique(data.labels[split.train]).tolist())
    absent = [data.class_names[c] for c in range(data.num_classes) if c not in present]
    if absent:
        raise DcatError(
            f"the {kind} split (seed {seed}) leaves classes without a training sample: {absent}"
        )


def _write_results(out: Path, records: list[dict[str, Any]]) -> None:
    write_atomic(out / "results.json", json.dumps(records, indent=1))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_FIELDS)
    writer.writeheader()
    writer.writerows(records)
    write_atomic(out / "results.csv", buffer.getvalue())
