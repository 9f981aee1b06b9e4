"""Reliability: killed runs resume exactly, runs are reproducible and recorded, loading is safe."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from dcat.experiment.config import load_config
from dcat.experiment.recipe import train_options
from dcat.experiment.runner import run_experiment
from dcat.nn.encoders.audio import AudioEncoder
from dcat.nn.encoders.video import VideoEncoder
from dcat.nn.weights import load_error_summary, load_torch_file
from dcat.training.checkpoints import SafeCheckpointIO
from dcat.training.engine import TrainConfig, _trainer, fit
from dcat.training.provenance import git_state
from dcat.training.run_folder import load_target
from dcat.training.tasks import UnimodalTask
from test_experiment import TINY as EXPERIMENT_TINY

from conftest import make_paired, small_net

# three models (imu and skeleton baselines, then skeleton → imu D-CAT), dropout on, a few epochs
TINY = {
    **EXPERIMENT_TINY,
    "name": "tiny_reliability",
    "methods": ["dcat"],
    "lambdas": [],
    # a checkpoint after every epoch: the kill comes between two of them
    "train": {
        "max_epochs": 8,
        "batch_size": 16,
        "logger": "csv",
        "progress": False,
        "checkpoint_every_s": 0,
    },
}
# one thread each: the same arithmetic in every process, and no oversubscription beside xdist
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TRANSFER = Path("runs/ood/seed0/imu/dcat_from-skeleton_w1")
BASELINES = [Path("runs/ood/seed0/imu/baseline"), Path("runs/ood/seed0/skeleton/baseline")]


def _config(tmp_path: Path, **train) -> Path:
    data = {**TINY, "train": {**TINY["train"], **train}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _cli(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "dcat.cli", "experiment", str(config), "--out", str(out)]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _at(path: Path, pattern: str) -> str:
    """A regex: the message names ``path``, then matches ``pattern``."""
    return re.escape(str(path)) + pattern


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _wait_for_kill_point(process: subprocess.Popen, out: Path, log: Path) -> None:
    """Poll until the baselines are finished and the transfer has a last.ckpt past its first
    epoch (when the CSV log has all its columns), but no result yet."""
    last = out / TRANSFER / "checkpoints" / "last.ckpt"
    deadline, seen = time.monotonic() + 240, None
    while time.monotonic() < deadline:
        if all((out / b / "metrics.json").is_file() for b in BASELINES) and last.is_file():
            stamp = last.stat().st_mtime_ns  # checkpoints are replaced whole: safe to read
            if stamp != seen:
                seen = stamp
                if torch.load(last, weights_only=True, mmap=True)["epoch"] >= 1:
                    return
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{log.read_text()[-3000:]}")
        time.sleep(0.005)
    process.kill()
    pytest.fail("the run did not reach the transfer in time")


@pytest.mark.slow
def test_killed_experiment_resumes_to_the_same_results(tmp_path: Path) -> None:
    config = _config(tmp_path)
    max_epochs = TINY["train"]["max_epochs"]
    killed, log = tmp_path / "killed", tmp_path / "killed.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            _cli(config, killed), stdout=handle, stderr=subprocess.STDOUT, cwd=tmp_path, env=ENV
        )
        try:
            _wait_for_kill_point(process, killed, log)
        finally:
            process.kill()  # SIGKILL: no handler, no cleanup
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists() and not (killed / "results.csv").exists()
    assert not (killed / TRANSFER / "metrics.json").exists()
    state = torch.load(killed / TRANSFER / "checkpoints" / "last.ckpt", weights_only=True)
    killed_epoch = state["epoch"]
    assert killed_epoch < max_epochs - 2, "killed too late to show a resume"
    logged_before = _csv_rows(killed / TRANSFER / "logs" / "metrics.csv")

    # then, in this process and also on one thread: the same configuration, never interrupted
    reference = tmp_path / "reference"
    with _one_thread():
        run_experiment(load_config(config), reference, log=lambda _: None)

    again = subprocess.run(
        _cli(config, killed), capture_output=True, text=True, cwd=tmp_path, timeout=300, env=ENV
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (
        again.stdout.count("(done before)") == 3
    )  # the two baselines and the plain reference are not trained again
    assert json.loads((killed / "results.json").read_text()) == json.loads(
        (reference / "results.json").read_text()
    )
    assert (killed / "results.csv").read_text() == (reference / "results.csv").read_text()
    # it resumed (Lightning says so in the run's log, for the transfer only; quiet on the
    # console without --verbose) ...
    last = killed / TRANSFER / "checkpoints" / "last.ckpt"
    full_log = (killed / "experiment.log").read_text()
    assert full_log.count("Restoring states from the checkpoint path at") == 1
    assert f"Restoring states from the checkpoint path at {last}" in full_log
    assert "Restoring states" not in again.stderr
    # ... and the CSV log kept the epochs logged before the kill and goes on from there: the
    # same rows as the uninterrupted run's (but for the killed epoch's last ones, if the kill
    # came between its checkpoint and them)
    rows = _csv_rows(killed / TRANSFER / "logs" / "metrics.csv")
    full = _csv_rows(reference / TRANSFER / "logs" / "metrics.csv")
    kept = [r for r in logged_before if int(r["epoch"]) <= killed_epoch]
    assert rows[: len(kept)] == kept == full[: len(kept)]
    assert [r for r in rows if int(r["epoch"]) < killed_epoch] == [
        r for r in full if int(r["epoch"]) < killed_epoch
    ]
    assert [r for r in rows if int(r["epoch"]) > killed_epoch] == [
        r for r in full if int(r["epoch"]) > killed_epoch
    ]
    assert sorted({int(r["epoch"]) for r in rows}) == list(range(max_epochs))
    # and its weights are those of the uninterrupted run, bit for bit
    for name in ("last.ckpt", "best.ckpt"):
        a = torch.load(killed / TRANSFER / "checkpoints" / name, weights_only=True)
        b = torch.load(reference / TRANSFER / "checkpoints" / name, weights_only=True)
        assert a["epoch"] == b["epoch"]
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for key, value in a["state_dict"].items():
            assert torch.equal(value, b["state_dict"][key]), (name, key)


def test_same_config_and_seed_give_identical_results_and_a_recorded_run(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, max_epochs=2))
    with _one_thread():
        for out in ("a", "b"):
            run_experiment(config, tmp_path / out, log=lambda _: None)
    a, b = tmp_path / "a", tmp_path / "b"
    records = json.loads((a / "results.json").read_text())
    assert len(records) == 4 and records == json.loads((b / "results.json").read_text())
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    for name in ("best.ckpt", "last.ckpt"):  # the weights themselves, not only the metrics
        x = torch.load(a / TRANSFER / "checkpoints" / name, weights_only=True)["state_dict"]
        y = torch.load(b / TRANSFER / "checkpoints" / name, weights_only=True)["state_dict"]
        assert all(torch.equal(x[k], y[k]) for k in x) and x.keys() == y.keys()

    # the folder records what produced it: the full configuration, versions and the commit
    recorded = yaml.safe_load((a / "config.yaml").read_text())
    assert recorded["experiment"] == config.to_dict()
    assert recorded["experiment"]["train"]["max_epochs"] == 2
    expected = {"dcat", "python", "torch", "torchvision", "lightning", "torchmetrics", "numpy"}
    assert expected | {"scipy", "scikit-learn"} <= set(recorded["versions"])
    assert recorded["versions"]["torch"] == torch.__version__
    head = _checkout_head()
    if head is not None:  # dcat imported from a git checkout, as in development
        assert recorded["versions"]["git_commit"] == head
        assert isinstance(recorded["versions"]["git_dirty"], bool)
    else:
        assert "git_commit" not in recorded["versions"]
    run = yaml.safe_load((a / TRANSFER / "config.yaml").read_text())
    same = {k: v for k, v in recorded["versions"].items() if k != "git_dirty"}
    assert same.items() <= run["versions"].items()
    assert run["train"] == asdict(train_options(config, "imu", 0))
    assert run["task"]["kind"] == "TransferTask" and run["task"]["num_classes"] == 27
    assert run["task"]["sources"][0]["name"] == "skeleton"
    assert run["job"]["method"] == "dcat" and run["experiment"] == "tiny_reliability"


def _checkout_head() -> str | None:
    """HEAD of the git checkout dcat is imported from, if it is one (and tracks dcat)."""
    import dcat

    folder = Path(dcat.__file__).resolve().parent
    try:
        tracked = subprocess.run(
            ["git", "-C", str(folder), "ls-files", "--error-unmatch", "__init__.py"],
            capture_output=True,
        )
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    return head.stdout.strip() if tracked.returncode == 0 and head.returncode == 0 else None


def test_git_state_is_recorded_only_for_a_checkout_and_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_state(tmp_path) == {}  # not a repository
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "__init__.py").write_text("")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    git += ["-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    assert git_state(repo / "pkg") == {}  # a repository that does not track the package
    subprocess.run([*git, "add", "pkg/__init__.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "y"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git_state(repo / "pkg") == {"git_commit": head.strip(), "git_dirty": False}
    (repo / "pkg" / "__init__.py").write_text("x = 1\n")
    assert git_state(repo / "pkg")["git_dirty"] is True
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no git at all
    assert git_state(repo / "pkg") == {}


# -- safe loading ----------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


def _malicious(path: Path, marker: Path) -> Path:
    """A file shaped like a Lightning checkpoint, with code in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "state_dict": {}, "payload": _Payload(marker)}, path)
    return path


