"""The grid's wall-time estimate before training, from steps timed in the dry run, and the
lighter settings it suggests on a CPU (issue 25, "Media on a CPU")."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dcat.data import PairedDataset, Split
from dcat.experiment import estimate
from dcat.experiment.build import build_net
from dcat.experiment.config import ExperimentConfig, load_config
from dcat.experiment.estimate import (
    LONG_ON_CPU_S,
    StepTime,
    estimate_lines,
    format_duration,
    grid_costs,
    time_step,
)
from dcat.experiment.plan import plan_jobs
from dcat.experiment.recipe import train_options
from test_experiment import TINY, _write


class _Clock:
    """A stand-in for ``time``: steps advance it by what they are said to cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_time_step_fits_fixed_and_per_sample_cost_from_warm_repeats(monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(estimate, "time", clock)
    calls: list[int] = []

    def step(samples: int) -> None:
        cold = samples not in calls  # a first step of a shape pays extra: never timed
        noise = 0.05 if calls.count(samples) == 1 else 0.0  # one slow repeat: not kept
        calls.append(samples)
        clock.now += 0.01 + 0.002 * samples + (1.0 if cold else 0.0) + noise

    timing = time_step(step, (2, 8))
    assert timing.fixed_s == pytest.approx(0.01) and timing.per_sample_s == pytest.approx(0.002)
    assert timing.seconds(32) == pytest.approx(0.074)
    assert calls.count(2) == 1 + 5 and calls.count(8) == 1 + 5  # warm-up, then five repeats
    # a size already run is not warmed again; one size alone fits through zero
    calls.clear()
    step(4)
    assert time_step(step, (4,), warm=(4,)).per_sample_s == pytest.approx(0.018 / 4)
    assert calls.count(4) == 1 + 5


def test_a_step_that_times_faster_on_more_samples_is_all_fixed_cost() -> None:
    # a noisy machine: the larger batch's step took less; no negative cost per sample
    assert estimate._fit({2: 0.3, 4: 0.2}) == StepTime(0.3, 0.0)
    assert estimate._fit({2: 0.1, 6: 0.5}) == StepTime(0.0, 0.1)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        # cheap: timed at the batch size itself (2 · 0.2 s / 0.01 s > 32), fitted through both
        ({2: 0.01, 32: 0.1}, StepTime(0.004, 0.003)),
        # slow (video): timed at 4 samples, scaled in proportion, not along a noisy slope;
        # the least time per sample of the two is the least disturbed
        ({2: 0.3, 4: 0.62}, StepTime(0.0, 0.15)),
        ({2: 0.32, 4: 0.6}, StepTime(0.0, 0.15)),
        ({2: 1.5, 4: 3.2}, StepTime(0.0, 0.75)),
    ],
)
def test_time_task_times_the_batch_size_or_scales_a_slow_step(
    monkeypatch, times: dict[int, float], expected: StepTime
) -> None:
    from dcat.training.tasks import UnimodalTask

    from conftest import make_paired, small_net

    timed: list[int] = []

    def fastest(step, size: int, warm: bool) -> float:
        timed.append(size)
        return times[size]

    monkeypatch.setattr(estimate, "_fastest", fastest)
    task = UnimodalTask(small_net("imu"), "imu")
    timing = estimate.time_task(task, make_paired(), 32)
    assert timed == sorted(times)
    assert timing.fixed_s == pytest.approx(expected.fixed_s)
    assert timing.per_sample_s == pytest.approx(expected.per_sample_s)
    # the dry run's check step on 2 samples stands for one over a second: only 4 samples are
    # timed; a quicker check is timed again
    timed.clear()
    again = estimate.time_task(task, make_paired(), 32, check_s=times[2])
    assert timed == ([4] if times[2] > 1.0 else sorted(times)) and again == timing


def test_a_cold_check_is_timed_again_warm(monkeypatch) -> None:
    # the dry run's first step of a small skeleton network took 0.47 s on a loaded machine, a
    # warm step 0.01 s: the estimate was 29 h for a grid of minutes
    from dcat.training.tasks import UnimodalTask

    from conftest import make_paired, small_net

    times = {2: 0.01, 32: 0.1}
    monkeypatch.setattr(estimate, "_fastest", lambda step, size, warm: times[size])
    task = UnimodalTask(small_net("imu"), "imu")
    timing = estimate.time_task(task, make_paired(), 32, check_s=0.47)
    assert timing == StepTime(pytest.approx(0.004), pytest.approx(0.003))
    assert timing.seconds(32) == pytest.approx(0.1)


