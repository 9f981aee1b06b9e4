"""Kept for existing imports: the engine now lives in :mod:`dcat.training.engine`."""

from dcat.training.engine import (  # noqa: F401
    DCATModule,
    PairedDataModule,
    RunResult,
    TrainConfig,
    evaluate,
    fit,
    versions,
)
from dcat.training.engine import __all__ as __all__
