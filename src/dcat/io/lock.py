"""One run per results folder: a lock file holding the PID, host and start time of its owner.

``dcat experiment`` takes the lock of its ``--out`` folder before it writes anything there and
releases it when it ends, also on an error. A second run on the same folder is refused with a
message naming the running one. A lock whose process is gone (same host, PID not alive) is
taken over with a warning, so a killed run never blocks the folder. Standard library only.
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
        folder: The results folder (must exist).
        warn: Where the take-over of a stale lock is reported.

    Raises:
        DcatError: On :meth:`acquire`, when a live process (or one on another host, which
            cannot be checked) holds the lock; the message names its PID, host and start.
    """

    def __init__(self, folder: str | Path, warn: Callable[[str], None] = print) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.warn = warn
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._held = False

    def _holder(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock, or refuse (see the class)."""
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
            with os.fdopen(fd, "w") as handle:
                json.dump(self.owner, handle)
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
        """Remove the lock if this process holds it."""
        if self._held:
            holder = self._holder()
            if holder is not None and holder.get("pid") == self.owner["pid"]:
                self.path.unlink(missing_ok=True)
            self._held = False

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
