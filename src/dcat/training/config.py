"""Training options, free of any training framework: reading a config never imports Lightning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from dcat.errors import DcatError

__all__ = ["LoggerKind", "TrainConfig"]

LoggerKind = Literal["csv", "tensorboard", "mlflow", "none"]


@dataclass
class TrainConfig:
    """Everything the engine needs besides the task and the data.

    Attributes:
        max_epochs: Training epochs.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Per-process batch size.
        seed: Seeds weights, shuffling and dropout; same seed → same metrics on the CPU.
        precision: Lightning precision, e.g. ``"32-true"`` or ``"bf16-mixed"`` (GPU).
        accelerator: ``"cpu"``, ``"gpu"`` or ``"auto"``.
        devices: Devices (processes) to use.
        strategy: Lightning strategy, e.g. ``"auto"``, ``"ddp"``, ``"ddp_spawn"``.
        sync_batchnorm: Synchronise batch-norm statistics across processes.
        logger: ``"csv"`` (default, no extra dependency), ``"tensorboard"``, ``"mlflow"`` (a
            local file store in the run folder, no server) or ``"none"``.
        num_workers: DataLoader workers.
        deterministic: Ask torch for deterministic algorithms.
        progress: Show progress bars.
        cache_sources: Serve frozen sources from a
            :class:`~dcat.training.cache.SourceCache` (turn off
            when the source input is augmented).
        cache_dtype: Storage dtype of cached ``K`` and ``V``: ``"float16"``, ``"bfloat16"``,
            ``"float32"``.
        cache_dir: Keep caches on disk here (memory-mapped); ``None`` keeps them in memory.
        log_every_n_steps: Logging interval.
    """

    max_epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    sync_batchnorm: bool = False
    logger: LoggerKind = "csv"
    num_workers: int = 0
    deterministic: bool = True
    progress: bool = True
    cache_sources: bool = True
    cache_dtype: str = "float16"
    cache_dir: str | None = None
    log_every_n_steps: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = {
            "max_epochs": self.max_epochs >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "batch_size": self.batch_size >= 1,
            "devices": self.devices >= 1,
            "num_workers": self.num_workers >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise DcatError(f"TrainConfig.{name} is out of range: {getattr(self, name)!r}")
        if self.logger not in ("csv", "tensorboard", "mlflow", "none"):
            raise DcatError(
                f"TrainConfig.logger must be csv, tensorboard, mlflow or none, got {self.logger!r}"
            )
        if self.cache_dtype not in ("float16", "bfloat16", "float32"):
            raise DcatError(
                f"TrainConfig.cache_dtype must be float16, bfloat16 or float32, "
                f"got {self.cache_dtype!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping, rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DcatError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)
