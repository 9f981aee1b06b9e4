"""The console of ``dcat experiment``: one progress view, one line per finished model, and the
whole log in ``OUT/experiment.log``.

Lightning prints banners ("GPU available", "TPU available", "💡 Tip: ...") and a
``Trainer.fit stopped`` line for every model, and torch a deprecation warning Lightning
triggers; across a grid of small models they bury dcat's own lines. Unless ``verbose``, they
go to the log file only. Any other warning is still shown.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TextIO

__all__ = ["KNOWN_WARNINGS", "Console", "quiet_libraries"]

_LIBRARY_LOGGERS = ("lightning.pytorch", "lightning.fabric")

KNOWN_WARNINGS = (
    # torch 2.14 deprecates what Lightning's _pytree still does, once per Trainer
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # dcat's frozen sources are in eval mode on purpose
    r"Found \d+ module\(s\) in eval mode",
    # resuming a model: its checkpoint folder holds the checkpoints it resumes from
    r"Checkpoint directory .* exists and is not empty",
    # a grid of small models: a few batches an epoch, on purpose
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)
"""Third-party warnings that say nothing to a dcat user: hidden unless ``verbose``."""

_KNOWN = re.compile("|".join(KNOWN_WARNINGS))


@contextmanager
def quiet_libraries(verbose: bool = False, log_file: IO[str] | None = None) -> Iterator[None]:
    """Within the block, Lightning's INFO lines and :data:`KNOWN_WARNINGS` go to ``log_file``
    only (nowhere without one), unless ``verbose``; other warnings are shown as usual (and
    logged). Loggers and warning filters are put back after."""
    saved = []
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, list(logger.handlers), logger.propagate))
        shown = logging.StreamHandler(sys.stderr)
        shown.setLevel(logging.INFO if verbose else logging.WARNING)
        handlers: list[logging.Handler] = [shown]
        if log_file is not None:
            kept = logging.StreamHandler(log_file)
            kept.setFormatter(formatter)
            handlers.append(kept)
        logger.handlers, logger.propagate = handlers, False
        logger.setLevel(logging.INFO)
    show = warnings.showwarning

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = warnings.formatwarning(message, category, filename, lineno, line)
        if log_file is not None:
            log_file.write(text)
            log_file.flush()
        if verbose or not _KNOWN.search(str(message)):
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = showwarning
        try:
            yield
        finally:
            for logger, level, handlers, propagate in saved:
                logger.setLevel(level)
                logger.handlers, logger.propagate = handlers, propagate


class Console:
    """Where a run's lines go: ``log`` (the console), the run's log file, and a progress bar.

    Args:
        log: Takes each line meant for the user (default: print to stdout).
        verbose: Show Lightning's own lines and the known third-party warnings too.
        progress: Show the grid's progress bar on stderr (``None``: when stderr is a terminal
            and ``log`` is print).
    """

    def __init__(
        self,
        log: Callable[[str], None] = print,
        *,
        verbose: bool = False,
        progress: bool | None = None,
    ) -> None:
        self._log = log
        self.verbose = verbose
        self._progress = (log is print and sys.stderr.isatty()) if progress is None else progress
        self._file: IO[str] | None = None
        self._early: list[str] = []
        self._bar: Any = None
        self._running: dict[str, str] = {}
        self._done = 0
        self._total = 0
        self._started = 0.0
        self._timed = 0

    def line(self, text: str) -> None:
        """One line for the user, kept in the log file too."""
        if self._bar is not None and self._log is print:
            self._bar.write(text, file=sys.stdout)
        else:
            self._log(text)
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n"
        if self._file is not None:
            self._file.write(stamped)
            self._file.flush()
        else:  # said before the results folder exists: written when it does
            self._early.append(stamped)

    @contextmanager
    def recording(self, path: Path | None) -> Iterator[None]:
        """Within the block, lines, Lightning's lines and warnings are appended to ``path``
        (``None``: kept nowhere), and the libraries are quiet on the console unless
        ``verbose``."""
        if path is None:
            with quiet_libraries(self.verbose):
                yield
            return
        with path.open("a", encoding="utf-8") as handle:
            self._file = handle
            handle.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} dcat experiment\n")
            handle.writelines(self._early)
            self._early = []
            try:
                with quiet_libraries(self.verbose, handle):
                    yield
            finally:
                self._file = None

    @contextmanager
    def grid(self, total: int, done: int = 0) -> Iterator[None]:
        """A progress view of ``total`` models, ``done`` of them finished before."""
        self._total, self._done, self._timed = total, done, 0
        self._started = time.perf_counter()
        self._running = {}
        if self._progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=done, unit="model", file=sys.stderr, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}",
            )  # fmt: skip
        try:
            yield
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def started(self, key: str, what: str) -> None:
        """Model ``key`` (``what`` describes it) began training."""
        self._running[key] = what
        self._show_running()

    def finished(self, key: str, text: str, *, trained: bool) -> str:
        """Model ``key`` finished: counts it and returns ``[k/N] text, eta …`` (not printed)."""
        self._running.pop(key, None)
        self._done += 1
        self._timed += trained
        if self._bar is not None:
            self._bar.update(1)
            self._show_running()
        elapsed = time.perf_counter() - self._started
        # finished-before models take no time: the ETA counts the models trained here
        rate = elapsed / self._timed if self._timed else 0.0
        eta = rate * (self._total - self._done)
        return f"[{self._done}/{self._total}] {text}, eta {eta / 60:.1f} min"

    def _show_running(self) -> None:
        if self._bar is None:
            return
        names = list(self._running.values())
        more = f" +{len(names) - 2}" if len(names) > 2 else ""
        self._bar.set_postfix_str(f"running: {'; '.join(names[:2])}{more}" if names else "")
