"""Media columns of a manifest: video files, image-sequence folders, frame arrays and audio.

A manifest cell may name, besides a ``.npy``/``.csv`` series:

* a video file (``.mp4``, ``.avi``, ``.mov``, ``.mkv``, ``.webm``): decoded once with PyAV into
  the frame cache (:class:`~dcat.data.frame_store.FrameStore`), frame times from the container;
* a folder of PNG/JPEG frames, at the rate of the ``NAME_hz`` column;
* a ``(T, H, W)`` or ``(T, H, W, C)`` ``.npy`` of frames (depth, thermal), at ``NAME_hz``;
* an audio file (``.wav``, ``.flac``, ``.ogg`` with soundfile; ``.mp3``, ``.m4a``, ``.aac``
  with PyAV), at the file's own rate.

The first three are the ``video`` kind (samples ``(F, C, H, W)``), the last the ``audio`` kind
(samples ``(C, T)`` at the sample rate). :func:`media_specs` reads each modality's options
(``data.options.media.NAME``), :func:`probe` what each file holds before anything is decoded,
and :func:`build_frames` / :func:`read_audio_source` load them. Errors go through the
manifest's ``error(message, row, column)`` so they name the manifest, the row and the column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcat.data.frame_store import FrameClip, FrameStore, VideoClip
from dcat.errors import DcatError, did_you_mean
from dcat.io.card import KINDS
from dcat.io.frames import array_frame_info, image_sequence_info, value_range_of
from dcat.io.media import (
    AUDIO_SUFFIXES,
    PYAV_AUDIO_SUFFIXES,
    VIDEO_SUFFIXES,
    probe_audio,
    probe_video,
    read_audio,
    resample_audio,
)
from dcat.io.table import npy_header

__all__ = [
    "MEDIA_SUFFIXES",
    "MediaSpec",
    "Source",
    "build_frames",
    "check_sources",
    "file_kind",
    "layout_problem",
    "media_specs",
    "probe",
    "read_audio_source",
]

ErrorFn = Callable[..., DcatError]

MEDIA_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES + PYAV_AUDIO_SUFFIXES
_OPTIONS = ("kind", "size", "frames", "fps", "color", "sample_rate", "mono", "value_range")
# A rate column may differ this much from the container's own rate (rounded NTSC rates etc.).
_RATE_TOLERANCE = 0.02
DEFAULT_FRAMES = 16


@dataclass(frozen=True)
class MediaSpec:
    """The options of one modality (``data.options.media.NAME``), all optional.

    Attributes:
        kind: ``series``, ``video`` or ``audio``; default inferred from the files.
        size: Video: stored frame ``(H, W)``; default the recordings' own size.
        frames: Video, segmented samples: frames per sample, evenly over each clip
            (default 16, or ``fps`` × the median clip length when ``fps`` is given).
        fps: Video: frames per second of the samples; continuous recordings default to the
            recordings' own rate.
        color: Video: ``rgb`` or ``gray``; default ``gray`` for one-channel sources (depth,
            grey images), else ``rgb``.
        sample_rate: Audio: resample every file to this rate (Hz); default the files' own
            rate, which must then be the same in every row.
        mono: Audio: average the channels into one.
        value_range: Frame arrays: the values mapped to ``0…255``; default the smallest and
            largest value over all the modality's arrays (8-bit arrays are kept as they are).
    """

    kind: str | None = None
    size: tuple[int, int] | None = None
    frames: int | None = None
    fps: float | None = None
    color: str | None = None
    sample_rate: int | None = None
    mono: bool = False
    value_range: tuple[float, float] | None = None


def _positive(value: Any, what: str, integer: bool = False) -> float:
    number_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types) or not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise DcatError(f"config: data.options.media.{what} must be {kind}, got {value!r}")
    return value


def media_specs(options: Mapping[str, Any] | None) -> dict[str, MediaSpec]:
    """Check and read ``data.options.media`` (modality → its options).

    Raises:
        DcatError: An unknown option (with a did-you-mean) or a value of the wrong type,
            naming the key path.
    """
    specs: dict[str, MediaSpec] = {}
    for modality, given in (options or {}).items():
        where = f"config: data.options.media.{modality}"
        if not isinstance(given, Mapping):
            raise DcatError(f"{where}: expected a mapping of options, got {given!r}")
        unknown = sorted(set(given) - set(_OPTIONS))
        if unknown:
            raise DcatError(
                f"{where}: unknown option(s) {unknown}; known: {list(_OPTIONS)}"
                + did_you_mean(unknown, list(_OPTIONS))
            )
        fields: dict[str, Any] = {}
        if "kind" in given:
            if given["kind"] not in KINDS:
                raise DcatError(f"{where}.kind must be one of {list(KINDS)}, got {given['kind']!r}")
            fields["kind"] = given["kind"]
        if "size" in given:
            size = given["size"]
            if not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2:
                raise DcatError(f"{where}.size must be [height, width] in pixels, got {size!r}")
            fields["size"] = tuple(int(_positive(v, f"{modality}.size", True)) for v in size)
        if "frames" in given:
            fields["frames"] = int(_positive(given["frames"], f"{modality}.frames", True))
        if "fps" in given:
            fields["fps"] = float(_positive(given["fps"], f"{modality}.fps"))
        if "color" in given:
            if given["color"] not in ("rgb", "gray"):
                raise DcatError(f"{where}.color must be 'rgb' or 'gray', got {given['color']!r}")
            fields["color"] = given["color"]
        if "sample_rate" in given:
            fields["sample_rate"] = int(
                _positive(given["sample_rate"], f"{modality}.sample_rate", True)
            )
        if "mono" in given:
            if not isinstance(given["mono"], bool):
                raise DcatError(f"{where}.mono must be true or false, got {given['mono']!r}")
            fields["mono"] = given["mono"]
        if "value_range" in given:
            value_range = given["value_range"]
            ok = isinstance(value_range, Sequence) and len(value_range) == 2
            if not ok or not all(isinstance(v, int | float) for v in value_range):
                raise DcatError(f"{where}.value_range must be [low, high], got {value_range!r}")
            if not value_range[1] > value_range[0]:
                raise DcatError(f"{where}.value_range needs low < high, got {value_range!r}")
            fields["value_range"] = (float(value_range[0]), float(value_range[1]))
        specs[modality] = MediaSpec(**fields)
    return specs


def file_kind(path: Path) -> tuple[str, str]:
    """``(kind, form)`` of one manifest file: form ``video``, ``images``, ``array``,
    ``audio`` or ``series``. A ``.npy`` is told by its header: ``(T,)`` or ``(T, C)`` is a
    series, ``(T, H, W[, C])`` frames.

    Raises:
        DcatError: A ``.npy`` that cannot be read (empty, not NumPy's format, truncated) or
            whose shape is neither a series nor frames.
    """
    suffix = path.suffix.lower()
    if path.is_dir():
        return "video", "images"
    if suffix in VIDEO_SUFFIXES:
        return "video", "video"
    if suffix in AUDIO_SUFFIXES + PYAV_AUDIO_SUFFIXES:
        return "audio", "audio"
    if suffix == ".npy":
        shape, _dtype = npy_header(path)
        if len(shape) in (3, 4):
            return "video", "array"
        if len(shape) not in (1, 2):
            raise DcatError(f"{path}: {layout_problem(shape)}")
        return "series", "series"
    return "series", "series"


def layout_problem(shape: tuple[int, ...]) -> str:
    """Why a ``.npy`` of ``shape`` is neither a series nor frames, as one clause."""
    if len(shape) == 2:
        return f"frame arrays are (T, H, W[, C]), got (H, W) = {shape}: one frame, or a series?"
    squeezed = tuple(n for n in shape if n != 1)
    hint = (
        f" (its axes of length 1 aside it is {squeezed}: np.squeeze it)"
        if len(squeezed) in (3, 4)
        else ""
    )
    return (
        f"frame arrays are (T, H, W[, C]) and series (T, C) or (T,), got {len(shape)}-D "
        f"{shape}{hint}"
    )


@dataclass(frozen=True)
class Source:
    """One row's file of a media modality, as probed (nothing decoded yet).

    Attributes:
        row: Manifest row.
        path: The file or folder.
        form: ``video``, ``images``, ``array`` or ``audio``.
        rate_hz: Frames or samples per second.
        duration_s: Seconds covered.
        height: Frame height (video kinds), else 0.
        width: Frame width (video kinds), else 0.
        channels: Colour channels of frames, or audio channels.
        offset_s: When the sensor's clock starts on the manifest's common time axis.
    """

    row: int
    path: Path
    form: str
    rate_hz: float
    duration_s: float
    height: int = 0
    width: int = 0
    channels: int = 1
    offset_s: float = 0.0


def probe(
    error: ErrorFn,
    row: int,
    column: str,
    path: Path,
    form: str,
    rate: float | None,
    offset_s: float = 0.0,
) -> Source:
    """What one media file holds: its rate, duration and frame size or channels.

    A ``NAME_hz`` rate (``rate``) is required for image folders and frame arrays; for video
    and audio files the container states the rate, and a rate column that contradicts it is
    refused.
    """
    hz_column = f"{column}_hz"
    try:
        if form == "video":
            video = probe_video(path)
        elif form == "audio":
            sound = probe_audio(path)
        else:
            frames = image_sequence_info(path) if form == "images" else array_frame_info(path)
    except DcatError as err:
        raise error(str(err), row, column) from err
    if form == "video":
        _check_rate(error, row, hz_column, path, rate, video.rate_hz, "fps")
        return Source(row, path, form, video.rate_hz, video.duration_s, video.height,
                      video.width, 3, offset_s)  # fmt: skip
    if form == "audio":
        _check_rate(error, row, hz_column, path, rate, sound.rate_hz, "Hz")
        return Source(row, path, form, float(sound.rate_hz), sound.duration_s, 0, 0,
                      sound.channels, offset_s)  # fmt: skip
    if rate is None:
        what = "a folder of image frames" if form == "images" else "an array of frames"
        raise error(f"{path} is {what}: fill column {hz_column!r} with its frame rate in Hz",
                    row, hz_column)  # fmt: skip
    return Source(row, path, form, rate, frames.count / rate, frames.height, frames.width,
                  frames.channels, offset_s)  # fmt: skip


def _check_rate(
    error: ErrorFn,
    row: int,
    column: str,
    path: Path,
    given: float | None,
    actual: float,
    unit: str,
) -> None:
    if given is not None and abs(given / actual - 1) > _RATE_TOLERANCE:
        raise error(
            f"{given:g} Hz contradicts {path}, which the container says is {actual:g} {unit}; "
            "leave the cell empty to use the file's own rate",
            row,
            column,
        )


def check_sources(
    error: ErrorFn, modality: str, kind: str, spec: MediaSpec, sources: list[Source]
) -> None:
    """One sensor, one frame size (video) or channel count and rate (audio), in every row."""
    first = sources[0]
    for source in sources[1:]:
        if kind == "video" and (source.height, source.width) != (first.height, first.width):
            raise error(
                f"modality {modality!r} has frames of {first.height}×{first.width} pixels in row "
                f"{first.row} but {source.height}×{source.width} in {source.path} (mixed frame "
                "sizes within one sensor; convert the recordings to one size)"
                + _turned(first, source),
                source.row,
                modality,
            )
        if kind == "audio" and not spec.mono and source.channels != first.channels:
            raise error(
                f"{source.path} has {source.channels} audio channel(s), the modality "
                f"{modality!r} has {first.channels} in row {first.row}; record every row with "
                f"the same channels or set data.options.media.{modality}.mono: true",
                source.row,
                modality,
            )
        if kind == "audio" and spec.sample_rate is None and source.rate_hz != first.rate_hz:
            raise error(
                f"{source.path} is sampled at {source.rate_hz:g} Hz, row {first.row} at "
                f"{first.rate_hz:g} Hz; set data.options.media.{modality}.sample_rate to "
                "resample them to one rate",
                source.row,
                modality,
            )


def _turned(first: Source, other: Source) -> str:
    """``"; <file> looks saved as (H, W, T) ..."`` when one of two frame arrays of different
    frame sizes has the other's frame size on its first two axes."""
    for a, b in ((other, first), (first, other)):
        count = round(a.duration_s * a.rate_hz)
        if a.form == "array" and (count, a.height) == (b.height, b.width):
            return (
                f"; {a.path} looks saved as (H, W, T): its last axis ({a.width}) looks like "
                "time; save frames as (T, H, W[, C]) (np.moveaxis(array, -1, 0))"
            )
    return ""


def frame_layout(spec: MediaSpec, sources: list[Source]) -> tuple[tuple[int, int], bool]:
    """Stored frame size and greyscale flag of a video modality."""
    size = spec.size or (sources[0].height, sources[0].width)
    gray = spec.color == "gray" if spec.color else sources[0].channels == 1
    return size, gray


def value_range(spec: MediaSpec, sources: list[Source]) -> tuple[float, float] | None:
    """The values of frame arrays mapped to ``0…255`` (``None`` for 8-bit sources)."""
    arrays = [s.path for s in sources if s.form == "array"]
    if not arrays:
        return None
    if spec.value_range is not None:
        return spec.value_range
    dtypes = {np.load(p, mmap_mode="r", allow_pickle=False).dtype for p in arrays}
    if dtypes == {np.dtype(np.uint8)}:
        return None
    return value_range_of(arrays)


def clip_of(
    source: Source, start_s: float, duration_s: float | None, vrange: tuple[float, float] | None
) -> VideoClip | FrameClip:
    """The frame-store clip of ``source`` over ``[start_s, start_s + duration_s)`` of its own
    clock."""
    if source.form == "video":
        return VideoClip(source.path, start_s, duration_s)
    return FrameClip(source.path, source.rate_hz, start_s, duration_s,
                     vrange if source.form == "array" else None)  # fmt: skip


def build_frames(
    error: ErrorFn,
    modality: str,
    clips: list[tuple[Source, VideoClip | FrameClip]],
    cache_dir: Path,
    frames: int,
    size: tuple[int, int],
    gray: bool,
) -> FrameStore:
    """Decode (once, into ``cache_dir``) the clips of one modality; progress on stderr."""
    total = len(clips)
    step = max(1, total // 10)

    def progress(done: int, count: int) -> None:
        if done % step == 0 or done == count:
            print(f"manifest: decoding {modality}: {done}/{count} clips", flush=True)

    try:
        return FrameStore.build(
            [clip for _, clip in clips], cache_dir, frames=frames, size=size, grayscale=gray,
            progress=progress, log=lambda line: print(f"manifest: {modality}: {line}"),
        )  # fmt: skip
    except DcatError as err:
        message = str(err)
        for source, clip in clips:  # name the row whose file failed
            if str(clip.path) in message or str(Path(clip.path).resolve()) in message:
                raise error(message, source.row, modality) from err
        raise error(message, None, modality) from err


def read_audio_source(error: ErrorFn, modality: str, source: Source, spec: MediaSpec) -> np.ndarray:
    """A whole audio file as float32 ``(C, T)`` at the modality's rate."""
    try:
        audio, rate = read_audio(source.path, mono=spec.mono)
        if spec.sample_rate is not None and rate != spec.sample_rate:
            audio = resample_audio(audio, rate, spec.sample_rate)
    except DcatError as err:
        raise error(str(err), source.row, modality) from err
    if not np.isfinite(audio).all():
        raise error(f"{source.path}: NaN or Inf in the audio", source.row, modality)
    return audio
