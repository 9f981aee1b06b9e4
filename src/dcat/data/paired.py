"""Paired multi-sensor samples held in memory, as a ``torch.utils.data.Dataset``.

A paired sample holds one array per modality, a label, a subject id and a recording id
(docs/design.md, "Data model"). Items are dictionaries, the batch format every task consumes::

    {"inputs": {modality: Tensor (C_m, T_m)}, "label": int64 scalar, "index": int64 scalar}

``index`` is the item's position in this dataset; source caches are keyed by it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypedDict, Unpack, cast, runtime_checkable

import numpy as np
import torch
from torch.utils.data import Dataset

from dcat.errors import DcatError
from dcat.io.card import KINDS
from dcat.io.normalization import ChannelStats, NormKind, fit_normalization
from dcat.nn.labels import UNLABELLED

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = [
    "UNLABELLED",
    "ChannelStats",
    "LazyArray",
    "PairedDataset",
    "StreamInfo",
    "common_rate",
    "fit_normalization",
]


@runtime_checkable
class LazyArray(Protocol):
    """An array-like read per sample, for modalities too large for memory (decoded video).

    ``PairedDataset`` keeps such an array as it is: items are read one at a time, ``subset``
    makes a view with :meth:`take`, and source caches are keyed by :meth:`fingerprint`.
    """

    shape: tuple[int, ...]
    ndim: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample ``index`` as a float32 array of shape ``shape[1:]``."""
        ...

    def take(self, indices: np.ndarray) -> LazyArray:
        """A view of the samples at ``indices``, in that order."""
        ...

    def fingerprint(self) -> str:
        """A hash of the content (e.g. of the source files and decoding options)."""
        ...


def _is_lazy(array: object) -> TypeIs[LazyArray]:
    return isinstance(array, LazyArray) and not isinstance(array, np.ndarray)


class _TrialFields(TypedDict, total=False):
    """The further :class:`StreamInfo` fields :meth:`StreamInfo.of_trials` passes on."""

    kind: str
    value_range: tuple[float, float] | None


