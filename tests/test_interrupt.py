"""Signals and early checks: SIGTERM and SIGINT end a run with one line and exit 143 or 130,
release the lock and leave a model that resumes; the lock and Ray come before the data."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import dcat.experiment.cluster
import dcat.experiment.runner
from dcat.cli import main
from dcat.errors import DcatError
from dcat.io.interrupt import Interrupted, interruptible
from dcat.io.lock import LOCK_FILE, RunLock
from dcat.training.engine import TrainConfig, fit
from dcat.training.tasks import UnimodalTask
from test_error_catalogue import _imu_only, write_config, write_manifest
from test_workers import _ray_workers

from conftest import small_net

# one thread: the same pace in every process, and no oversubscription beside other tests
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
RESUME = "rerun the same command to resume"
# Ray's C++ core writes its own error lines to the driver's stderr when its instance is shut
# down under a task that is still failing ("Failed to push error to driver"); they are Ray's,
# not dcat's, and come only now and then on a loaded machine
RAY_CORE_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [IWEF] \d+ \d+\] \w+\.cc:\d+: ")


def _config(tmp_path: Path, max_epochs: int = 1) -> Path:
    """The imu baseline and plain reference on a 16-sample manifest (tens of ms an epoch)."""
    config = _imu_only(write_manifest(tmp_path / "data"))
    config["train"] = {**config["train"], "max_epochs": max_epochs}
    return write_config(tmp_path, config)


def _cli(config: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "dcat.cli", "experiment", str(config), "--out", str(out), *args]


# ---------------------------------------------------------------------------------------------
# The handler, in this process


def test_sigterm_inside_interruptible_raises_interrupted_and_handlers_come_back() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as caught, interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode: never reached
    assert caught.value.signum == signal.SIGTERM and caught.value.exit_code == 143
    assert caught.value.message == "interrupted by SIGTERM"
    assert isinstance(caught.value, KeyboardInterrupt)  # libraries clean up as after Ctrl-C
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_during_the_clean_up_is_ignored() -> None:
    cleaned = []
    with pytest.raises(Interrupted) as caught, interruptible():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        finally:  # e.g. the lock's release: a second Ctrl-C must not cut it short
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            cleaned.append(True)
    assert cleaned == [True]
    assert caught.value.signum == signal.SIGINT and caught.value.exit_code == 130


def test_a_third_signal_ends_a_stuck_clean_up_as_the_default_would() -> None:
    stuck = (
        "import os, signal, time\n"
        "from dcat.io.interrupt import interruptible\n"
        "with interruptible():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(30)\n"
        "    finally:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", stuck], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGTERM, done.stderr.decode()[-2000:]
    assert time.monotonic() - started < 30


def test_a_forked_child_ends_on_sigterm_as_without_the_handler() -> None:
    """A DataLoader worker inherits the handler: it must not raise the parent's interrupt."""
    with interruptible():
        pid = os.fork()
        if pid == 0:  # the child: never back into pytest
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


def test_a_plain_keyboard_interrupt_leaves_as_the_signal_received() -> None:
    """What Ray's wait raises when the handler fired inside it."""
    with pytest.raises(Interrupted) as caught, interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted:
            raise KeyboardInterrupt from None
    assert caught.value.signum == signal.SIGTERM
    with pytest.raises(Interrupted) as plain, interruptible():
        raise KeyboardInterrupt  # Python's own Ctrl-C, no handler involved
    assert plain.value.signum == signal.SIGINT


# ---------------------------------------------------------------------------------------------
# Lightning inside fit: no exit 0 (SIGTERM) or 1 (Ctrl-C), but the interrupt


class _SignalAt(L.Callback):
    """Sends ``signum`` to this process (or raises ``error``) at the end of epoch 1."""

    def __init__(self, signum: int | None = None, error: BaseException | None = None) -> None:
        self.signum, self.error = signum, error

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            if self.signum is not None:  # Lightning's handler flags it; its loop stops soon
                os.kill(os.getpid(), self.signum)
            else:
                raise self.error