def _config(**changes) -> ExperimentConfig:
    raw = {
        "name": "video",
        "data": {"dataset": "manifest", "root": "unused.csv"},
        "splits": [{"kind": "id"}],
        "modalities": {
            "depth": {"encoder": "video", "options": {"depth": 18}},
            "imu": {"encoder": "imu", "options": {"widths": [8, 8, 8]}},
        },
        "transfers": [{"source": "depth", "target": "imu"}],
        "methods": ["dcat"],
        "d_out": 8,
        "train": {"max_epochs": 10, "batch_size": 32},
        **changes,
    }
    return ExperimentConfig(**raw)


def _video_data(n: int = 40) -> PairedDataset:
    rng = np.random.default_rng(0)
    return PairedDataset(
        {
            "depth": rng.random((n, 4, 1, 8, 8), dtype=np.float32),  # (F, C, H, W) = (4, 1, 8, 8)
            "imu": rng.normal(size=(n, 6, 32)).astype(np.float32),
        },
        np.arange(n) % 2,
        np.arange(n) % 4 + 1,
        [f"rec{i}" for i in range(n)],
        ["a", "b"],
        name="synthetic",
    )


def _split(train: int = 70) -> dict[tuple[int, int], Split]:
    return {(0, 0): Split("id", 0, np.arange(train), np.arange(train, 80), np.arange(80, 90))}


def test_grid_costs_are_models_times_epochs_times_steps_times_the_step(tmp_path: Path) -> None:
    config = _config(modalities={
        "depth": {"encoder": "video", "train": {"max_epochs": 4, "batch_size": 16}},
        "imu": {"encoder": "imu"},
    })  # fmt: skip
    jobs = plan_jobs(config)  # imu baseline, depth baseline, imu plain, depth→imu dcat
    timings = {
        ("imu", "baseline", ""): StepTime(0.01, 0.001),
        ("depth", "baseline", ""): StepTime(0.0, 0.5),
        ("imu", "plain", ""): StepTime(0.02, 0.0),
        # a cached source serves the depth network: its 0.25 s a sample are not paid per step
        ("imu", "dcat", "depth"): StepTime(0.05, 0.3, sources_s=StepTime(0.0, 0.25)),
    }
    costs, passes = grid_costs(config, jobs, _split(70), timings, tmp_path)
    got = {(c.job.target, c.job.method): (c.epochs, c.steps, c.step_s) for c in costs}
    assert got[("imu", "baseline")] == (10, 3, pytest.approx(0.01 + 0.001 * 32))
    assert got[("depth", "baseline")] == (4, 5, pytest.approx(0.5 * 16))  # its own train
    assert got[("imu", "plain")] == (10, 3, pytest.approx(0.02))
    assert got[("imu", "dcat")] == (10, 3, pytest.approx(0.05 + (0.3 - 0.25) * 32))
    # one pass of the depth source over the 70 training samples fills its cache
    assert passes == pytest.approx(3 * 0.25 * 32)
    assert sum(c.seconds for c in costs) == pytest.approx(
        10 * 3 * 0.042 + 4 * 5 * 8.0 + 10 * 3 * 0.02 + 10 * 3 * 1.65
    )
    # a finished model (its metrics.json there) costs nothing
    finished = tmp_path / jobs[1].folder
    finished.mkdir(parents=True)
    (finished / "metrics.json").write_text("{}")
    costs, _ = grid_costs(config, jobs, _split(70), timings, tmp_path)
    assert [c.job.method for c in costs] == ["baseline", "plain", "dcat"]
    # without the cache, the step pays for the source and no pass is made
    uncached = _config(train={"max_epochs": 10, "batch_size": 32, "cache_sources": False})
    costs, passes = grid_costs(uncached, jobs, _split(70), timings, tmp_path)
    assert costs[-1].step_s == pytest.approx(0.05 + 0.3 * 32) and passes == 0.0