@dataclass(frozen=True)
class StreamInfo:
    """How one modality's samples relate to the recording they were cut from.

    Exported models carry this so that ``dcat predict`` can cut a raw recording the same way.

    Attributes:
        rate_hz: Steps per second along the time axis of the stored arrays (frames per second
            for video, samples per second for audio), or ``None`` when unknown.
        channels: Channel names in order (e.g. ``("acc_x", ...)``), or ``None``.
        note: How the arrays were made, when it matters for deployment (e.g. resampled trials).
        kind: ``"series"`` (sensor channels), ``"video"`` (frames ``(F, C, H, W)``) or
            ``"audio"`` (a waveform, ``rate_hz`` its sample rate).
        value_range: Video from arrays (depth, thermal): the values mapped to ``0…255``
            before frames were stored; ``None`` for 8-bit images and video files.
        recording_rate_hz: Steps per second of the raw recordings, as their files hold them
            (``dcat predict`` reads a recording without time stamps at this rate). Left
            ``None`` it is ``rate_hz`` (the arrays are at the recordings' own rate), unless
            ``resampled``: then ``None`` means unknown.
        resampled: The arrays are not at the recordings' own rate (trials resampled to a fixed
            length, frames spread over a clip, recordings of several rates on one grid).
    """

    rate_hz: float | None = None
    channels: tuple[str, ...] | None = None
    note: str = ""
    kind: str = "series"
    value_range: tuple[float, float] | None = None
    recording_rate_hz: float | None = None
    resampled: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DcatError(f"stream kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.recording_rate_hz is None and not self.resampled:
            # frozen: the default is filled in once, here
            object.__setattr__(self, "recording_rate_hz", self.rate_hz)

    @classmethod
    def of_trials(
        cls,
        steps: int,
        seconds: Sequence[float],
        channels: Sequence[str],
        native: str,
        native_hz: float | None = None,
        **fields: Unpack[_TrialFields],
    ) -> StreamInfo:
        """A stream of whole trials, each resampled to ``steps`` (one trial is one window).

        Args:
            steps: Steps per trial after resampling.
            seconds: ``(N,)`` duration of each trial.
            channels: Channel names.
            native: The recording's own rate, for the note (e.g. ``"50 Hz"``).
            native_hz: The recordings' own rate in Hz, when one is known for all (it becomes
                ``recording_rate_hz``); ``None`` when unknown or mixed.
            fields: Further fields (``kind``, ``value_range``).

        Returns:
            The rate is steps per median trial duration, so ``dcat predict`` cuts windows of a
            median trial's length from a continuous recording (read at ``native_hz`` and
            resampled to that rate).
        """
        median = float(np.median(seconds))
        return cls(
            rate_hz=steps / median,
            channels=tuple(channels),
            note=f"trials ({native}) resampled to {steps} steps; median trial {median:.2f} s",
            recording_rate_hz=native_hz,
            resampled=True,
            **fields,
        )

    def to_dict(self) -> dict:
        return {
            "rate_hz": self.rate_hz,
            "channels": list(self.channels) if self.channels is not None else None,
            "note": self.note,
            "kind": self.kind,
            "value_range": list(self.value_range) if self.value_range is not None else None,
            "recording_rate_hz": self.recording_rate_hz,
            "resampled": self.resampled,
        }


def common_rate(rates: Sequence[float], tolerance: float = 0.02) -> float | None:
    """The median of ``rates`` when every rate lies within ``tolerance`` (relative) of it, else
    ``None`` (recordings of several rates have no one rate to read a new recording at)."""
    if not len(rates):
        return None
    median = float(np.median(rates))
    return median if all(abs(r / median - 1) <= tolerance for r in rates) else None


class PairedDataset(Dataset):
    """Time-synchronised samples of several modalities, held as arrays.

    Args:
        inputs: Modality name → float array ``(N, ...)``: ``(N, C_m, T_m)`` for series (``T_m``
            may differ by modality), ``(N, F, C, H, W)`` for video frames.
        labels: ``(N,)`` class indices in ``[0, len(class_names))``, or :data:`UNLABELLED`
            (``-1``) for a sample without a label (training data only: such samples reach the
            transfer terms that learn without labels, never a cross-entropy or a metric).
        subjects: ``(N,)`` subject ids.
        recordings: ``N`` recording ids (e.g. ``"a1_s1_t1"``).
        class_names: Names of the classes, index = label.
        name: Data set name, recorded in results.
        subject_names: Original subject names by id, when ids were assigned (e.g. manifests).
        streams: Per modality, its :class:`StreamInfo` (rate, channel names), when known.
        validate: Check shapes, label range and finiteness (derived views skip the array scan).
        group: What a subject id stands for, as the data names it (``subject``, ``session``,
            a manifest's group column, VGGSound's ``video``): the groups an OOD split keeps
            apart, named so in the report.
    """

    # Declared, not set: only some readers set these, on the data set they return (views made
    # by subset()/select() do not carry them); elsewhere reading them raises AttributeError.
    skipped: dict[str, int]
    """Reason → count of the source clips left out (:func:`~dcat.data.vggsound.load_vggsound`)."""
    skipped_clips: dict[str, list[str]]
    """Reason → the clips left out for it (:func:`~dcat.data.vggsound.load_vggsound`)."""

    def __init__(
        self,
        inputs: Mapping[str, np.ndarray | LazyArray],
        labels: Sequence[int] | np.ndarray,
        subjects: Sequence[int] | np.ndarray,
        recordings: Sequence[str],
        class_names: Sequence[str],
        *,
        name: str = "paired",
        subject_names: Mapping[int, str] | None = None,
        streams: Mapping[str, StreamInfo] | None = None,
        validate: bool = True,
        group: str = "subject",
    ) -> None:
        if not inputs:
            raise DcatError("inputs must hold at least one modality")
        self.group = group
        self.labels = np.asarray(labels, dtype=np.int64)
        self.subjects = np.asarray(subjects, dtype=np.int64)
        self.recordings = list(recordings)
        self.class_names = list(class_names)
        self.name = name
        self.subject_names = dict(subject_names) if subject_names else {}
        unknown = sorted(set(streams or {}) - set(inputs))
        if unknown:
            raise DcatError(f"streams names modalities {unknown} that are not in inputs")
        self.streams: dict[str, StreamInfo] = dict(streams or {})
        n = len(self.labels)
        if self.labels.ndim != 1 or len(self.subjects) != n or len(self.recordings) != n:
            raise DcatError(
                f"labels, subjects and recordings must be 1-D of one length, got "
                f"{self.labels.shape}, {self.subjects.shape}, {len(self.recordings)}"
            )
        known = self.labels[self.labels != UNLABELLED]
        if known.size and (known.min() < 0 or known.max() >= len(self.class_names)):
            raise DcatError(
                f"labels must lie in [0, {len(self.class_names)}) or be {UNLABELLED} (no "
                f"label), got [{self.labels.min()}, {self.labels.max()}]"
            )
        self.inputs: dict[str, np.ndarray | LazyArray] = {}
        for modality, array in inputs.items():
            if _is_lazy(array):
                if len(array) != n or array.ndim < 2:
                    raise DcatError(
                        f"inputs[{modality!r}] must hold {n} samples of at least "
                        f"1 dimension, got shape {array.shape}"
                    )
                self.inputs[modality] = array
                continue
            array = np.asarray(array, dtype=np.float32)
            if array.ndim < 2 or array.shape[0] != n:
                raise DcatError(
                    f"inputs[{modality!r}] must have shape ({n}, ...) e.g. ({n}, C, T), "
                    f"got {array.shape}"
                )
            if validate and not np.isfinite(array).all():
                bad = int(np.argwhere(~np.isfinite(array))[0][0])
                raise DcatError(
                    f"inputs[{modality!r}] has NaN or Inf values (first in sample {bad}, "
                    f"recording {self.recordings[bad]!r})"
                )
            self.inputs[modality] = array

    @property
    def modalities(self) -> list[str]:
        return list(self.inputs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labelled(self) -> np.ndarray:
        """``(N,)`` bool: which samples have a label (the others' is :data:`UNLABELLED`)."""
        return self.labels != UNLABELLED

    @property
    def has_unlabelled(self) -> bool:
        """Whether any sample has no label."""
        return not bool(self.labelled.all())

    def shape(self, modality: str) -> tuple[int, ...]:
        """Shape of one modality's samples, e.g. ``(C, T)``."""
        self._check_modality(modality)
        return tuple(self.inputs[modality].shape[1:])

    def stream(self, modality: str) -> StreamInfo:
        """The :class:`StreamInfo` of ``modality`` (empty when the reader did not record one)."""
        self._check_modality(modality)
        return self.streams.get(modality, StreamInfo())

    def _check_modality(self, modality: str) -> None:
        if modality not in self.inputs:
            raise DcatError(f"unknown modality {modality!r}; this data set has {self.modalities}")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {
            "inputs": {
                m: torch.from_numpy(np.ascontiguousarray(a[index], dtype=np.float32))
                for m, a in self.inputs.items()
            },
            "label": torch.tensor(self.labels[index]),
            "index": torch.tensor(index),
        }

    def _derive(
        self, inputs: Mapping[str, np.ndarray | LazyArray], idx: np.ndarray | None = None
    ) -> PairedDataset:
        labels, subjects, recordings = self.labels, self.subjects, self.recordings
        if idx is not None:
            labels, subjects = labels[idx], subjects[idx]
            recordings = [recordings[i] for i in idx]
        return PairedDataset(
            inputs, labels, subjects, recordings, self.class_names, name=self.name,
            subject_names=self.subject_names, validate=False,
            streams={m: s for m, s in self.streams.items() if m in inputs}, group=self.group,
        )  # fmt: skip

    def subset(self, indices: Sequence[int] | np.ndarray) -> PairedDataset:
        """A new dataset with the given samples, in that order (``index`` restarts at 0)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise DcatError(f"subset indices out of range for {len(self)} samples")
        return self._derive(
            {m: a.take(idx) if _is_lazy(a) else a[idx] for m, a in self.inputs.items()}, idx
        )

    def hiding_labels(self, indices: Sequence[int] | np.ndarray) -> PairedDataset:
        """The same samples (arrays shared) with the labels at ``indices`` replaced by
        :data:`UNLABELLED`: training data whose labels a label-efficiency point does not know."""
        labels = self.labels.copy()
        labels[np.asarray(indices, dtype=np.int64)] = UNLABELLED
        derived = self._derive(self.inputs)
        derived.labels = labels
        return derived

    def select(self, modalities: Sequence[str]) -> PairedDataset:
        """The same samples with only ``modalities`` (arrays shared, not copied), so loaders
        collate and move only what a task reads."""
        for modality in modalities:
            self._check_modality(modality)
        return self._derive({m: self.inputs[m] for m in dict.fromkeys(modalities)})

    def with_channels(
        self, name: str, base: str, channels: Sequence[int] | np.ndarray
    ) -> PairedDataset:
        """The same samples plus a modality ``name`` made of ``channels`` of ``base`` (a
        *derived* modality, e.g. the right-arm joints of a skeleton).

        Args:
            name: The new modality (must not exist yet).
            base: A series modality ``(N, C, T)``.
            channels: Channel indices of ``base``, in the new order.

        Raises:
            DcatError: ``name`` exists, ``base`` is unknown or not a loaded series, or a
                channel is out of range or repeated.
        """
        self._check_modality(base)
        if name in self.inputs:
            raise DcatError(f"derived modality {name!r} already exists in the data set")
        array = self.inputs[base]
        if _is_lazy(array) or array.ndim != 3:
            raise DcatError(
                f"derived modality {name!r}: {base!r} must be a series (N, C, T) held in "
                f"memory, got shape {array.shape}"
            )
        idx = np.asarray(channels, dtype=np.int64).reshape(-1)
        count = array.shape[1]
        bad = [int(c) for c in idx if not 0 <= c < count]
        if bad or not idx.size or len(set(idx.tolist())) != idx.size:
            problem = f"out of range {bad}" if bad else "empty or repeated"
            raise DcatError(
                f"derived modality {name!r}: channels of {base!r} ({count} channels) are "
                f"{problem}: {idx.tolist()}"
            )
        inputs = {**self.inputs, name: np.ascontiguousarray(array[:, idx])}
        derived = self._derive(inputs)
        if base in self.streams:
            stream = self.streams[base]
            names = None if stream.channels is None else tuple(stream.channels[i] for i in idx)
            derived.streams[name] = replace(stream, channels=names)
        return derived

    def with_modality(
        self, name: str, array: np.ndarray, stream: StreamInfo | None = None
    ) -> PairedDataset:
        """The same samples plus a modality ``name`` held in ``array`` (e.g. virtual sensor
        data synthesised from another modality).

        Args:
            name: The new modality (must not exist yet).
            array: ``(N, ...)`` float array, one row per sample of this data set.
            stream: Its :class:`StreamInfo`, when known.

        Raises:
            DcatError: ``name`` exists, or ``array`` does not hold one row per sample.
        """
        if name in self.inputs:
            raise DcatError(f"modality {name!r} already exists in the data set")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim < 2 or array.shape[0] != len(self):
            raise DcatError(
                f"modality {name!r} must have shape ({len(self)}, ...), got {array.shape}"
            )
        derived = self._derive({**self.inputs, name: array})
        if stream is not None:
            derived.streams[name] = stream
        return derived

    def fit_normalization(
        self,
        kind: Mapping[str, NormKind] | NormKind = "zscore",
        center: Mapping[str, str] | None = None,
        dims: Mapping[str, int] | None = None,
    ) -> dict:
        """Per-channel :class:`ChannelStats` of each ``(N, C, T)`` series modality, fitted on
        this dataset (use the training split). Other shapes (video) are not included.

        Args:
            kind: One kind for all, or modality → kind.
            center: Modality → per-sample centring
                (:func:`~dcat.io.normalization.center_positions`), for position-like data.
            dims: Modality → coordinates per point, for ``"isotropic"`` (3 when not given).
        """
        series = {m: a for m, a in self.inputs.items() if a.ndim == 3 and not _is_lazy(a)}
        kinds = kind if isinstance(kind, Mapping) else dict.fromkeys(series, kind)
        center, dims = center or {}, dims or {}
        return {
            m: fit_normalization(a, kinds.get(m, "zscore"), center.get(m), dims.get(m, 3))
            for m, a in series.items()
        }

    def normalized(self, stats: Mapping[str, ChannelStats]) -> PairedDataset:
        """A new dataset with each modality in ``stats`` normalised by it."""
        # stats are fitted on series held in memory (fit_normalization), so ``a`` is an array
        return self._derive(
            {
                m: stats[m].apply(cast(np.ndarray, a)) if m in stats else a
                for m, a in self.inputs.items()
            }
        )

    def fingerprint(self, modalities: Sequence[str] | None = None) -> str:
        """SHA-256 of the labels and the arrays of ``modalities`` (all by default), in order."""
        digest = hashlib.sha256()
        digest.update(self.labels.tobytes())
        for modality in modalities if modalities is not None else self.modalities:
            self._check_modality(modality)
            held = self.inputs[modality]
            if _is_lazy(held):
                digest.update(f"{modality}:lazy:{held.fingerprint()}".encode())
                continue
            array = np.ascontiguousarray(held)
            digest.update(f"{modality}:{array.shape}:{array.dtype}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()
