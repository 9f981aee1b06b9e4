"""Seconds per model of ``dcat experiment``: the fixed cost, the cost per step, and workers.

The paper preset's grid (``utd_mhad_paper``, dcat's demo until the demo took the recommended
form: its networks, 60 models) runs in this process at 1 and at 2 epochs; the difference is
the cost of one epoch of every model, so

    fixed_s_per_model = (2 · T(1 epoch) − T(2 epochs)) / models

is what a model costs besides its epochs (Trainer, loggers, loaders, checkpoint files, test),
with T the time of the grid alone; ``run_fixed_s`` is what a run costs once (data checks,
dry run, report), and ``process_start_s`` starting Python and importing dcat.
Its breakdown comes from timers around the engine's pieces during the 1-epoch grid (exclusive
seconds per model: a piece's time without the timed pieces it calls). The cost per training
step is that of the demo's IMU baseline: one fit at ``--epochs`` epochs minus one at 1, over
the steps between (its validation epochs included, as a model-epoch costs them), beside the
same epochs in a plain torch loop: the floor no framework goes below; and in Lightning's
``Trainer(barebones=True)`` (no checkpoints, loggers, progress bar or logging): Lightning's own
floor. The three are interleaved over ``--rounds`` rounds, medians.

The workers part compares a grid of small models (the demo's networks, 1 torch thread per
model) trained in order and on 2 Ray workers: wall times in one run and their ratio (Ray's and
the workers' start-up included), the steady throughput once each run's first model is done
(models per second, and their ratio), and whether the two ``results.json`` are identical.
From those: what starting Ray and its workers costs beyond one process
(``workers_ray_start_s``) and the break-even, the seconds of a run in one process (and the
models of this grid's kind) from which 2 workers finish first. ``dcat.experiment.estimate``
holds these figures for the console's advice. Skipped (``null``) without Ray.

Prints one JSON object on its last line. Goals: ``fixed_s_per_model`` ≤ 0.1,
``workers_steady_speedup`` ≥ 1.6, ``workers_identical`` true (issue 15); ``step_over_plain``
≤ 1.15 (issue 29).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from dcat.experiment.config import load_config
from dcat.experiment.recipe import train_options
from dcat.experiment.runner import load_dataset, run_experiment


class Timers:
    """Exclusive seconds of wrapped functions (a wrapped call inside another is not counted
    twice)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []

    def wrap(self, owner: Any, name: str, label: str) -> Callable[[], None]:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([0.0])
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                total = time.perf_counter() - start
                (inner,) = self._stack.pop()
                self.seconds[label] += total - inner
                if self._stack:
                    self._stack[-1][0] += total

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


@contextmanager
def instrumented(timers: Timers) -> Iterator[None]:
    import lightning as L

    from dcat.experiment import build, grid
    from dcat.training import checkpoints, engine

    undo = [
        timers.wrap(grid, "_seed_data", "prepare split data"),
        timers.wrap(grid, "_source", "load sources"),
        timers.wrap(grid, "build_net", "build network"),
        timers.wrap(grid, "write_atomic", "write files"),
        timers.wrap(engine, "write_atomic", "write files"),
        timers.wrap(engine, "describe_model", "model card"),
        timers.wrap(engine, "_save_examples", "write files"),
        timers.wrap(engine, "_logger", "logger"),
        timers.wrap(engine, "attach_source_caches", "source caches"),
        timers.wrap(engine, "load_torch_file", "load best checkpoint"),
        timers.wrap(engine, "_test", "test"),
        timers.wrap(L.Trainer, "__init__", "trainer construction"),
        timers.wrap(L.Trainer, "fit", "fit (epochs and Lightning's set-up)"),
        timers.wrap(checkpoints.SafeCheckpointIO, "save_checkpoint", "save checkpoints"),
        timers.wrap(build, "make_task", "build task"),
        timers.wrap(grid, "train_model", "other (train_model)"),
    ]
    try:
        yield
    finally:
        for restore in reversed(undo):
            restore()