def test_the_payload_is_real(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.load(_malicious(tmp_path / "x.ckpt", marker), weights_only=False)
    assert marker.exists()  # so its absence below means the code was not run


def test_resume_refuses_a_checkpoint_with_code(tmp_path: Path) -> None:
    data = make_paired(n=24)
    marker = tmp_path / "pwned"
    last = _malicious(tmp_path / "run" / "checkpoints" / "last.ckpt", marker)
    task = UnimodalTask(small_net("imu"), "imu")
    config = TrainConfig(max_epochs=1, batch_size=8, progress=False, logger="none")
    with pytest.raises(ValueError, match=_at(last, r".*not a plain weights file.*refused")):
        fit(task, data.subset(range(16)), data.subset(range(16, 24)), config, tmp_path / "run")
    # Lightning's own loading (the trainers' checkpoint plugin) refuses it too, whatever it asks
    assert isinstance(
        _trainer(config, tmp_path, [], False).strategy.checkpoint_io, SafeCheckpointIO
    )
    with pytest.raises(ValueError, match=_at(last, r".*refused to unpickle")):
        SafeCheckpointIO().load_checkpoint(last, weights_only=False)
    assert not marker.exists()


def test_finished_baseline_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    best = _malicious(tmp_path / "run" / "checkpoints" / "best.ckpt", marker)
    with pytest.raises(ValueError, match=_at(best, r".*not a plain weights file.*refused")):
        load_target(tmp_path / "run", small_net("imu"))
    assert not marker.exists()


def test_encoder_weight_files_with_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = _malicious(tmp_path / "resnet18.pth", marker)
    with pytest.raises(ValueError, match=_at(weights, r".*not a plain weights file")):
        VideoEncoder(3, depth=18, weights=weights)
    with pytest.raises(ValueError, match=_at(weights, r".*not a plain weights file")):
        AudioEncoder(widths=(8, 16), weights=weights)
    assert not marker.exists()


def test_truncated_checkpoint_is_named(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "state_dict": {"w": torch.zeros(100)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=_at(path, r" is not a readable torch file")):
        load_torch_file(path)


def test_a_load_error_is_summarised_in_one_line() -> None:
    with pytest.raises(RuntimeError) as caught:
        torch.nn.Linear(3, 2).load_state_dict({"weight": torch.zeros(2, 1), "extra": torch.ones(1)})
    # torch's header dropped, every mismatch kept
    assert load_error_summary(caught.value) == (
        'Missing key(s) in state_dict: "bias".; Unexpected key(s) in state_dict: "extra".; '
        "size mismatch for weight: copying a param with shape torch.Size([2, 1]) from "
        "checkpoint, the shape in current model is torch.Size([2, 3])."
    )
    assert load_error_summary(ValueError("first\nsecond")) == "first"
    assert load_error_summary(IndexError()) == "IndexError"


def test_finished_baseline_of_another_configuration_is_named(tmp_path: Path) -> None:
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    trained = small_net("imu", classes=27, d_out=16)
    state = {f"task.target.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state}, best)
    with pytest.raises(
        ValueError,
        match=_at(
            best, r" holds a model for 27 classes, this experiment needs 5.*fresh --out folder"
        ),
    ):
        load_target(tmp_path / "run", small_net("imu", classes=5, d_out=16))
    with pytest.raises(ValueError, match=_at(best, r" has d_out 16, this experiment needs 32")):
        load_target(tmp_path / "run", small_net("imu", classes=27, d_out=32))
    with pytest.raises(ValueError, match=_at(best, r" .*missing: encoder")):
        load_target(tmp_path / "run", small_net("skeleton", classes=27, d_out=16))
    assert load_target(tmp_path / "run", small_net("imu", classes=27, d_out=16)) is not None


def test_experiment_with_changed_d_out_names_the_run_and_the_key(tmp_path: Path) -> None:
    data = {**TINY, "transfers": [], "modalities": {"imu": TINY["modalities"]["imu"]}}
    data["train"] = {**TINY["train"], "max_epochs": 1}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    run_experiment(load_config(path), tmp_path / "out", log=lambda _: None)
    changed = load_config(path, ["d_out=32"])
    out = tmp_path / "out"
    message = (
        r": 1 model\(s\) there were trained with other settings: "
        r"runs/ood/seed0/imu/baseline: network\.d_out 16 → 32\. "
    )
    with pytest.raises(ValueError, match=_at(out, message)):
        run_experiment(changed, out, log=lambda _: None)


# -- resuming in the engine ------------------------------------------------------------------


def test_resumed_fit_keeps_the_csv_log_and_finishes_a_run_killed_before_its_metrics(
    tmp_path: Path,
) -> None:
    data = make_paired(n=32)
    train, val = data.subset(range(24)), data.subset(range(24, 32))

    def run(folder: str, epochs: int):
        torch.manual_seed(0)
        task = UnimodalTask(small_net("imu", dropout=0.3), "imu")
        options = {"batch_size": 8, "progress": False, "log_every_n_steps": 1}
        return fit(task, train, val, TrainConfig(max_epochs=epochs, **options), tmp_path / folder)

    full = run("full", 3)
    run("part", 2)
    resumed = run("part", 3)
    full_log = _csv_rows(tmp_path / "full" / "logs" / "metrics.csv")
    assert _csv_rows(tmp_path / "part" / "logs" / "metrics.csv") == full_log
    assert sorted({int(r["epoch"]) for r in full_log}) == [0, 1, 2]
    assert resumed.val == full.val
    # killed after the last epoch but before metrics.json: running again only evaluates
    (tmp_path / "part" / "metrics.json").unlink()
    again = run("part", 3)
    assert again.val == full.val
    assert _csv_rows(tmp_path / "part" / "logs" / "metrics.csv") == full_log
    # no temporary checkpoint file is left behind
    assert sorted(p.name for p in (tmp_path / "part" / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]
