"""Structural contracts the type checker proves (``make test`` runs mypy over this file): the
shipped types satisfy the protocols training relies on. A change that breaks one (a renamed
method, another signature) fails mypy, not a user's run."""

from __future__ import annotations

from dcat.data.frame_store import FrameStore
from dcat.data.paired import PairedDataset
from dcat.data.protocol import RawInto, TrainingData


def paired_datasets_are_training_data(data: PairedDataset) -> TrainingData:
    return data


def frame_stores_are_read_in_raw_batches(store: FrameStore) -> RawInto:
    return store
