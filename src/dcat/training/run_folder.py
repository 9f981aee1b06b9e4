"""The run folder of one trained model: the only code that knows its file names.

A run folder, as :func:`dcat.training.engine.fit` writes it::

    RUN/
      checkpoints/best.ckpt   the weights of best validation macro-F1 (frozen sources left out)
      checkpoints/last.ckpt   the end of the last finished epoch (what a resume continues from)
      metrics.json            best validation and test metrics, confusion matrix; written last,
                              so its presence means the model is finished

The grid, the runner, the report, the refits, the estimate and export find these files through
:class:`RunFolder`, and the state-dict prefixes of a checkpoint's target and sources are named
here once. Standard library only (and :mod:`dcat.io.atomic`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcat.io.atomic import write_atomic

__all__ = ["SOURCE_PREFIX", "TARGET_PREFIX", "RunFolder", "target_weights"]

TARGET_PREFIX = "task.target."
"""Prefix of the target network's weights in a checkpoint's ``state_dict``."""
SOURCE_PREFIX = "task.sources."
"""Prefix of the frozen sources' weights in a checkpoint's ``state_dict`` (never saved)."""


@dataclass(frozen=True)
class RunFolder:
    """The files of one model's run folder.

    Attributes:
        path: The run folder.
    """

    path: Path

    @property
    def checkpoints(self) -> Path:
        """The checkpoint folder (``RUN/checkpoints``)."""
        return self.path / "checkpoints"

    @property
    def best(self) -> Path:
        """The checkpoint of best validation F1 (``RUN/checkpoints/best.ckpt``)."""
        return self.checkpoints / "best.ckpt"

    @property
    def last(self) -> Path:
        """The checkpoint a resume continues from (``RUN/checkpoints/last.ckpt``)."""
        return self.checkpoints / "last.ckpt"

    @property
    def metrics(self) -> Path:
        """The finished model's metrics (``RUN/metrics.json``)."""
        return self.path / "metrics.json"

    def finished(self) -> bool:
        """Whether the model finished (its metrics are written)."""
        return self.metrics.is_file()

    def has_state(self) -> bool:
        """Whether it holds a finished or interrupted model (its metrics or a checkpoint)."""
        return self.finished() or (
            self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))
        )

    def read_metrics(self) -> dict[str, Any]:
        """The finished model's metrics; ``FileNotFoundError`` when it has none."""
        return json.loads(self.metrics.read_text())

    def write_metrics(self, result: dict[str, Any]) -> None:
        """Write the metrics atomically: the model is finished once they are there."""
        write_atomic(self.metrics, json.dumps(result, indent=2))


def target_weights(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The target network's weights of a checkpoint's ``state_dict``, without their prefix."""
    return {
        k[len(TARGET_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(TARGET_PREFIX)
    }
