"""The one assembler of data-set readers: recordings in, a :class:`PairedDataset` out.

A reader supplies its recordings and how to read one; :func:`assemble` collects what each
yields, stacks every modality, makes each stream's :class:`StreamInfo` (the model card's rate,
channels and note) and builds the data set::

    def _recordings(files, ...) -> Iterator[Recording]:
        for path in files:
            x = read(path)  # (C, T) at native_hz
            yield Recording({"imu": resample_linear(x, steps)}, label, subject, path.stem,
                            seconds={"imu": x.shape[1] / native_hz})

    return assemble(_recordings(files), CLASSES, name="my_set",
                    streams={"imu": Trials(steps, CHANNELS, "50 Hz", native_hz=50.0)})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcat.data.paired import LazyArray, PairedDataset, StreamInfo
from dcat.errors import DcatError

__all__ = ["Recording", "Streams", "Trials", "assemble"]


@dataclass
class Recording:
    """One recording (or window) as a reader read it.

    Attributes:
        inputs: Modality → its sample, e.g. ``(C, T)``; every recording gives the same shapes.
        label: Class index.
        subject: Subject (or group) id.
        name: The recording's name in the data set (``recordings``).
        seconds: Modality → the recording's duration in seconds, for a :class:`Trials` stream.
        rates: Modality → the recording's own rate in Hz, where the reader needs it to
            describe the stream.
    """

    inputs: dict[str, Any]
    label: int
    subject: int
    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Trials:
    """A stream of whole trials, each resampled to ``steps`` (see
    :meth:`StreamInfo.of_trials`): its rate is made from the recordings' durations.

    Attributes:
        steps: Steps per trial after resampling.
        channels: Channel names.
        native: The recordings' own rate, for the note (``"50 Hz"``).
        native_hz: Their own rate in Hz when one is known for all, else ``None``.
        fields: Further :class:`StreamInfo` fields (``kind``, ``value_range``).
    """

    steps: int
    channels: Sequence[str]
    native: str
    native_hz: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def info(self, seconds: Sequence[float]) -> StreamInfo:
        return StreamInfo.of_trials(
            self.steps, seconds, self.channels, self.native, self.native_hz, **self.fields
        )


Streams = Mapping[str, StreamInfo | Trials]
"""Modality → how its stream is described."""


def assemble(
    recordings: Iterable[Recording],
    class_names: Sequence[str],
    *,
    name: str,
    streams: Streams | Callable[[list[Recording]], Streams] | None = None,
    subject_names: Mapping[int, str] | None = None,
    group: str = "subject",
    empty: str = "no recordings found",
    stored: Mapping[str, LazyArray] | None = None,
    order: Sequence[str] | None = None,
) -> PairedDataset:
    """The data set of ``recordings``, in their order.

    Args:
        recordings: What the reader read, one recording after another.
        class_names: Class names, index = label.
        name: The data set's name.
        streams: Modality → its :class:`StreamInfo`, or a :class:`Trials` whose rate comes
            from the recordings' ``seconds``; or a function of the recordings read that gives
            them (a stream described by what the files said).
        subject_names: Subject id → its name as the data writes it.
        group: What a subject id stands for (``"subject"``, ``"speaker"``, ...).
        empty: The message when there is no recording.
        stored: Modality → samples kept out of memory (a :class:`~dcat.data.frame_store.
            FrameStore` of decoded video), row ``i`` that of recording ``i``; listed before the
            recordings' own modalities.
        order: The data set's modalities in this order (stored and recordings' ones alike);
            default the stored ones, then the recordings' in their order.

    Returns:
        Inputs ``(N, ...)`` per modality (float32), labels, subjects and recording names.

    Raises:
        DcatError: ``empty`` when there is no recording.
    """
    collected = list(recordings)
    if not collected:
        raise DcatError(empty)
    modalities = list(collected[0].inputs)
    if callable(streams):
        streams = streams(collected)
    info = {
        modality: spec.info([r.seconds[modality] for r in collected])
        if isinstance(spec, Trials)
        else spec
        for modality, spec in (streams or {}).items()
    }
    inputs: dict[str, Any] = dict(stored or {})  # a lazy store is kept as it is
    inputs.update({m: np.stack([r.inputs[m] for r in collected]) for m in modalities})
    if order is not None:
        inputs = {m: inputs[m] for m in order}
    return PairedDataset(
        inputs,
        [r.label for r in collected],
        [r.subject for r in collected],
        [r.name for r in collected],
        class_names,
        name=name,
        subject_names=subject_names,
        streams=info,
        group=group,
    )
