"""The grid on workers (``--workers N``, Ray in local mode) and the quiet console."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dcat.experiment.config import load_config
from dcat.experiment.runner import run_experiment
from test_experiment import TINY

# baselines (imu, skeleton), the plain reference, then 4 transfers from the skeleton baseline
MODELS = 7
ENV = {**os.environ, "PYTHONWARNINGS": "default"}


def _config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def _cli(config: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dcat.cli", "experiment", str(config), "--out", str(out), *args]


def _ray_workers() -> list[int]:
    """PIDs of the Ray worker processes training a model now."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::_train_in_worker"):
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_the_grid_on_two_ray_workers_equals_the_sequential_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    config = load_config(_config(tmp_path))  # no resources: the one default thread policy
    lines: list[str] = []
    run_experiment(config, tmp_path / "seq", log=lambda _: None)
    run_experiment(config, tmp_path / "par", log=lines.append, workers=2)
    seq = json.loads((tmp_path / "seq" / "results.json").read_text())
    par = json.loads((tmp_path / "par" / "results.json").read_text())
    assert len(par) == MODELS and par == seq  # record for record, every metric bit for bit
    assert (tmp_path / "par" / "results.csv").read_text() == (
        tmp_path / "seq" / "results.csv"
    ).read_text()
    # one line per model, each numbered once; the run says it used workers, and that a grid
    # this small is likely faster in one process
    assert "on 2 workers" in lines[0]
    advice = [line for line in lines if "--workers 2 is likely slower than one process" in line]
    assert len(advice) == 1 and advice[0].startswith(f"{MODELS} small models")
    done = [line for line in lines if line.startswith("[")]
    assert sorted(int(line[1 : line.index("/")]) for line in done) == list(range(1, MODELS + 1))
    # a transfer started (its fingerprint) after the baseline it learns from was finished
    runs = tmp_path / "par" / "runs" / "ood" / "seed0"
    source_done = (runs / "skeleton" / "baseline" / "metrics.json").stat().st_mtime_ns
    transfers = [p for p in (runs / "imu").iterdir() if "_from-" in p.name]
    assert len(transfers) == MODELS - 3
    for run in transfers:
        assert (run / "fingerprint.json").stat().st_mtime_ns >= source_done
    # a second run trains nothing and gives the same results
    again: list[str] = []
    run_experiment(config, tmp_path / "par", log=again.append, workers=2)
    assert sum("(done before)" in line for line in again) == MODELS
    assert json.loads((tmp_path / "par" / "results.json").read_text()) == seq


