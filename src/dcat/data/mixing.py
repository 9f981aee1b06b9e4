"""Training batches that mix labelled and unlabelled samples at a fixed ratio.

Each batch holds ``batch_size`` labelled samples and ``round(ratio · batch_size)`` unlabelled
ones, and an epoch is one pass over the *labelled* samples. So a model that also learns from
unlabelled recordings takes exactly as many optimiser steps as one trained on the labelled
samples alone: more data never means more updates by accident, and every arm of a comparison
trains for the same number of steps. With no labelled sample, an epoch is one pass over the
unlabelled samples in batches of ``max(1, round(ratio · batch_size))``.

The unlabelled samples are drawn without replacement, each epoch from as many fresh
permutations as it needs. Both orders depend only on ``(seed, epoch)``, so a resumed run sees
what an uninterrupted one saw; under DDP each rank takes its share of the same global order,
as :class:`torch.utils.data.DistributedSampler` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from dcat.errors import DcatError
from dcat.nn.labels import UNLABELLED

__all__ = ["MixedBatchSampler", "steps_per_epoch"]


def steps_per_epoch(labelled: int, unlabelled: int, batch_size: int, ratio: float) -> int:
    """Optimiser steps in one epoch of one process (one replica).

    Args:
        labelled: Labelled training samples.
        unlabelled: Unlabelled training samples.
        batch_size: Labelled samples per batch.
        ratio: Unlabelled samples per labelled one in a batch.

    Returns:
        ``ceil(labelled / batch_size)``, or with no labelled sample
        ``ceil(unlabelled / max(1, round(ratio · batch_size)))``.
    """
    if labelled:
        return math.ceil(labelled / batch_size)
    return math.ceil(unlabelled / _unlabelled_batch(batch_size, ratio, alone=True))


def _unlabelled_batch(batch_size: int, ratio: float, *, alone: bool) -> int:
    share = round(ratio * batch_size)
    return max(1, share) if alone else share


class MixedBatchSampler(Sampler[list[int]]):
    """Batches of a partly labelled data set (a DataLoader's ``batch_sampler``).

    Args:
        labels: ``(N,)`` class indices, :data:`~dcat.nn.labels.UNLABELLED` for the samples
            without one.
        batch_size: Labelled samples per batch (≥ 1).
        ratio: Unlabelled samples per labelled one (≥ 0; 0 leaves them out).
        seed: Seeds both orders, with the epoch (:meth:`set_epoch`).
        num_replicas: Processes sharing each batch's samples (DDP world size).
        rank: This process's rank.

    Raises:
        DcatError: A bad size, ratio, rank, or an empty data set.
    """

    def __init__(
        self,
        labels: np.ndarray,
        batch_size: int,
        ratio: float = 1.0,
        *,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        labels = np.asarray(labels)
        if batch_size < 1 or not ratio >= 0:
            raise DcatError(f"batch_size must be ≥ 1 and ratio ≥ 0, got {batch_size}, {ratio}")
        if not 0 <= rank < num_replicas:
            raise DcatError(f"rank {rank} is not in [0, {num_replicas})")
        self.labelled = np.flatnonzero(labels != UNLABELLED)
        self.unlabelled = np.flatnonzero(labels == UNLABELLED)
        if not len(labels):
            raise DcatError("no training samples to draw batches from")
        self.batch_size, self.ratio, self.seed = batch_size, ratio, seed
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        alone = not len(self.labelled)
        self.per_batch = _unlabelled_batch(batch_size, ratio, alone=alone)
        if not len(self.unlabelled):
            self.per_batch = 0
        self.first = self.unlabelled if alone else self.labelled  # the part an epoch passes over

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s orders next (Lightning calls this each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        local = math.ceil(len(self.first) / self.num_replicas)
        size = self.per_batch if self.first is self.unlabelled else self.batch_size
        return math.ceil(local / size)

    def _order(self, indices: np.ndarray, stream: int, count: int) -> np.ndarray:
        """``count`` entries of ``indices``, from as many seeded permutations as needed."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 2 + stream)
        rounds = max(1, math.ceil(count / max(1, len(indices))))
        drawn = [indices[torch.randperm(len(indices), generator=generator).numpy()]
                 for _ in range(rounds)]  # fmt: skip
        return np.concatenate(drawn)[:count]

    def __iter__(self) -> Iterator[list[int]]:
        steps = len(self)
        alone = self.first is self.unlabelled
        first_size = self.per_batch if alone else self.batch_size
        # padded (from a further permutation) so each rank gets the same count, as
        # DistributedSampler pads; the last batch may be short
        count = math.ceil(len(self.first) / self.num_replicas) * self.num_replicas
        local = self._order(self.first, 0, count)[self.rank :: self.num_replicas]
        extra = np.empty(0, dtype=np.int64)
        if not alone and self.per_batch:
            extra = self._order(self.unlabelled, 1, steps * self.per_batch * self.num_replicas)
            extra = extra[self.rank :: self.num_replicas]
        for step in range(steps):
            batch = local[step * first_size : (step + 1) * first_size].tolist()
            batch += extra[step * self.per_batch : (step + 1) * self.per_batch].tolist()
            yield [int(i) for i in batch]
