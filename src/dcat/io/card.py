"""The model card: what a trained single-sensor model needs to be used on a raw recording.

Every training run stores one (in its checkpoints and as ``model_card.json``), and every export
writes it as ``metadata.json`` beside the model files. It is plain JSON and this module imports
neither torch nor onnxruntime, so the deployment side (:mod:`dcat.deploy.predict`) can read it
anywhere.

Fields::

    format          "dcat-model/1"
    modality        the sensor, e.g. "imu"
    kind            "series", "video" or "audio"
    class_names     index = class
    input           {"shape": one sample's shape, e.g. [6, 128] (C, T) or [F, C, H, W] for
                     video, "dtype": "float32", "time_axis": axis of that shape that is time}
    window          {"samples": steps per window, "seconds": samples / rate_hz or null}
    rate_hz         steps per second along the time axis: the model's grid (null when unknown)
    recording_rate_hz  steps per second of the raw recordings the model was trained from, as
                    their files hold them (null when unknown, or when they had several rates);
                    differs from rate_hz when trials were resampled to a fixed length. Predict
                    reads a recording without time stamps at this rate, then resamples it to
                    rate_hz. Cards written before this field read it as rate_hz for a series or
                    audio model whose note records no resampling, else as null
    channels        channel names in order (null when unknown)
    normalization   {"kind", "shift", "scale"} per channel, applied as (x - shift) / scale,
                    or null (video: the network standardises frames itself)
    architecture    how to rebuild the network (see ModalityNet.architecture)
    frame           video only: {"height", "width", "color": "rgb" | "gray", "value_range":
                    [lo, hi] mapped to 0…255 for frames from arrays (depth) or null, "scale":
                    how stored 8-bit frames become inputs}
    audio           audio only: {"sample_rate_hz", "channels"}
    note            how the training windows were made, when it matters
    dcat_version    the version that trained it
    run             where it came from: run folder, checkpoint, experiment and job
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dcat.errors import DcatError

__all__ = ["CARD_FORMAT", "KINDS", "ModelCard"]

CARD_FORMAT = "dcat-model/1"
# What a modality's samples are: sensor channels, frames, or a waveform.
KINDS = ("series", "video", "audio")
_COLOURS = {1: "gray", 3: "rgb"}


@dataclass
class ModelCard:
    """Deployment description of one trained target network (see the module docstring).

    Attributes:
        modality: Sensor name.
        class_names: Class names, index = class.
        input_shape: One sample's shape without the batch axis.
        rate_hz: Steps per second along the time axis (the model's grid), or ``None``.
        channels: Channel names, or ``None``.
        normalization: ``{"kind", "shift", "scale"}`` or ``None``.
        architecture: Network description for :meth:`dcat.nn.model.ModalityNet.from_architecture`.
        dcat_version: Version of dcat that trained the model.
        run: Provenance (run folder, checkpoint, experiment, job).
        note: How the training windows were made.
        input_dtype: Input dtype of the network.
        kind: ``"series"``, ``"video"`` or ``"audio"``.
        value_range: Video from arrays: values mapped to ``0…255`` before the frames were stored.
        recording_rate_hz: Rate of the raw recordings the model was trained from, or ``None``
            when unknown (see the module docstring).
        format: Card format tag.
    """

    modality: str
    class_names: list[str]
    input_shape: list[int]
    rate_hz: float | None
    channels: list[str] | None
    normalization: dict[str, Any] | None
    architecture: dict[str, Any]
    dcat_version: str
    run: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    input_dtype: str = "float32"
    kind: str = ""
    value_range: list[float] | None = None
    recording_rate_hz: float | None = None
    format: str = CARD_FORMAT

    def __post_init__(self) -> None:
        if not self.kind:  # cards written before kinds: the shape tells video from series
            self.kind = "video" if len(self.input_shape) == 4 else "series"
        if self.kind not in KINDS:
            raise DcatError(f"model card: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if (self.kind == "video") != (len(self.input_shape) == 4):
            raise DcatError(
                f"model card: a {self.kind} model's input shape {self.input_shape} must be "
                f"{'(F, C, H, W)' if self.kind == 'video' else '(C, T)'}"
            )
        if len(self.input_shape) not in (2, 4):
            raise DcatError(
                f"model card: input shape must be (C, T) or (F, C, H, W), got {self.input_shape}"
            )
        for name in ("rate_hz", "recording_rate_hz"):
            rate = getattr(self, name)
            if rate is not None and not (math.isfinite(rate) and rate > 0):
                raise DcatError(f"model card: {name} must be a positive number of Hz, got {rate}")
        if len(self.class_names) < 2:
            raise DcatError(f"model card: need at least 2 class names, got {self.class_names}")
        if self.channels is not None and len(self.channels) != self.num_channels:
            raise DcatError(
                f"model card: {len(self.channels)} channel names for {self.num_channels} channels"
            )

    @property
    def is_video(self) -> bool:
        """Frames ``(F, C, H, W)`` rather than a series ``(C, T)``."""
        return len(self.input_shape) == 4

    @property
    def time_axis(self) -> int:
        """Axis of :attr:`input_shape` that is time: 0 for video frames, 1 for series."""
        return 0 if self.is_video else 1

    @property
    def num_channels(self) -> int:
        return self.input_shape[1] if self.is_video else self.input_shape[0]

    @property
    def window_samples(self) -> int:
        """Steps (samples or frames) per window."""
        return self.input_shape[self.time_axis]

    @property
    def window_seconds(self) -> float | None:
        return None if self.rate_hz is None else self.window_samples / self.rate_hz

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring)."""
        data = asdict(self)
        shape = data.pop("input_shape")
        data["input"] = {
            "shape": shape,
            "dtype": data.pop("input_dtype"),
            "time_axis": self.time_axis,
        }
        data["window"] = {"samples": self.window_samples, "seconds": self.window_seconds}
        value_range = data.pop("value_range")
        if self.kind == "video":
            _frames, channels, height, width = self.input_shape
            data["frame"] = {
                "height": height,
                "width": width,
                "color": _COLOURS.get(channels, f"{channels} channels"),
                "value_range": value_range,
                "scale": "stored 8-bit frames / 255; the network standardises them itself",
            }
        elif self.kind == "audio":
            data["audio"] = {"sample_rate_hz": self.rate_hz, "channels": self.num_channels}
        order = [
            "format", "modality", "kind", "class_names", "input", "window", "rate_hz",
            "recording_rate_hz", "channels",
        ]  # fmt: skip
        return {**{k: data[k] for k in order}, **{k: v for k, v in data.items() if k not in order}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "model card") -> ModelCard:
        """Read :meth:`to_dict`'s form; ``where`` names the file in errors."""
        if data.get("format") != CARD_FORMAT:
            raise DcatError(
                f"{where}: not a dcat model description (format {data.get('format')!r}, "
                f"expected {CARD_FORMAT!r})"
            )
        required = ["modality", "class_names", "input", "rate_hz", "architecture"]
        missing = [k for k in required if k not in data]
        if missing:
            raise DcatError(f"{where}: missing field(s) {missing}")
        try:
            return cls(
                modality=str(data["modality"]),
                class_names=[str(c) for c in data["class_names"]],
                input_shape=[int(n) for n in data["input"]["shape"]],
                rate_hz=None if data["rate_hz"] is None else float(data["rate_hz"]),
                channels=None if data.get("channels") is None else list(data["channels"]),
                normalization=data.get("normalization"),
                architecture=dict(data["architecture"]),
                dcat_version=str(data.get("dcat_version", "")),
                run=dict(data.get("run") or {}),
                note=str(data.get("note", "")),
                input_dtype=str(data["input"].get("dtype", "float32")),
                kind=str(data.get("kind") or ""),
                value_range=(data.get("frame") or {}).get("value_range"),
                recording_rate_hz=_recording_rate(data),
            )
        except (KeyError, TypeError) as err:
            raise DcatError(f"{where}: malformed field ({err})") from None
        except ValueError as err:
            raise DcatError(f"{where}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomically)."""
        from dcat.io.atomic import write_atomic

        write_atomic(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        """Read a JSON file written by :meth:`save`, naming the file in every error."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model description file")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DcatError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise DcatError(f"{path}: expected a JSON object")
        return cls.from_dict(data, where=str(path))


def _recording_rate(data: Mapping[str, Any]) -> float | None:
    """The card's ``recording_rate_hz``; for cards written before that field, the model's rate
    when nothing says the windows were resampled (a series or audio model cut from continuous
    recordings), else ``None``: a video grid may have been picked at another frame rate."""
    if "recording_rate_hz" in data:
        rate = data["recording_rate_hz"]
        return None if rate is None else float(rate)
    rate, note = data.get("rate_hz"), str(data.get("note", ""))
    video = data.get("kind") == "video" or len(data["input"]["shape"]) == 4
    if rate is None or video or "resampled" in note or "spread over" in note:
        return None
    return float(rate)
