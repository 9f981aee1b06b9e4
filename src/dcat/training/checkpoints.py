"""The files of a run that must survive a kill: checkpoints and the CSV log.

Lightning writes checkpoints through a temporary file that may sit on another disk (then the
"rename" is a copy a kill can cut short) and its CSV logger deletes the old log when a run
resumes; reading, it unpickles whatever a checkpoint holds unless told otherwise. These pieces
make a killed run lose nothing and never execute a checkpoint's code.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from lightning.pytorch.plugins import TorchCheckpointIO

from dcat.errors import DcatError
from dcat.io.atomic import write_atomic
from dcat.nn.weights import load_torch_file

__all__ = ["SafeCheckpointIO", "csv_logger", "resume_epoch"]


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written through a temporary file beside them and a rename, so a killed run
    leaves the previous ``last.ckpt`` whole; read back without unpickling code (whatever
    ``weights_only`` Lightning passes).

    While :attr:`holding` is set, a checkpoint is copied and held instead of written;
    :meth:`flush` writes those held, in the order they came (the epoch's best before the
    ``last.ckpt`` that follows it: see ``TrainConfig.checkpoint_every_s``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self._held: dict[Path, dict[str, Any]] = {}

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("dcat's checkpoint writer takes no storage_options")
        path = Path(path)
        if self.holding:
            # its tensors are the live weights and optimizer state: a copy stays this epoch's
            self._held[path] = copy.deepcopy(checkpoint)
            return
        self._held.pop(path, None)  # superseded
        self._write(checkpoint, path)

    def flush(self) -> None:
        """Write the checkpoints held back."""
        while self._held:
            path = next(iter(self._held))
            self._write(self._held.pop(path), path)

    @staticmethod
    def _write(checkpoint: dict[str, Any], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a fixed name (one writer per run folder): a kill's leftover is overwritten next time
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Any = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        return load_torch_file(path, map_location=map_location)


def resume_epoch(last: Path) -> int:
    """The epoch ``last`` ended; refuses, by name, a file that is not a plain checkpoint."""
    state = load_torch_file(last, mmap=True)
    if not isinstance(state, Mapping) or not isinstance(state.get("epoch"), int):
        raise DcatError(f"{last} is not a Lightning checkpoint (no epoch); delete it to restart")
    return state["epoch"]


def csv_logger(run_dir: Path, keep_through_epoch: int | None) -> Any:
    """Lightning's CSV logger; resuming, it keeps the rows of the epochs already finished.

    (Lightning's own deletes the old ``metrics.csv``, so a resumed run would lose them.)
    """
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities import rank_zero_only

    logger = CSVLogger(save_dir=run_dir, name="logs", version="")
    path = Path(logger.log_dir) / "metrics.csv"
    rank_zero = cast(Any, rank_zero_only)  # Lightning sets its ``rank`` at import, undeclared
    if keep_through_epoch is None or rank_zero.rank != 0 or not path.is_file():
        return logger
    text = path.read_text()
    if not text.endswith("\n"):  # a line cut short by a kill
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = [r for r in reader if (e := _epoch_of(r)) is not None and e <= keep_through_epoch]
    columns = sorted(reader.fieldnames or [])
    with warnings.catch_warnings():  # "previous log files ... will be deleted": not these rows
        warnings.filterwarnings("ignore", message="Experiment logs directory")
        writer = logger.experiment  # its creation deletes metrics.csv
    writer.metrics_keys = columns  # later rows add to these columns, not replace them
    if rows:
        buffer = io.StringIO(newline="")
        out = csv.DictWriter(buffer, fieldnames=columns)
        out.writeheader()
        out.writerows(rows)
        write_atomic(path, buffer.getvalue())
    return logger


def _epoch_of(row: dict) -> int | None:
    """The epoch of a whole CSV row, or None."""
    if None in row or None in row.values():  # too many or too few cells
        return None
    try:
        return int(float(row.get("epoch") or 0))
    except ValueError:
        return None
