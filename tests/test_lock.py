"""One run per results folder: the lock of ``dcat experiment``'s ``--out`` (dcat.io.lock)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcat.cli import main
from dcat.errors import DcatError
from dcat.io.lock import LOCK_FILE, RunLock
from test_error_catalogue import _imu_only, write_config, write_manifest


def _hold(folder: Path, pid: int, host: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": pid, "host": host or socket.gethostname(), "started": time.time() - 60}
    (folder / LOCK_FILE).write_text(json.dumps(owner))
    return folder / LOCK_FILE


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_lock_records_the_owner_and_is_removed_on_release(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        held = json.loads((tmp_path / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        assert lock.owner["started"] <= time.time()
        with pytest.raises(DcatError, match=rf"another dcat experiment is running .*process "
                           rf"{os.getpid()} on {socket.gethostname()}"):  # fmt: skip
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_from_another_host_is_refused_with_how_to_clear_it(tmp_path: Path) -> None:
    _hold(tmp_path, 1234, host="elsewhere")
    with pytest.raises(DcatError, match=r"process 1234 on elsewhere.*another host.*delete"):
        RunLock(tmp_path).acquire()


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path, _imu_only(write_manifest(tmp_path / "data")))


def test_a_second_experiment_on_a_running_folder_is_refused(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path)
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold(tmp_path / "out", runner.pid)
        assert main(["experiment", str(config), "--out", str(tmp_path / "out")]) == 2
    finally:
        runner.kill()
        runner.wait()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dcat: error: ") and f"process {runner.pid} on" in err[-1]
    assert "wait for it to end or give another --out" in err[-1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [LOCK_FILE]


@pytest.mark.slow
def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, capsys) -> None:
    config = _config(tmp_path)
    dead = _dead_pid()
    _hold(tmp_path / "out", dead)
    assert main(["experiment", str(config), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"taking over the lock of process {dead}, which is no longer running" in out
    assert (tmp_path / "out" / "results.json").is_file()
    assert not (tmp_path / "out" / LOCK_FILE).exists()  # released at the end