def test_long_estimate_on_a_cpu_suggests_lighter_settings_that_a_config_accepts(
    tmp_path: Path,
) -> None:
    config, data = _config(), _video_data()
    jobs = plan_jobs(config)
    timings = {
        ("imu", "baseline", ""): StepTime(0.01, 0.001),
        ("depth", "baseline", ""): StepTime(0.0, 2.0),  # 64 s a step of 32 clips
        ("imu", "plain", ""): StepTime(0.01, 0.0),
        ("imu", "dcat", "depth"): StepTime(0.02, 0.5, sources_s=StepTime(0.0, 0.49)),
    }
    lines = estimate_lines(config, data, jobs, _split(70), timings, tmp_path)
    costs, passes = grid_costs(config, jobs, _split(70), timings, tmp_path)
    total = sum(c.seconds for c in costs) + passes
    assert total > LONG_ON_CPU_S
    assert lines[0].startswith(f"grid estimate: ≈ {format_duration(total)} on the CPU for 4 ")
    assert "largest: depth baseline, 1 × 10 epochs × 3 steps × 64 s = 32 min" in lines[0]
    assert lines[1] == "that is long for a CPU (over 30 min); lighter settings:"
    video = next(line for line in lines if "video_small" in line)
    sets = video.split(": ", 1)[1]
    assert sets == "--set modalities.depth.encoder=video_small --set modalities.depth.options={}"
    frames = next(line for line in lines if "fewer or smaller frames for depth" in line)
    assert "(now 4 of 8×8;" in frames
    assert frames.endswith(
        "--set data.options.media.depth.frames=2 --set data.options.media.depth.size=[4,4]"
    )
    assert lines[-1] == "  fewer epochs: --set train.max_epochs=5"

    # the options printed are the exact ones: the config takes them and builds the small net
    overrides = [
        part.strip() for line in lines[2:] for part in line.split("--set ")[1:]
    ]  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config.to_dict()))
    lighter = load_config(path, overrides)
    assert lighter.modalities["depth"].encoder == "video_small"
    assert lighter.data.options["media"]["depth"] == {"frames": 2, "size": [4, 4]}
    assert lighter.train["max_epochs"] == 5
    net = build_net(lighter, data, "depth", 0)
    assert type(net.encoder).__name__ == "SmallVideoEncoder"

    # a modality that sets its own epochs is halved under its own key, the others under train
    raw = config.to_dict()
    raw["modalities"]["depth"]["train"] = {"max_epochs": 40}
    own = ExperimentConfig.model_validate(raw)
    lines = estimate_lines(own, data, plan_jobs(own), _split(70), timings, tmp_path)
    assert lines[-1] == (
        "  fewer epochs: --set modalities.depth.train.max_epochs=20 --set train.max_epochs=5"
    )
    halved = load_config(path, [part.strip() for part in lines[-1].split("--set ")[1:]])
    assert train_options(halved, "depth", 0).max_epochs == 20
    assert train_options(halved, "imu", 0).max_epochs == 5


def _quick() -> dict:
    """Step times of a short grid: every model at 1 ms a step, the source's pass at 0.5 ms."""
    return dict.fromkeys(
        [("imu", "baseline", ""), ("depth", "baseline", ""), ("imu", "plain", "")],
        StepTime(0.0, 0.001),
    ) | {("imu", "dcat", "depth"): StepTime(0.0, 0.001, StepTime(0.0, 0.0005))}


def test_short_or_gpu_grids_get_no_suggestion(tmp_path: Path) -> None:
    config, data = _config(), _video_data()
    jobs = plan_jobs(config)
    quick = _quick()
    lines = estimate_lines(config, data, jobs, _split(), quick, tmp_path, workers=2)
    # 3 models × 10 epochs × 3 steps × 32 ms, the transfer at 16 ms a step, one 48 ms pass
    assert len(lines) == 1 and lines[0].startswith("grid estimate: ≈ 3 s on the CPU for 4 ")
    assert lines[0].endswith("; validation and loading not counted); 2 at once: ≈ 2 s")
    # a refit trains for its original's best epoch count, unknown before: said, not guessed
    refits = estimate_lines(_config(refit=True), data, jobs, _split(), quick, tmp_path)
    assert "validation, loading and refits not counted" in refits[0]
    on_gpu = _config(train={"max_epochs": 10, "accelerator": "gpu"})
    assert estimate_lines(on_gpu, data, jobs, _split(), quick, tmp_path) == [
        "grid estimate: none (the dry run times steps on the CPU; training runs on gpu)"
    ]