@pytest.mark.slow
def test_a_killed_worker_has_its_model_retried_and_finished_models_untouched(
    tmp_path: Path,
) -> None:
    pytest.importorskip("ray")
    config = _config(tmp_path, resources={"cpus": 1}, train={"max_epochs": 12, "batch_size": 32})
    out = tmp_path / "out"
    runner = subprocess.Popen(
        _cli(config, out, "--workers", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=ENV,
    )  # fmt: skip
    killed: list[int] = []
    victims: list[Path] = []
    finished: dict[Path, tuple[int, str]] = {}
    deadline = time.monotonic() + 400
    try:
        while not killed and runner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            runs = list((out / "runs").glob("*/*/*/*")) if (out / "runs").is_dir() else []
            # a model half-way: its first epoch is checkpointed, it has no metrics yet
            half = [r for r in runs if (r / "checkpoints" / "last.ckpt").is_file()]
            half = [r for r in half if not (r / "metrics.json").is_file()]
            workers = _ray_workers()
            if half and workers:
                done = out.glob("runs/*/*/*/*/metrics.json")
                finished = {m: (m.stat().st_mtime_ns, m.read_text()) for m in done}
                victims = half
                for pid in workers:
                    os.kill(pid, signal.SIGKILL)
                killed = workers
        stdout, stderr = runner.communicate(timeout=600)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert killed, "no worker was caught training a model"
    assert runner.returncode == 0, stdout[-2000:] + stderr[-2000:]
    records = json.loads((out / "results.json").read_text())
    assert len(records) == MODELS
    for metrics, (mtime, text) in finished.items():  # never retrained, never lost
        assert metrics.stat().st_mtime_ns == mtime and metrics.read_text() == text
    for run in victims:  # retried: it resumed from the checkpoint it had when its worker died
        assert (run / "metrics.json").is_file()
        log = (run / "train.log").read_text()  # its worker's Lightning lines
        assert f"Restoring states from the checkpoint path at {run / 'checkpoints'}" in log
    # and the results are those of an uninterrupted run in order, on one thread
    reference = tmp_path / "reference"
    run_experiment(load_config(config), reference, log=lambda _: None)
    assert records == json.loads((reference / "results.json").read_text())


def test_the_console_shows_no_lightning_banner_without_verbose(tmp_path: Path) -> None:
    config = _config(tmp_path, methods=["dcat"], lambdas=[], train={"max_epochs": 1})
    quiet = subprocess.run(
        _cli(config, tmp_path / "quiet"), capture_output=True, text=True, env=ENV, timeout=300
    )
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    shown = quiet.stdout + quiet.stderr
    for banner in ("GPU available", "TPU available", "💡 Tip", "LeafSpec", "Trainer.fit"):
        assert banner not in shown
    models = 4  # two baselines, the plain reference, one transfer
    assert sum(line.startswith(("[1/", "[2/", "[3/", "[4/")) for line in shown.splitlines()) == 4
    assert f"[{models}/{models}] ood seed=0 imu: skeleton→imu dcat λ=1 f1=" in quiet.stdout
    log = (tmp_path / "quiet" / "experiment.log").read_text()
    assert log.count("GPU available") == models and "LeafSpec" in log  # the full log keeps them
    assert f"[{models}/{models}]" in log and "report: " in log
    loud = subprocess.run(
        _cli(config, tmp_path / "loud", "--verbose"), capture_output=True, text=True, env=ENV,
        timeout=300,
    )  # fmt: skip
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert loud.stderr.count("GPU available") == models and "LeafSpec" in loud.stderr


def test_workers_1_imports_no_ray_and_more_need_it(tmp_path: Path) -> None:
    # a ray that cannot be imported: the default run must not notice
    fake = tmp_path / "site"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('ray must not be imported')\n")
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(fake), ENV.get("PYTHONPATH", "")])}
    config = _config(tmp_path, methods=["dcat"], lambdas=[], train={"max_epochs": 1})
    alone = subprocess.run(
        _cli(config, tmp_path / "one", "--workers", "1"), capture_output=True, text=True,
        env=env, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert len(json.loads((tmp_path / "one" / "results.json").read_text())) == 4
    spread = subprocess.run(
        _cli(config, tmp_path / "two", "--workers", "2"), capture_output=True, text=True,
        env=env, timeout=300,
    )  # fmt: skip
    assert spread.returncode == 2
    assert spread.stderr.strip().splitlines()[-1] == (
        "dcat: error: --workers N needs Ray, the optional extra: pip install 'dcat[cluster]'"
    )
    assert not (tmp_path / "two" / "results.json").exists()


def test_workers_must_be_at_least_one(tmp_path: Path, capsys) -> None:
    from dcat.cli import main

    config = _config(tmp_path)
    assert main(["experiment", str(config), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "dcat: error: --workers must be at least 1, got 0"
    joined = ["--cluster", "h:6379"]
    assert main(["experiment", str(config), "--out", str(tmp_path / "o"), *joined]) == 2
    assert capsys.readouterr().err.strip() == (
        "dcat: error: --cluster h:6379 needs --workers N with N > 1 (models at once)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_shipped_preset_unchanged_gives_the_same_records_on_two_workers(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    short = ["seeds=[0]", "train.max_epochs=2", "modalities.skeleton.train.max_epochs=4"]
    config = load_config("utd_mhad_demo", short)  # resources as shipped: none set
    from dcat.experiment.config import PRESETS

    assert "resources" not in yaml.safe_load((PRESETS / "utd_mhad_demo.yaml").read_text())
    run_experiment(config, tmp_path / "seq", log=lambda _: None)
    run_experiment(config, tmp_path / "par", log=lambda _: None, workers=2)
    seq = json.loads((tmp_path / "seq" / "results.json").read_text())
    assert len(seq) > 5 and json.loads((tmp_path / "par" / "results.json").read_text()) == seq
    # each model records the threads it trained with: the default, one, in both modes
    for mode in ("seq", "par"):
        for run in {r["run"] for r in seq}:
            trained = yaml.safe_load((tmp_path / mode / run / "config.yaml").read_text())
            assert trained["threads"] == 1, (mode, run)


def test_ddp_keeps_the_threads_of_the_thread_policy(monkeypatch) -> None:
    import torch
    from lightning.fabric.utilities import distributed

    from dcat.experiment.grid import hold_threads

    # a machine of 8 cores: Lightning's DDP set-up for 2 processes would choose 4 threads
    monkeypatch.setattr(distributed, "_num_cpus_available", lambda: 8)
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if k != "OMP_NUM_THREADS"})  # fmt: skip
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        distributed._set_num_threads_if_needed(2)  # what it does on its own
        assert torch.get_num_threads() == 4
        del os.environ["OMP_NUM_THREADS"]
        hold_threads(1)  # the grid, before each model
        distributed._set_num_threads_if_needed(2)  # the same set-up now keeps them
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)


def test_resources_are_checked_and_set_the_threads_of_a_run_in_order(
    tmp_path: Path, monkeypatch
) -> None:
    import torch

    from dcat.errors import DcatError
    from dcat.experiment import grid

    with pytest.raises(DcatError, match=r"resources\.cpus"):
        load_config(_config(tmp_path, resources={"cpus": 0}))
    with pytest.raises(DcatError, match=r"unknown key\(s\) \['cpu'\] under resources"):
        load_config(_config(tmp_path, resources={"cpu": 1}))
    # `cpus: null` (torch's default in earlier versions) is the one default now
    assert load_config(_config(tmp_path, resources={"cpus": None})).resources.cpus == 1
    seen: list[int] = []
    real = grid.fit

    def fit(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(grid, "fit", fit)
    before, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    config = _config(tmp_path, methods=["dcat"], lambdas=[], train={"max_epochs": 1})
    run_experiment(load_config(config, ["resources.cpus=2"]), tmp_path / "o", log=lambda _: None)
    assert seen == [2] * 4 and torch.get_num_threads() == before  # put back after
    assert os.environ.get("OMP_NUM_THREADS") == omp
    trained = yaml.safe_load((tmp_path / "o/runs/ood/seed0/imu/baseline/config.yaml").read_text())
    assert trained["threads"] == 2
    # run again with the default (1 thread): nothing retrains, and the console says the models
    # finished before trained with 2
    lines: list[str] = []
    run_experiment(load_config(config), tmp_path / "o", log=lines.append)
    assert sum("(done before)" in line for line in lines) == 4
    assert [line for line in lines if "torch thread" in line] == [
        "4 models finished before trained with 2 torch threads, and resources.cpus is 1 now: on "
        "the CPU their numbers may differ from a fresh run's (set resources.cpus: 2 to match "
        "them, or delete them to retrain)"
    ]


@pytest.mark.slow
def test_one_model_on_ddp_under_lightnings_launcher_and_torchrun(tmp_path: Path) -> None:
    config = _config(tmp_path, methods=["dcat"], lambdas=[], train={"max_epochs": 2})
    ddp = ["--set", "train.strategy=ddp", "--set", "train.devices=2", "--set",
           "train.accelerator=cpu"]  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    commands = {
        "launcher": _cli(config, tmp_path / "launcher", *ddp),
        "torchrun": [*torchrun, *_cli(config, tmp_path / "torchrun", *ddp)[1:]],
    }
    records = {}
    for name, command in commands.items():
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        out = tmp_path / name
        # two processes ran the protocol in step; one of them spoke, held the lock, kept the log
        assert [line[:5] for line in done.stdout.splitlines() if line.startswith("[")] == [
            "[1/4]", "[2/4]", "[3/4]", "[4/4]",
        ]  # fmt: skip
        log = (out / "experiment.log").read_text()
        assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in log
        assert "GLOBAL_RANK: 1" not in log and not (out / "dcat.lock").exists()
        trained = yaml.safe_load((out / "runs/ood/seed0/imu/baseline/config.yaml").read_text())
        assert trained["train"]["strategy"] == "ddp" and trained["train"]["devices"] == 2
        records[name] = json.loads((out / "results.json").read_text())
    assert len(records["launcher"]) == 4 and records["launcher"] == records["torchrun"]


def test_the_progress_view_counts_the_grid_and_names_the_running_model(
    tmp_path: Path, capsys
) -> None:
    config = load_config(_config(tmp_path, methods=["dcat"], lambdas=[], train={"max_epochs": 1}))
    lines: list[str] = []
    run_experiment(config, tmp_path / "o", log=lines.append, progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "0/4" in bar and "4/4" in bar  # models done of the grid's total
    assert "running: ood seed=0 imu: skeleton→imu dcat λ=1" in bar
    assert sum(line.startswith("[") for line in lines) == 4  # and still one line per model
