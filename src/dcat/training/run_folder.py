"""The run folder of one trained model: the only code that knows its file names.

A run folder, as :func:`dcat.training.engine.fit` writes it::

    RUN/
      checkpoints/best.ckpt   the weights of best validation macro-F1 (frozen sources left out)
      checkpoints/last.ckpt   the end of the last finished epoch (what a resume continues from)
      metrics.json            best validation and test metrics, confusion matrix; written last,
                              so its presence means the model is finished
      config.yaml             the training options, the task, versions and torch threads

The grid, the runner, the report, the refits, the estimate and export find these files through
:class:`RunFolder`, and the state-dict prefixes of a checkpoint's target and sources are named
here once. It is also the one loader of a trained network: :meth:`RunFolder.load_target` puts
a finished run's weights into a network built from its recipe (a frozen source, or a model a
rerun reuses), and export rebuilds the network its card describes and reads the weights with
:func:`read_target_state`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcat.errors import DcatError
from dcat.io.atomic import write_atomic
from dcat.nn.model import ModalityNet
from dcat.nn.weights import load_torch_file

__all__ = [
    "SOURCE_PREFIX",
    "TARGET_PREFIX",
    "RunFolder",
    "check_fits",
    "load_target",
    "read_target_state",
    "target_weights",
]

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

    @property
    def config(self) -> Path:
        """The run's training options, task and provenance (``RUN/config.yaml``)."""
        return self.path / "config.yaml"

    def threads(self) -> int | None:
        """The torch threads the model trained with (``threads`` in its ``config.yaml``);
        ``None`` without the file or the field (a run of an earlier version)."""
        import yaml

        try:
            value = yaml.safe_load(self.config.read_text()).get("threads")
        except (OSError, AttributeError, yaml.YAMLError):
            return None
        return int(value) if isinstance(value, int) else None

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

    def load_target(self, net: ModalityNet) -> ModalityNet:
        """Load the finished run's best target weights into ``net`` (a fresh network of the
        run's recipe), in eval mode.

        Raises:
            DcatError: An unreadable or foreign checkpoint, or weights of another network
                (the classes, ``d_out`` or layers that differ, naming the checkpoint).
        """
        weights, _ = read_target_state(self.best)
        check_fits(self.best, weights, net)
        net.load_state_dict(weights)
        return net.eval()


def load_target(run_dir: Path, net: ModalityNet) -> ModalityNet:
    """:meth:`RunFolder.load_target` of the run folder ``run_dir``."""
    return RunFolder(Path(run_dir)).load_target(net)


def read_target_state(checkpoint: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The target network's weights of a dcat checkpoint file, and the whole checkpoint.

    Raises:
        DcatError: A file that is not a readable torch file, holds code, or holds no
            ``state_dict`` (each naming the file).
    """
    try:
        state = load_torch_file(checkpoint)
    except (EOFError, RuntimeError) as err:  # empty or cut files surface as these
        raise DcatError(f"{checkpoint} is not a readable torch file: {err}") from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise DcatError(f"{checkpoint}: not a dcat checkpoint (no state_dict)")
    return target_weights(state["state_dict"]), state


def check_fits(path: Path, state: dict[str, Any], net: ModalityNet) -> None:
    """A :class:`DcatError` naming ``path`` and what differs when ``state`` is not a ``net``."""
    import torch

    expected = net.state_dict()
    problems = []
    head, want = state.get("head.weight"), expected["head.weight"]
    if isinstance(head, torch.Tensor) and head.ndim == 2 and head.shape != want.shape:
        if head.shape[0] != want.shape[0]:
            problems.append(
                f"holds a model for {head.shape[0]} classes, this experiment needs {want.shape[0]}"
            )
        if head.shape[1] != want.shape[1]:
            problems.append(f"has d_out {head.shape[1]}, this experiment needs {want.shape[1]}")
    if not problems:
        shapes = [
            f"{k} {tuple(state[k].shape)} ≠ {tuple(v.shape)}"
            for k, v in expected.items()
            if k in state and getattr(state[k], "shape", None) != v.shape
        ]
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        found = {"shapes differ": shapes, "missing": missing, "unexpected": unexpected}
        for what, keys in found.items():
            if keys:
                more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
                problems.append(f"{what}: {', '.join(keys[:4])}{more}")
    if problems:
        raise DcatError(
            f"{path} {'; '.join(problems)}: it was trained with another configuration; use a "
            "fresh --out folder"
        )


def target_weights(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The target network's weights of a checkpoint's ``state_dict``, without their prefix."""
    return {
        k[len(TARGET_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(TARGET_PREFIX)
    }
