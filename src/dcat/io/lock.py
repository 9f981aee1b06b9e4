"""One run per results folder: a lock file holding the PID, host and start time of its owner.

``dcat experiment`` takes the lock of its ``--out`` folder first, before it reads the data (which
can take minutes), and releases it when it ends, also on an error or an interrupt. A second run
on the same folder is refused at once with a message naming the running one. A lock whose
process is gone (same host, PID not alive) is taken over with a warning, so a killed run never
blocks the folder.

The lock may create the folder (``create=True``); it then removes the folders it created when
it is released while they are empty, so a run refused for bad input, before it wrote anything,
leaves no folder behind. Standard library only.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from dcat.errors import DcatError

__all__ = ["LOCK_FILE", "RunLock"]

LOCK_FILE = "dcat.lock"


def _missing(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunLock:
    """The lock of one results folder (``folder/dcat.lock``), a context manager.

    Args:
        folder: The results folder (must exist, unless ``create``).
        warn: Where the take-over of a stale lock is reported.
        create: Create ``folder`` and its missing parents on :meth:`acquire`; :meth:`release`
            removes those of them that are still empty.

    Raises:
        DcatError: On :meth:`acquire`, when a live process (or one on another host, which
            cannot be checked) holds the lock; the message names its PID, host and start.
    """

    def __init__(
        self, folder: str | Path, warn: Callable[[str], None] = print, create: bool = False
    ) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.warn = warn
        self.create = create
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._held = False
        self._created: list[Path] = []  # deepest first

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock, or refuse (see the class)."""
        if self.create:
            self._created = _missing(self.path.parent)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._take()
        except BaseException:
            self._remove_created()
            raise

    def _take(self) -> None:
        for _attempt in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # written half by a dead process, or being written now
                    time.sleep(0.1)
                    if self._holder() is None:
                        self.warn(f"warning: {self.path}: unreadable lock file, taken over")
                        self.path.unlink(missing_ok=True)
                    continue
                self._refuse_or_take_over(holder)
                continue
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(self.owner, handle)
            except BaseException:  # an interrupt, a full disk: no half-written lock left
                self.path.unlink(missing_ok=True)
                raise
            self._held = True
            return
        raise DcatError(f"{self.path}: could not take the lock of this results folder")

    def _refuse_or_take_over(self, holder: dict) -> None:
        pid, host = holder.get("pid"), holder.get("host")
        started = holder.get("started")
        when = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
            if isinstance(started, int | float)
            else "at an unknown time"
        )
        here = host == self.owner["host"]
        if here and isinstance(pid, int) and not _alive(pid):
            self.warn(
                f"warning: {self.path}: taking over the lock of process {pid}, which is no "
                f"longer running (started {when})"
            )
            self.path.unlink(missing_ok=True)
            return
        where = "" if here else " (another host: dcat cannot check whether it still runs)"
        raise DcatError(
            f"{self.path.parent}: another dcat experiment is running in this folder: process "
            f"{pid} on {host}, started {when}{where}; wait for it to end or give another --out"
            + ("" if here else f" (delete {self.path} if that run is gone)")
        )

    def release(self) -> None:
        """Remove the lock if this process holds it, then the folders :meth:`acquire` created
        if they are empty."""
        if self._held:
            holder = self._holder()
            if holder is not None and holder.get("pid") == self.owner["pid"]:
                self.path.unlink(missing_ok=True)
            self._held = False
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in self._created:  # deepest first; a folder with anything in it stays
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
