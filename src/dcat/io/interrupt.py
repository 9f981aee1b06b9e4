"""SIGINT and SIGTERM end a run the same way: one line, exit code 128 + the signal, never 0.

Left to the libraries, Ctrl-C (SIGINT) inside ``Trainer.fit`` becomes Lightning's "graceful
shutdown" and ``sys.exit(1)``, and SIGTERM (what SLURM, Kubernetes or Ray send to stop a job)
becomes Lightning's ``SIGTERMException``, a ``SystemExit`` with no code: exit 0, which a
scheduler records as success. Under Ray, the driver's SIGTERM meets Ray's handlers instead (a
C++ stack dump, then an abort).

Inside :func:`interruptible` both signals raise :class:`Interrupted` where the main thread is.
It is a :class:`KeyboardInterrupt`, so every library that cleans up after Ctrl-C does so for
SIGTERM too, and every ``finally`` on the way runs: the run lock is released, Ray's tasks are
cancelled, the model being trained keeps its last whole checkpoint. Where a library answers it
with something else (Lightning's ``sys.exit(1)``: :mod:`dcat.training.engine` raises it again;
Ray's ``wait``, a plain ``KeyboardInterrupt``), :meth:`Interrupted.of` recovers the signal. A
second signal while the clean-up runs is ignored; a third ends the process as its default would.
Standard library only.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["SIGNALS", "Interrupted", "interruptible"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals :func:`interruptible` turns into :class:`Interrupted`."""

# the signals received inside the current interruptible(), first first; and the process that
# installed the handler (a forked child, e.g. a DataLoader worker, inherits it)
_received: list[int] = []
_owner: list[int] = []


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (Ctrl-C's SIGINT, or SIGTERM).

    Args:
        signum: The signal's number.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.signum = int(signum)
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[Interrupted], tuple[int]]:
        return type(self), (self.signum,)  # pickled (e.g. by Ray) by its signal, not its text

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def message(self) -> str:
        """``"interrupted by SIGTERM"``."""
        return f"interrupted by {self.name}"

    @classmethod
    def of(cls, error: KeyboardInterrupt) -> Interrupted:
        """``error`` itself, or for a plain ``KeyboardInterrupt`` a library raised in place of
        an :class:`Interrupted` (Ray's ``wait`` does), the first signal :func:`interruptible`
        received (SIGINT when none was: Python's own Ctrl-C)."""
        if isinstance(error, Interrupted):
            return error
        return cls(_received[0] if _received else signal.SIGINT)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _owner and os.getpid() != _owner[0]:  # a forked child: as if no handler were installed
        if signum == signal.SIGINT:
            signal.default_int_handler(signum, frame)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received.append(signum)
    if len(_received) == 1:
        raise Interrupted(signum)
    if len(_received) >= 3:  # the clean-up hangs: end as the signal's default would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM raise :class:`Interrupted` (once; see the module); the
    previous handlers are restored after. A plain ``KeyboardInterrupt`` leaving the block is
    raised as the :class:`Interrupted` of the signal received first. Outside the main thread
    (where Python cannot set handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    _owner[:] = [os.getpid()]
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    try:
        yield
    except KeyboardInterrupt as err:  # what leaves is an Interrupted naming its signal
        if isinstance(err, Interrupted):
            raise
        raise Interrupted.of(err) from err
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _received.clear()
