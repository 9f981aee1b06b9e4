"""What training needs from a data set, as typed protocols (``typing.Protocol``).

The engine trains on any ``torch.utils.data.Dataset`` whose items are dcat batches
(``{"inputs": {modality: Tensor}, "label": Tensor, "index": Tensor}``). A data set that also
satisfies :class:`TrainingData`, as :class:`~dcat.data.paired.PairedDataset` does, gives more:
the model card's shape, rate and channel names, loaders of only the modalities a task reads,
and source caches keyed by a fingerprint instead of a pass over every item. An input array that
satisfies :class:`RawBatches` (the frame store of decoded video) is read in contiguous batches
of raw samples by the source cache.

The engine and the cache ask ``isinstance(dataset, TrainingData)`` and nothing else;
``tests/test_contracts.py`` and the type checker (``make test`` runs mypy) hold
``PairedDataset`` to these protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dcat.data.paired import StreamInfo

__all__ = ["RawBatches", "RawInto", "TrainingData"]


@runtime_checkable
class TrainingData(Protocol):
    """A data set training can describe, narrow and fingerprint."""

    @property
    def class_names(self) -> Sequence[str]:
        """Class names, index = label."""
        ...

    @property
    def inputs(self) -> Mapping[str, Any]:
        """Modality → its samples ``(N, ...)``: an array, or a lazy array (which may satisfy
        :class:`RawBatches`)."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One dcat item: ``{"inputs": {modality: (...)}, "label": (), "index": ()}``."""
        ...

    def shape(self, modality: str) -> tuple[int, ...]:
        """The shape of one sample of ``modality``, e.g. ``(C, T)``."""
        ...

    def stream(self, modality: str) -> StreamInfo:
        """Rate, channel names and kind of ``modality``'s samples."""
        ...

    def select(self, modalities: Sequence[str]) -> TrainingData:
        """The same samples with only ``modalities`` (what a task reads)."""
        ...

    def fingerprint(self, modalities: Sequence[str] | None = None) -> str:
        """A digest of the labels and of ``modalities``' samples (all by default)."""
        ...


@runtime_checkable
class RawBatches(Protocol):
    """A lazy array whose raw samples (e.g. uint8 frames) are read many at a time."""

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, ...)``."""
        ...

    def __len__(self) -> int: ...

    def raw_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The raw samples at ``indices`` ``(len(indices), ...)``, in their stored dtype."""
        ...


@runtime_checkable
class RawInto(RawBatches, Protocol):
    """A :class:`RawBatches` that also fills a caller's buffer (a pinned host buffer)."""

    def raw_into(self, indices: Sequence[int] | np.ndarray, out: np.ndarray) -> None:
        """Write the raw samples at ``indices`` into ``out[: len(indices)]``."""
        ...