def test_a_small_grid_on_local_workers_is_told_they_likely_cost_more(tmp_path: Path) -> None:
    config, data = _config(), _video_data()
    jobs = plan_jobs(config)
    quick = _quick()
    lines = estimate_lines(config, data, jobs, _split(), quick, tmp_path, workers=2,
                           local_ray=True)  # fmt: skip
    costs, passes = grid_costs(config, jobs, _split(), quick, tmp_path)
    alone = sum(c.seconds for c in costs) + passes + 4 * estimate.FIXED_S_PER_MODEL
    assert len(lines) == 2 and lines[1] == (
        f"4 small models (≈ {format_duration(alone)} in one process): --workers 2 is likely "
        f"slower than one process here (starting Ray and its workers takes ≈ "
        f"{format_duration(estimate.RAY_START_S)}; workers pay from ≈ "
        f"{format_duration(estimate.break_even_s(2))} of training)"
    )
    # the same grid on a cluster it joined (its workers were up before), or in one process
    assert len(estimate_lines(config, data, jobs, _split(), quick, tmp_path, workers=2)) == 1
    # the break-even: one process's time equals start-up plus the shared time
    even = estimate.break_even_s(2)
    speed = estimate.TWO_WORKERS_SPEEDUP
    assert even == pytest.approx(estimate.RAY_START_S + even / speed)
    assert estimate.workers_advice(1.01 * even, 0, 2) is None
    assert estimate.workers_advice(0.99 * even, 0, 2) is not None
    assert estimate.workers_advice(1.0, 1, 1) is None


def test_the_estimate_is_printed_before_the_first_model_trains(tmp_path: Path, monkeypatch) -> None:
    from dcat.experiment import grid, runner

    # every model's step, as the dry run times it, takes 0.5 s at its batch size
    monkeypatch.setattr(runner, "time_task", lambda *args, **kwargs: StepTime(0.5, 0.0))

    class FirstModelError(Exception):
        pass

    def first_model(*args, **kwargs):
        raise FirstModelError

    monkeypatch.setattr(grid, "train_model", first_model)
    raw = {
        **TINY, "methods": ["dcat"], "lambdas": [1.0],
        "train": {"max_epochs": 3, "batch_size": 16, "cache_sources": False},
    }  # fmt: skip
    config = load_config(_write(tmp_path, raw))
    lines: list[str] = []
    from dcat.experiment.runner import run_experiment

    with pytest.raises(FirstModelError):
        run_experiment(config, tmp_path / "out", log=lines.append)
    split = json.loads((tmp_path / "out" / "splits" / "ood_seed0.json").read_text())
    steps = math.ceil(len(split["train"]) / 16)
    models = len(plan_jobs(config))
    assert models == 4  # imu and skeleton baselines, imu plain, skeleton→imu dcat
    expected = format_duration(models * 3 * steps * 0.5)
    assert lines[-1].startswith(f"grid estimate: ≈ {expected} on the CPU for 4 models ")
    assert f"× 3 epochs × {steps} steps × 0.5 s" in lines[-1]


def test_dry_run_times_every_model_of_the_plan(tmp_path: Path) -> None:
    from dcat.experiment.runner import dry_run, load_dataset

    config = load_config(_write(tmp_path, {**TINY, "methods": ["dcat"], "lambdas": [1.0]}))
    data = load_dataset(config)
    jobs = plan_jobs(config)
    threads = torch.get_num_threads()
    timings = dry_run(config, data, jobs, data.subset(np.arange(40)))
    assert set(timings) == {(j.target, j.method, j.source) for j in jobs}
    for key, timing in timings.items():
        assert timing.seconds(32) > 0, key
        # only the transfer has a source network, which a cache can serve
        assert (timing.sources_s is not None) == (key[1] == "dcat"), key
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.4, "4 s"), (89, "89 s"), (91, "2 min"), (3600 * 2.5, "2 h 30 min")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_suggestions_name_a_readers_own_frame_options() -> None:
    declared = {"frames", "lips_size"}
    config = SimpleNamespace(data=SimpleNamespace(dataset="avletters"))
    assert estimate._frame_options(config, declared, "lips", 24, (30, 40)) == (
        "--set data.options.frames=12 --set data.options.lips_size=[15,20]"
    )
    assert estimate._frame_options(config, set(), "lips", 24, (30, 40)) == ""


def test_a_slow_transfer_step_times_its_sources_on_both_sizes() -> None:
    # a loaded machine: the check's step was slow, so 2 samples were not timed again; the
    # sources' share is still timed at 2 and at the batch size (4), on collated batches
    from dcat.training.tasks import SourceSpec, TransferTask

    from conftest import make_paired, small_net

    task = TransferTask(small_net("imu"), "imu", [SourceSpec("skeleton", small_net("skeleton"))])
    timing = estimate.time_task(task, make_paired(), 4, check_s=10.0)
    assert timing.sources_s is not None
    assert timing.seconds(4) > 0 and timing.sources_s.seconds(4) > 0