@pytest.mark.parametrize(
    ("callback", "signum"),
    [(_SignalAt(signal.SIGTERM), signal.SIGTERM), (_SignalAt(error=KeyboardInterrupt()), 2)],
    ids=["sigterm-without-dcat-handler", "ctrl-c"],
)
def test_lightnings_own_exit_becomes_the_interrupt(tmp_path, paired, callback, signum) -> None:
    train, val = paired.subset(range(36)), paired.subset(range(36, 48))
    config = TrainConfig(max_epochs=6, batch_size=8, progress=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as caught:
        fit(UnimodalTask(small_net("imu"), "imu"), train, val, config, tmp_path,
            callbacks=[callback])  # fmt: skip
    assert caught.value.signum == signum
    # the epochs before are kept, and nothing looks finished
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] in (0, 1) and not (tmp_path / "metrics.json").exists()
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # Lightning's are gone


# ---------------------------------------------------------------------------------------------
# The lock and Ray first, before the data


def _no_data(*args, **kwargs):
    raise AssertionError("the data were read before the lock and Ray")


def test_a_locked_folder_is_refused_before_the_data_are_read(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setattr(dcat.experiment.runner, "load_dataset", _no_data)
    config, out = _config(tmp_path), tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        owner = {"pid": holder.pid, "host": socket.gethostname(), "started": time.time()}
        (out / LOCK_FILE).write_text(json.dumps(owner))
        assert main(["experiment", str(config), "--out", str(out)]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"process {holder.pid} on" in err[0], err
    assert json.loads((out / LOCK_FILE).read_text()) == owner  # the running one's, untouched


def test_an_unreachable_cluster_is_refused_before_the_data_are_read(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    pytest.importorskip("ray")

    def unreachable(ray, address, workers, cpus, verbose):
        raise DcatError(f"could not start the Ray cluster at {address}: timed out")

    monkeypatch.setattr(dcat.experiment.runner, "load_dataset", _no_data)
    monkeypatch.setattr(dcat.experiment.cluster, "_init", unreachable)
    config, out = _config(tmp_path), tmp_path / "deep" / "er" / "out"
    args = ["--workers", "2", "--cluster", "nowhere:6379"]
    assert main(["experiment", str(config), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dcat: error: could not start the Ray cluster at nowhere:6379: timed out"]
    assert not (tmp_path / "deep").exists()  # the folders made for the lock are gone again


def test_the_lock_removes_only_the_empty_folders_it_created(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with RunLock(out, create=True):
        assert (out / LOCK_FILE).is_file()
    assert not (tmp_path / "a").exists()
    with RunLock(out, create=True):
        (out / "config.yaml").write_text("written")  # the run wrote: its folder stays
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]
    (tmp_path / "kept").mkdir()
    with RunLock(tmp_path / "kept", create=True):
        pass
    assert (tmp_path / "kept").is_dir()  # it existed before


# ---------------------------------------------------------------------------------------------
# The real command, stopped once training has started, then run again


def _interrupt_when_training(
    process: subprocess.Popen, out: Path, signum: int, seen: list[int] | None
) -> None:
    """Send ``signum`` once a model has its first ``last.ckpt`` (and, when ``seen`` is given,
    a Ray worker of the run is seen: put in ``seen``)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if any(out.glob("runs/*/*/*/*/checkpoints/last.ckpt")):
            if seen is not None:
                seen.extend(_ray_workers_under(process.pid))
            if seen is None or seen:
                process.send_signal(signum)
                return
        if process.poll() is not None:
            pytest.fail(f"the run ended before training:\n{process.communicate()[1][-3000:]}")
        time.sleep(0.02)
    process.kill()
    pytest.fail("no model started training in time")


def _stop_and_check(
    config: Path, out: Path, signum: int, *args: str, seen: list[int] | None = None
) -> list[Path]:
    """Run, stop with ``signum``: exit code, the one line, the lock; the unfinished models."""
    process = subprocess.Popen(
        _cli(config, out, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=ENV,
    )  # fmt: skip
    try:
        _interrupt_when_training(process, out, signum, seen)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, stdout[-2000:] + stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert [line for line in lines if not RAY_CORE_LINE.match(line)] == [
        f"dcat: interrupted by {name}; {RESUME}"
    ]
    assert not (out / LOCK_FILE).exists()
    assert not (out / "results.json").exists() and not (out / "report.md").exists()
    unfinished = [
        c.parents[1]
        for c in out.glob("runs/*/*/*/*/checkpoints/last.ckpt")
        if not (c.parents[1] / "metrics.json").exists()
    ]
    assert unfinished, "the signal came after every model had finished"
    return unfinished


def _resumes(config: Path, out: Path, unfinished: list[Path]) -> None:
    again = subprocess.run(
        _cli(config, out), capture_output=True, text=True, env=ENV, timeout=300
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert (out / "results.json").is_file() and not (out / LOCK_FILE).exists()
    log = (out / "experiment.log").read_text()
    for run in unfinished:  # it went on from the checkpoint the signal left
        last = run / "checkpoints" / "last.ckpt"
        assert f"Restoring states from the checkpoint path at {last}" in log
        assert (run / "metrics.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stopped_experiment_says_so_exits_128_plus_the_signal_and_resumes(
    tmp_path: Path, signum: int
) -> None:
    config, out = _config(tmp_path, max_epochs=40), tmp_path / "out"
    unfinished = _stop_and_check(config, out, signum)
    _resumes(config, out, unfinished)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _ray_workers_under(driver: int) -> list[int]:
    """PIDs of the Ray workers training a model for ``driver`` (its local Ray instance)."""

    def ancestors(pid: int) -> set[int]:
        found = set()
        while pid > 1:
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                break
            found.add(pid)
        return found

    return [pid for pid in _ray_workers() if driver in ancestors(pid)]


@pytest.mark.slow
def test_sigterm_stops_the_ray_driver_and_its_workers(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    # long enough that no model can finish between the signal and the workers' end, on a
    # loaded machine too
    config, out = _config(tmp_path, max_epochs=150), tmp_path / "out"
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "resources": {"cpus": 1}}))
    workers: list[int] = []
    unfinished = _stop_and_check(config, out, signal.SIGTERM, "--workers", "2", seen=workers)
    assert workers, "no Ray worker was seen training"
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)  # cancelled, the local Ray instance gone
    _resumes(config, out, unfinished)  # (in order: the same models, the same checkpoints)


class _FakeRay:
    """What :func:`run_on_ray` calls of Ray, recording the cancels; ``wait`` is interrupted."""

    def __init__(self, initialized: bool) -> None:
        self.initialized, self.cancelled, self.shut_down = initialized, [], False
        self.exceptions = type(sys)("ray.exceptions")
        self.exceptions.RayTaskError = type("RayTaskError", (Exception,), {})
        self.exceptions.WorkerCrashedError = type("WorkerCrashedError", (Exception,), {})

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options) -> None:
        self.initialized = True

    def remote(self, **resources):
        refs = iter(range(100))
        return lambda function: type("Remote", (), {"remote": lambda *a: next(refs)})

    def put(self, value):
        return value

    def wait(self, refs, num_returns: int):
        raise KeyboardInterrupt  # the signal arrives while the driver waits

    def cancel(self, ref, force: bool) -> None:
        self.cancelled.append((ref, force))

    def shutdown(self) -> None:
        self.shut_down = True


@pytest.mark.parametrize("joined", [True, False], ids=["joined-cluster", "own-instance"])
def test_an_interrupted_driver_cancels_tasks_only_on_a_cluster_it_joined(
    monkeypatch, joined: bool
) -> None:
    """Ray's own instance ends its workers when shut down; cancelling there races a task that
    is finishing and can crash the driver, so only a joined cluster's tasks are cancelled."""
    from types import SimpleNamespace

    ray = _FakeRay(initialized=joined)
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setitem(sys.modules, "ray.exceptions", ray.exceptions)
    config = SimpleNamespace(resources=SimpleNamespace(cpus=1, gpus=0))
    specs = [SimpleNamespace(folder=name, sources=()) for name in ("a", "b", "c")]
    with pytest.raises(KeyboardInterrupt):
        dcat.experiment.cluster.run_on_ray(
            config, None, specs, Path("out"), token="t", workers=2,
            started=lambda spec: None, done=lambda spec, result: None,
        )  # fmt: skip
    assert ray.cancelled == ([(0, True), (1, True)] if joined else [])  # the two running
    assert ray.shut_down is not joined  # a joined cluster stays up for its other users
    assert not hasattr(dcat.experiment.cluster, "_started")  # no module-level state to leak