def grid_seconds(overrides: list[str], timers: Timers | None = None) -> tuple[float, float, int]:
    """Wall seconds of the demo's whole run and of its grid alone (training the models: no
    data loading, checks or report) with ``overrides``, in this process; and its models."""
    from dcat.experiment import runner

    config = load_config("utd_mhad_paper", overrides)
    data = load_dataset(config)
    grid = Timers()
    restore = grid.wrap(runner._Grid, "run", "grid")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            if timers is None:
                run_experiment(config, Path(tmp) / "out", data=data, log=lambda line: None)
            else:
                with instrumented(timers):
                    run_experiment(config, Path(tmp) / "out", data=data, log=lambda line: None)
            seconds = time.perf_counter() - start
            models = len(json.loads((Path(tmp) / "out" / "results.json").read_text()))
    finally:
        restore()
    return seconds, grid.seconds["grid"], models


def step_ms(epochs: int, rounds: int) -> dict[str, Any]:
    """ms per training step of the demo's IMU baseline (its validation epochs included), through
    the engine and, as the floor a framework cannot go below, in a plain torch loop over the
    same batches; medians over ``rounds`` interleaved rounds."""
    import torch

    from dcat.data import make_split
    from dcat.experiment.build import build_net, fit_stats
    from dcat.training.engine import PairedDataModule, fit
    from dcat.training.tasks import UnimodalTask

    config = load_config("utd_mhad_paper", [])
    data = load_dataset(config)
    split = make_split(
        data.labels, data.subjects, "ood", seed=0, train_subjects=[1, 3, 5, 7],
        test_subjects=[2, 4, 6, 8], val_size=0.25,
    )  # fmt: skip
    stats = fit_stats(config, data.subset(split.train))
    train = data.subset(split.train).normalized(stats).select(["imu"])
    val = data.subset(split.val).normalized(stats).select(["imu"])
    options = train_options(config, "imu", 0)

    def engine_epoch(folder: Path) -> float:
        times = {}
        for n in (1, epochs):
            net = build_net(config, data, "imu", 0)
            start = time.perf_counter()
            limited = replace(options, max_epochs=n)
            fit(UnimodalTask(net, "imu"), train, val, limited, folder / f"{n}")
            times[n] = time.perf_counter() - start
        return (times[epochs] - times[1]) / (epochs - 1)

    def barebones_epoch() -> float:
        # Lightning's own floor: Trainer(barebones=True), no checkpoint, logger, progress bar
        # or profiler, the module's logging off; the same module, loaders and epochs
        import lightning as L

        from dcat.training.engine import DCATModule

        times = {}
        for n in (1, epochs):
            module = DCATModule(
                UnimodalTask(build_net(config, data, "imu", 0), "imu"), options.lr,
                options.weight_decay,
            )  # fmt: skip
            module.log = module.log_dict = lambda *a, **k: None  # type: ignore[method-assign]
            trainer = L.Trainer(
                max_epochs=n, accelerator="cpu", barebones=True, num_sanity_val_steps=0,
                use_distributed_sampler=False, deterministic=options.deterministic,
            )  # fmt: skip
            loaders = PairedDataModule(train, val, batch_size=options.batch_size, seed=0)
            start = time.perf_counter()
            trainer.fit(module, datamodule=loaders)
            times[n] = time.perf_counter() - start
        return (times[epochs] - times[1]) / (epochs - 1)

    def plain_epoch() -> float:
        task = UnimodalTask(build_net(config, data, "imu", 0), "imu")
        optimizer = torch.optim.Adam(
            task.parameters(), options.lr, weight_decay=options.weight_decay
        )
        loaders = PairedDataModule(train, val, batch_size=options.batch_size, seed=0)
        start = time.perf_counter()
        for _ in range(epochs - 1):
            task.train()
            for batch in loaders.train_dataloader():
                loss = task(batch)["loss"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            task.eval()
            with torch.no_grad():
                for batch in loaders.val_dataloader():
                    task.predict(batch)
        return (time.perf_counter() - start) / (epochs - 1)

    engine_s, barebones_s, plain_s = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            engine_s.append(engine_epoch(Path(tmp) / str(i)))
            barebones_s.append(barebones_epoch())
            plain_s.append(plain_epoch())
    steps = math.ceil(len(train) / options.batch_size)
    engine, barebones, plain = (statistics.median(s) for s in (engine_s, barebones_s, plain_s))
    return {
        "step_ms": 1e3 * engine / steps,
        "step_ms_plain_torch": 1e3 * plain / steps,
        "step_ms_lightning_barebones": 1e3 * barebones / steps,
        "step_over_plain": engine / plain,
        "barebones_over_plain": barebones / plain,
        "imu_epoch_s": statistics.median(engine_s),
        "imu_steps_per_epoch": steps,
        "torch_threads": torch.get_num_threads(),
    }


def workers(seeds: int, epochs: int) -> dict[str, Any]:
    """Wall seconds of one grid trained in order and on 2 Ray workers, 1 thread per model."""
    if importlib.util.find_spec("ray") is None:
        return {"workers_speedup": None, "workers_identical": None, "ray": "not installed"}
    overrides = [f"seeds={list(range(seeds))}", f"train.max_epochs={epochs}"]
    config = load_config("utd_mhad_paper", overrides)
    data = load_dataset(config)
    seconds, steady, results = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            finished: list[float] = []

            def log(line: str, finished: list[float] = finished) -> None:
                if line.startswith("["):
                    finished.append(time.perf_counter())

            start = time.perf_counter()
            run_experiment(config, Path(tmp) / f"w{n}", data=data, log=log, workers=n)
            seconds[n] = time.perf_counter() - start
            # models per second once the first model is done: without Ray's and the workers'
            # start-up, which a run pays once
            steady[n] = (len(finished) - 1) / (finished[-1] - finished[0])
            results[n] = (Path(tmp) / f"w{n}" / "results.json").read_text()
    models = len(json.loads(results[1]))
    speedup = steady[2] / steady[1]
    # each run is its start-up plus its models at the steady rate: what the workers' start-up
    # costs beyond one process's, and the size of run from which they finish first
    ray_start = (seconds[2] - models / steady[2]) - (seconds[1] - models / steady[1])
    break_even = ray_start * speedup / (speedup - 1) if speedup > 1 else math.inf
    return {
        "workers_models": models,
        "workers_epochs": epochs,
        "workers_1_s": seconds[1],
        "workers_2_s": seconds[2],
        "workers_speedup": seconds[1] / seconds[2],
        "workers_steady_models_per_s": [steady[1], steady[2]],
        "workers_steady_speedup": speedup,
        "workers_identical": results[1] == results[2],
        "workers_ray_start_s": ray_start,
        "workers_break_even_s": break_even,
        "workers_break_even_models": break_even / (seconds[1] / models),
    }


def process_start_s() -> float:
    """Seconds to start Python and import what ``dcat experiment`` needs."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import dcat.experiment.runner, dcat.training.engine"], check=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the demo grid")
    parser.add_argument("--step-epochs", type=int, default=6, help="epochs of the step fit")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the step fit")
    parser.add_argument("--workers-seeds", type=int, default=3)
    parser.add_argument("--workers-epochs", type=int, default=5)
    parser.add_argument("--no-workers", action="store_true", help="skip the Ray comparison")
    args = parser.parse_args()
    seeds = f"seeds={list(range(args.seeds))}"
    grid_seconds([seeds, "train.max_epochs=1"])  # warm-up: imports, allocator, file cache
    timers = Timers()
    run_one, one, models = grid_seconds([seeds, "train.max_epochs=1"], timers)
    run_two, two, _ = grid_seconds([seeds, "train.max_epochs=2"])
    result: dict[str, Any] = {
        "models": models,
        "run_1_epoch_s": run_one,
        "run_2_epochs_s": run_two,
        "grid_1_epoch_s": one,
        "grid_2_epochs_s": two,
        "fixed_s_per_model": (2 * one - two) / models,
        "epoch_s_per_model": (two - one) / models,
        "run_fixed_s": 2 * run_one - run_two - (2 * one - two),
        "breakdown_s_per_model_at_1_epoch": {
            k: round(v / models, 4) for k, v in sorted(timers.seconds.items(), key=lambda x: -x[1])
        },
        "process_start_s": process_start_s(),
    }
    result.update(step_ms(args.step_epochs, args.rounds))
    if not args.no_workers:
        result.update(workers(args.workers_seeds, args.workers_epochs))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
