"""Reading media files: WAV audio, video frames and audio tracks, and a disk cache of frames.

Video is the expensive modality: decoding an MP4 costs far more than a training step on a few
frames, so DESIGN.md §5 asks to decode it once and cache the frames. :class:`FrameStore` does
that: every clip is decoded once into one ``uint8`` array ``(N, F, C, H, W)`` on disk, read
back through a memory map, and reused by every later run with the same files and options. It is
a :class:`~dcat.data.paired.LazyArray`, so a :class:`~dcat.data.paired.PairedDataset` holds it
as a modality and reads one sample at a time.

Times are in seconds from the start of the container (its first timestamp), the same axis for
a file's video and audio streams, so clips cut with the same ``start_s``/``duration_s`` from
both stay synchronised (DESIGN.md §3).

Decoding uses PyAV (FFmpeg); WAV files are read with soundfile. Every reader raises
``ValueError`` naming the file for a missing file, unreadable or corrupt media, a missing
stream, or a clip outside the file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import operator
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from dcat.utils import write_atomic


class _LazyModule:
    """Imports an optional media library on first use, so ``dcat`` imports without it."""

    def __init__(self, name: str, extra: str) -> None:
        self._name, self._extra = name, extra

    def __getattr__(self, attr: str) -> Any:
        try:
            module = importlib.import_module(self._name)
        except ImportError as err:
            raise ImportError(
                f"{self._name} is needed for this: pip install 'dcat[{self._extra}]'"
            ) from err
        return getattr(module, attr)


av = _LazyModule("av", "video")
sf = _LazyModule("soundfile", "audio")

__all__ = [
    "FrameStore",
    "VideoClip",
    "decode_audio_track",
    "decode_video",
    "read_wav",
    "resample_audio",
]

# Written into every FrameStore key and meta.json: bump it when decoding changes (sampling
# rule, resizing, colour conversion) so caches built by older code are not reused.
_STORE_FORMAT = "dcat.FrameStore/1"
_FRAMES_FILE = "frames.npy"
_META_FILE = "meta.json"
# A frame whose timestamp is within this of a sample time counts as shown at that time, so
# float rounding of timestamps never picks the previous frame on an exact hit.
_TIME_EPS = 1e-6
# How far (s) an audio clip may run past the stream's stated duration: container durations are
# rounded to whole codec frames (AAC: 1024 samples), and the shortfall is filled with zeros.
_AUDIO_END_TOLERANCE = 0.05
_AUDIO_PREROLL = 0.1  # s decoded before an audio clip's start after a seek


# ---------------------------------------------------------------------------------------------
# Audio: WAV files and resampling


def resample_audio(audio: np.ndarray, orig_rate: int, rate: int) -> np.ndarray:
    """Resample along the last axis with a polyphase filter (``scipy.signal.resample_poly``).

    Args:
        audio: ``(..., samples)`` at ``orig_rate``, e.g. ``(samples,)`` or ``(channels, samples)``.
        orig_rate: Sample rate of ``audio`` in Hz.
        rate: Target sample rate in Hz.

    Returns:
        float32 ``(..., ceil(samples * rate / orig_rate))``; a float32 copy when the rates are
        equal.

    Raises:
        ValueError: A rate that is not a positive integer.
    """
    for name, value in (("orig_rate", orig_rate), ("rate", rate)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer in Hz, got {value!r}")
    orig_rate, rate = int(orig_rate), int(rate)
    audio = np.asarray(audio, dtype=np.float32)
    if orig_rate == rate:
        return audio.copy()
    # The reduced ratio keeps the polyphase filter short (44100 → 16000 is 160/441, not
    # 16000/44100), which is what makes resample_poly fast.
    g = math.gcd(orig_rate, rate)
    from scipy.signal import resample_poly  # here, so the deployment path needs no SciPy

    return resample_poly(audio, rate // g, orig_rate // g, axis=-1).astype(np.float32)


def read_wav(
    path: str | Path, *, sample_rate: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read a WAV (or any soundfile-readable) file as float32.

    Args:
        path: The audio file.
        sample_rate: Resample to this rate (Hz) with :func:`resample_audio`; ``None`` keeps the
            file's rate.
        mono: Average the channels into one.

    Returns:
        ``(audio, rate)``: ``(samples,)`` when ``mono`` else ``(channels, samples)``, float32
        in ``[-1, 1]`` for PCM files, and its sample rate in Hz.

    Raises:
        ValueError: A missing or unreadable file (the message names it), or a bad
            ``sample_rate``.
    """
    path = Path(path)
    _check_file(path)
    try:
        # always_2d: one code path for mono and multichannel files, (samples, channels)
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise ValueError(f"{path}: cannot read audio (corrupt or unsupported file): {exc}") from exc
    audio = data.mean(axis=1) if mono else np.ascontiguousarray(data.T)
    if sample_rate is not None and sample_rate != rate:
        audio = resample_audio(audio, rate, sample_rate)
        rate = sample_rate
    return audio.astype(np.float32, copy=False), int(rate)


# ---------------------------------------------------------------------------------------------
# PyAV helpers


def _check_file(path: Path) -> None:
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "no such file"
        raise ValueError(f"{path}: {what}")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: cannot read media (corrupt or unsupported file): {exc}") from exc


def _stream(container: av.container.InputContainer, kind: str, path: Path) -> Any:
    streams = container.streams.video if kind == "video" else container.streams.audio
    if not streams:
        found = ", ".join(s.type for s in container.streams) or "none"
        raise ValueError(f"{path}: no {kind} stream (streams found: {found})")
    return streams[0]


def _origin(container: av.container.InputContainer) -> float:
    """The container's first timestamp (s): time 0 of every stream's clip times."""
    start = container.start_time
    return start / av.time_base if start is not None else 0.0


def _stream_end(container: av.container.InputContainer, stream: Any, origin: float) -> float | None:
    """End of ``stream`` in seconds from the origin, from the headers (``None`` if unknown)."""
    if stream.duration is not None and stream.time_base is not None:
        first = stream.start_time if stream.start_time is not None else 0
        return float((first + stream.duration) * stream.time_base) - origin
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _scan_end(path: Path, index: int, origin: float) -> float | None:
    """End of stream ``index`` from its packets, for files whose headers give no duration."""
    with av.open(str(path), mode="r") as container:
        stream = container.streams[index]
        end = None
        for packet in container.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            stop = float((packet.pts + (packet.duration or 0)) * packet.time_base) - origin
            end = stop if end is None else max(end, stop)
    return end


def _timeline(container: Any, stream: Any, path: Path, kind: str) -> tuple[float, float]:
    """The container's start time and the stream's end (from the headers, else by a scan)."""
    origin = _origin(container)
    end = _stream_end(container, stream, origin)
    if end is None:
        end = _scan_end(path, stream.index, origin)
    if end is None:
        raise ValueError(f"{path}: the {kind} stream has no timestamps or duration")
    return origin, end


def _clip_interval(
    path: Path,
    start_s: float,
    duration_s: float | None,
    file_end: float,
    tolerance: float,
) -> tuple[float, float]:
    """Check a clip against the file and return ``(start, duration)`` in seconds."""
    if not math.isfinite(start_s) or start_s < 0:
        raise ValueError(f"{path}: start_s must be ≥ 0 s, got {start_s}")
    if start_s >= file_end:
        raise ValueError(
            f"{path}: clip start {start_s:g} s is outside the file's duration ({file_end:.3f} s)"
        )
    if duration_s is None:
        return float(start_s), file_end - start_s
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"{path}: duration_s must be > 0 s, got {duration_s}")
    if start_s + duration_s > file_end + tolerance:
        raise ValueError(
            f"{path}: clip [{start_s:g}, {start_s + duration_s:g}) s runs past the end of the "
            f"file's duration ({file_end:.3f} s)"
        )
    return float(start_s), float(duration_s)


def _seek(container: av.container.InputContainer, stream: Any, time_s: float) -> None:
    """Seek to the keyframe at or before ``time_s`` (container seconds) so a late clip does not
    decode the whole file before it; frames before ``time_s`` still come out and are skipped."""
    if time_s <= 0 or stream.time_base is None:
        return
    container.seek(int(time_s / stream.time_base), stream=stream, backward=True, any_frame=False)


# ---------------------------------------------------------------------------------------------
# Video


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(v) != v or v <= 0 for v in size):
        raise ValueError(f"size must be (height, width) in positive pixels, got {size!r}")
    return int(size[0]), int(size[1])


def decode_video(
    path: str | Path,
    *,
    fps: float,
    size: tuple[int, int],
    frames: int | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    grayscale: bool = False,
) -> np.ndarray:
    """Decode the first video stream of a file into resized frames sampled on a time grid.

    The clip is ``[start_s, start_s + D)`` with ``D = duration_s`` (default: to the end of the
    stream). Sample ``k`` is the frame shown at ``start_s + (k + 0.5) · step``, i.e. the last
    decoded frame whose timestamp is ≤ that time, which for constant-rate video is the frame
    whose centre is nearest (from a source at ``fps``: frame ``floor(start_s · fps + k + 0.5)``;
    times before the first frame take the first frame, times after the last take the last).

    * ``frames=None``: ``step = 1 / fps``, as many samples as fit in the clip,
      ``ceil(D · fps − 0.5)`` (= ``D · fps`` when that is whole).
    * ``frames=F``: exactly ``F`` samples evenly spaced, ``step = D / F``; ``fps`` is not used
      (it may document the source rate).

    Args:
        path: A video file FFmpeg can read (MP4, AVI, MKV, ...).
        fps: Sampling rate in frames per second, > 0 when ``frames`` is ``None``.
        size: Output ``(H, W)`` in pixels; frames are scaled by FFmpeg's area filter (no crop,
            so the aspect ratio follows ``size``).
        frames: Number of evenly spaced frames, instead of sampling at ``fps``.
        start_s: Clip start in seconds from the start of the file.
        duration_s: Clip length in seconds; ``None`` runs to the end of the stream.
        grayscale: Return luma (BT.601, full range) instead of RGB.

    Returns:
        ``(F, C, H, W)`` uint8, ``C = 1`` if ``grayscale`` else 3 (RGB).

    Raises:
        ValueError: Missing, unreadable or corrupt file, no video stream, a clip outside the
            file's duration (more than one source frame past its end), or bad arguments; the
            message names the file.
    """
    path = Path(path)
    height, width = _check_size(size)
    if frames is None:
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be > 0 to sample {path} at a frame rate, got {fps}")
    elif int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a positive integer, got {frames!r}")
    container = _open(path)
    try:
        stream = _stream(container, "video", path)
        stream.thread_type = "AUTO"  # frame-threaded decoding; output order is unchanged
        origin, file_end = _timeline(container, stream, path, "video")
        rate = stream.average_rate or stream.guessed_rate
        # Container durations are rounded, and the last frame lasts one frame period, so a clip
        # may end up to one source frame past the stated end.
        period = float(1 / rate) if rate else 0.1
        start, duration = _clip_interval(path, start_s, duration_s, file_end, period)
        if frames is None:
            count = math.ceil(duration * fps - 0.5 - 1e-9)
            if count < 1:
                raise ValueError(f"{path}: a clip of {duration:g} s holds no frame at {fps:g} fps")
            step = 1.0 / fps
        else:
            count, step = int(frames), duration / frames
        times = start + (np.arange(count) + 0.5) * step
        _seek(container, stream, start + origin)
        return _sample_frames(
            container, stream, times + origin, path, height, width, grayscale, rate
        )
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: corrupt media, decoding failed: {exc}") from exc
    finally:
        container.close()


def _sample_frames(
    container: av.container.InputContainer,
    stream: Any,
    times: np.ndarray,
    path: Path,
    height: int,
    width: int,
    grayscale: bool,
    rate: Fraction | None,
) -> np.ndarray:
    """The frames shown at ``times`` (container seconds, ascending), decoded in one pass."""
    channels = 1 if grayscale else 3
    out = np.empty((len(times), channels, height, width), dtype=np.uint8)
    fmt = "gray" if grayscale else "rgb24"

    def convert(frame: av.VideoFrame) -> np.ndarray:
        # Scale and convert in one swscale call (area filter: averages when downscaling).
        image = frame.to_ndarray(width=width, height=height, format=fmt, interpolation="AREA")
        return image[None] if grayscale else image.transpose(2, 0, 1)

    k, held, held_image = 0, None, None
    for position, frame in enumerate(container.decode(stream)):
        # Without timestamps, assume a constant rate from the start.
        shown_at = frame.time if frame.time is not None else position / float(rate or 25)
        # Sample times before this frame's timestamp are showing the frame held before it (or,
        # before the first frame, this one).
        while k < len(times) and times[k] < shown_at - _TIME_EPS:
            if held is None:
                held, held_image = frame, None
            if held_image is None:
                held_image = convert(held)
            out[k] = held_image
            k += 1
        if k == len(times):
            break
        held, held_image = frame, None
    if held is None:
        raise ValueError(f"{path}: the video stream holds no decodable frame in the clip")
    if k < len(times):
        out[k:] = convert(held) if held_image is None else held_image
    return out


# ---------------------------------------------------------------------------------------------
# Audio tracks of media files


def decode_audio_track(
    path: str | Path,
    *,
    sample_rate: int,
    start_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Decode the first audio stream of a media file (e.g. an MP4's AAC track) to mono.

    Channels are downmixed and resampled by FFmpeg (``av.AudioResampler`` to mono float32).

    Args:
        path: A media file with an audio stream (MP4, MKV, WAV, ...).
        sample_rate: Output rate in Hz.
        start_s: Clip start in seconds from the start of the file (the video's time axis).
        duration_s: Clip length in seconds; ``None`` runs to the end of the stream.

    Returns:
        float32 ``(samples,)``: exactly ``round(duration_s · sample_rate)`` samples when
        ``duration_s`` is given (zero-padded if the stream ends up to 50 ms early).

    Raises:
        ValueError: Missing, unreadable or corrupt file, no audio stream, a clip outside the
            file's duration, or a bad ``sample_rate``; the message names the file.
    """
    path = Path(path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    container = _open(path)
    try:
        stream = _stream(container, "audio", path)
        origin, file_end = _timeline(container, stream, path, "audio")
        start, duration = _clip_interval(path, start_s, duration_s, file_end, _AUDIO_END_TOLERANCE)
        # Seek a little early: an audio codec's first frame after a seek lacks the previous
        # frame's overlap (AAC's MDCT), so that frame should fall before the clip.
        _seek(container, stream, max(start - _AUDIO_PREROLL, 0.0) + origin)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        # Decode a little past the clip so the resampler's filter delay is filled.
        stop = start + duration + 0.1 + origin
        for frame in container.decode(stream):
            if first_time is None:
                first_time = frame.time if frame.time is not None else origin
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            if frame.time is not None and frame.time > stop:
                break
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    except av.FFmpegError as exc:
        raise ValueError(f"{path}: corrupt media, decoding failed: {exc}") from exc
    finally:
        container.close()
    if first_time is None:
        raise ValueError(f"{path}: the audio stream holds no decodable frame in the clip")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    # Place the decoded samples on the clip's time axis: after a seek (or when the audio starts
    # later than the container) the first decoded sample is not at start_s.
    offset = round((start + origin - first_time) * sample_rate)
    if offset < 0:
        audio = np.concatenate([np.zeros(-offset, np.float32), audio])
        offset = 0
    if duration_s is None:
        clip = audio[offset:]
        if not len(clip):
            raise ValueError(f"{path}: clip start {start_s:g} s is past the decoded audio")
        return np.ascontiguousarray(clip, dtype=np.float32)
    count = round(duration * sample_rate)
    clip = audio[offset : offset + count]
    if len(clip) < count:
        clip = np.concatenate([clip, np.zeros(count - len(clip), np.float32)])
    return np.ascontiguousarray(clip, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Frame cache


@dataclass(frozen=True)
class VideoClip:
    """A clip of a video file, one sample of a :class:`FrameStore`.

    Attributes:
        path: The video file.
        start_s: Clip start in seconds.
        duration_s: Clip length in seconds; ``None`` runs to the end of the file.
    """

    path: Path
    start_s: float = 0.0
    duration_s: float | None = None

    def __post_init__(self) -> None:
        # Accept str paths: a frozen dataclass needs object.__setattr__ to normalise a field.
        object.__setattr__(self, "path", Path(self.path))


def _clip_record(clip: VideoClip) -> dict:
    """What identifies a clip's content: the file (resolved, size, mtime) and the interval."""
    path = Path(clip.path)
    _check_file(path)
    stat = path.stat()
    return {
        "path": str(path.resolve()),
        "size_bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "start_s": float(clip.start_s),
        "duration_s": None if clip.duration_s is None else float(clip.duration_s),
    }


def _store_key(records: list[dict], frames: int, size: tuple[int, int], grayscale: bool) -> str:
    params = {"format": _STORE_FORMAT, "frames": frames, "size": list(size), "gray": grayscale}
    text = json.dumps({"clips": records, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class FrameStore:
    """Decoded video frames of ``N`` clips, cached on disk and read through a memory map.

    Implements :class:`~dcat.data.paired.LazyArray`: ``store[i]`` is sample ``i`` as float32
    ``(F, C, H, W)`` in ``[0, 1]``; :meth:`take` makes index views (no copy, no decoding) that
    ``PairedDataset.subset`` uses; :meth:`fingerprint` keys source caches.

    Build one with :meth:`build` (decodes what is not cached), :meth:`from_array` (frames
    already decoded) or :meth:`open` (a built folder).
    A folder holds ``frames.npy`` (uint8 ``(N, F, C, H, W)``) and ``meta.json`` (the key, the
    parameters and the clips). Pickling keeps only the folder and the view's indices, so a
    DataLoader worker reopens the memory map instead of receiving a copy of the frames.

    Attributes:
        shape: ``(n, F, C, H, W)`` of this view (``n`` = number of indices).
        ndim: 5.
        key: SHA-256 of the clips' files and intervals and the decoding parameters.
        folder: The cache folder.
        meta: The parsed ``meta.json``.
    """

    def __init__(self, folder: Path, meta: dict, data: np.ndarray, indices: np.ndarray) -> None:
        self.folder = folder
        self.meta = meta
        self.key: str = meta["key"]
        self._data = data
        self._indices = indices
        self.shape: tuple[int, ...] = (len(indices), *data.shape[1:])
        self.ndim: int = 5

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        clips: Sequence[VideoClip],
        cache_dir: str | Path,
        *,
        frames: int,
        size: tuple[int, int],
        grayscale: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> FrameStore:
        """Decode ``clips`` (each once) into ``cache_dir/<key[:32]>/``, or open it if built.

        The key hashes each clip's resolved path, file size, modification time (ns), start and
        duration, plus ``frames``, ``size`` and ``grayscale``: editing or touching a source file
        makes a new key (old folders are left in place, delete them to reclaim disk).

        Args:
            clips: The samples, in order (a str/Path is taken as a whole-file clip).
            cache_dir: Folder holding one sub-folder per key.
            frames: Frames per clip, evenly spaced (:func:`decode_video` with ``frames=``).
            size: ``(H, W)`` of the stored frames.
            grayscale: Store luma (``C = 1``) instead of RGB (``C = 3``).
            progress: Called as ``progress(done, total)`` after each decoded clip.

        Returns:
            The store, memory-mapped, of shape ``(len(clips), frames, C, H, W)``.

        Raises:
            ValueError: No clips, a bad parameter, or a clip :func:`decode_video` refuses
                (missing or corrupt file, clip outside it); nothing is left in ``cache_dir``.
        """
        if not clips:
            raise ValueError("FrameStore.build needs at least one clip")
        if int(frames) != frames or frames < 1:
            raise ValueError(f"frames must be a positive integer, got {frames!r}")
        frames = int(frames)
        height, width = _check_size(size)
        clips = [c if isinstance(c, VideoClip) else VideoClip(Path(c)) for c in clips]
        records = [_clip_record(clip) for clip in clips]
        key = _store_key(records, frames, (height, width), bool(grayscale))
        cache_dir = Path(cache_dir)
        folder = cache_dir / key[:32]
        if (folder / _META_FILE).is_file():
            return cls._open_checked(folder, key)

        channels = 1 if grayscale else 3
        shape = (len(clips), frames, channels, height, width)

        def fill(array: np.ndarray) -> None:
            first_row: dict[VideoClip, int] = {}
            for row, clip in enumerate(clips):
                if clip in first_row:  # the same clip listed twice: copy, do not decode again
                    array[row] = array[first_row[clip]]
                else:
                    first_row[clip] = row
                    # fps is unused when frames is given (evenly spaced over the clip)
                    decoded = decode_video(
                        clip.path, fps=0.0, size=(height, width), frames=frames,
                        start_s=clip.start_s, duration_s=clip.duration_s, grayscale=grayscale,
                    )  # fmt: skip
                    if decoded.shape != shape[1:]:
                        raise ValueError(
                            f"{clip.path}: decoded frames of shape {decoded.shape}, "
                            f"expected {shape[1:]}"
                        )
                    array[row] = decoded
                if progress is not None:
                    progress(row + 1, len(clips))

        return cls._create(folder, key, shape, fill, {"grayscale": bool(grayscale)}, records)

    @classmethod
    def from_array(cls, frames: np.ndarray, cache_dir: str | Path) -> FrameStore:
        """A store of frames already decoded (e.g. a data set shipped as arrays, or benchmarks).

        The key hashes the array's shape and bytes, so the same frames reuse one folder.

        Args:
            frames: uint8 ``(N, F, C, H, W)``.
            cache_dir: Folder holding one sub-folder per key.

        Returns:
            The store, memory-mapped from ``cache_dir/<key[:32]>/``.

        Raises:
            ValueError: ``frames`` is not a uint8 array of 5 dimensions with ``N ≥ 1``.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 5 or not len(frames):
            raise ValueError(
                f"frames must be a uint8 array (N, F, C, H, W) with N ≥ 1, got {frames.dtype} "
                f"{frames.shape}"
            )
        digest = hashlib.sha256(f"{_STORE_FORMAT}:array:{frames.shape}".encode())
        for row in frames:  # row by row: no contiguous copy of the whole array
            digest.update(np.ascontiguousarray(row).tobytes())
        key = digest.hexdigest()
        folder = Path(cache_dir) / key[:32]
        if (folder / _META_FILE).is_file():
            return cls._open_checked(folder, key)

        def fill(array: np.ndarray) -> None:
            array[...] = frames

        return cls._create(folder, key, frames.shape, fill, {"grayscale": frames.shape[2] == 1}, [])

    @classmethod
    def _create(
        cls,
        folder: Path,
        key: str,
        shape: tuple[int, ...],
        fill: Callable[[np.ndarray], None],
        params: dict,
        records: list[dict],
    ) -> FrameStore:
        """Write ``frames.npy`` (filled in place by ``fill``) and ``meta.json`` to ``folder``."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Write into a hidden sibling folder and rename it: a reader (or a crash) never sees a
        # half-written store, and the rename is atomic on one file system.
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            array = np.lib.format.open_memmap(
                tmp / _FRAMES_FILE, mode="w+", dtype=np.uint8, shape=shape
            )
            fill(array)
            array.flush()
            del array  # close the memory map before the folder is renamed
            meta = {
                "format": _STORE_FORMAT,
                "key": key,
                "count": shape[0],
                "frames": shape[1],
                "channels": shape[2],
                "size": list(shape[3:]),
                **params,
                "clips": records,
            }
            write_atomic(tmp / _META_FILE, json.dumps(meta, indent=1))
            if folder.exists() and not (folder / _META_FILE).is_file():
                shutil.rmtree(folder)  # debris without meta.json is never a usable store
            try:
                os.replace(tmp, folder)
            except OSError:
                # Another process finished the same store first: use theirs.
                if not (folder / _META_FILE).is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls._open_checked(folder, key)

    @classmethod
    def open(cls, folder: str | Path) -> FrameStore:
        """Open a store written by :meth:`build` or :meth:`from_array` (memory-mapped, read-only).

        Args:
            folder: ``cache_dir/<key[:32]>``, holding ``meta.json`` and ``frames.npy``.

        Raises:
            ValueError: Not a frame store, or its frames do not match its ``meta.json``.
        """
        folder = Path(folder)
        meta_path = folder / _META_FILE
        if not meta_path.is_file():
            raise ValueError(f"{folder}: not a frame store (no {_META_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
            data = np.load(folder / _FRAMES_FILE, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{folder}: unreadable frame store: {exc}") from exc
        if meta.get("format") != _STORE_FORMAT or not {"key", "count", "channels"} <= set(meta):
            raise ValueError(
                f"{folder}: frame store format {meta.get('format')!r}, expected {_STORE_FORMAT!r}"
            )
        expected = (meta["count"], meta["frames"], meta["channels"], *meta["size"])
        if data.dtype != np.uint8 or data.shape != expected:
            raise ValueError(
                f"{folder}: {_FRAMES_FILE} is {data.dtype} {data.shape}, meta.json says uint8 "
                f"{expected}"
            )
        return cls(folder, meta, data, np.arange(meta["count"], dtype=np.int64))

    @classmethod
    def _open_checked(cls, folder: Path, key: str) -> FrameStore:
        store = cls.open(folder)
        if store.key != key:
            raise ValueError(
                f"{folder}: frame store key {store.key[:12]}…, expected {key[:12]}… "
                "(delete the folder to rebuild it)"
            )
        return store

    # -- LazyArray ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> np.ndarray:
        """Sample ``index`` of this view as float32 ``(F, C, H, W)`` in ``[0, 1]``."""
        i = operator.index(index)
        n = len(self._indices)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a frame store of {n} samples")
        frames = self._data[self._indices[i]]
        return frames.astype(np.float32) / np.float32(255)

    def uint8(self, index: int) -> np.ndarray:
        """Sample ``index`` as stored, uint8 ``(F, C, H, W)`` (4× less to copy to a GPU)."""
        i = operator.index(index)
        n = len(self._indices)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a frame store of {n} samples")
        return np.asarray(self._data[self._indices[i]])

    def raw_batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Samples at ``indices`` as stored, uint8 ``(B, F, C, H, W)``: what the source-cache
        extraction reads in bulk, to standardise on the device."""
        rows = self._indices[np.asarray(indices, dtype=np.int64)]
        return np.asarray(self._data[rows])

    def raw_into(self, indices: Sequence[int] | np.ndarray, out: np.ndarray) -> None:
        """Copy the samples at ``indices`` as stored (uint8) into ``out`` ``(B, F, C, H, W)``:
        one copy from the page cache, a contiguous slice when the rows are consecutive."""
        rows = self._indices[np.asarray(indices, dtype=np.int64)]
        filename = getattr(self._data, "filename", None)
        if len(rows) > 1 and np.all(np.diff(rows) == 1) and filename and out.flags.c_contiguous:
            # one positioned read into ``out``: faulting the memory map in 4 KiB pages is several
            # times slower at the GB/s a GPU extraction pass asks for
            row_bytes = int(np.prod(self._data.shape[1:]))
            offset = int(self._data.offset) + int(rows[0]) * row_bytes
            fd = os.open(filename, os.O_RDONLY)
            try:
                view, done = memoryview(out).cast("B"), 0
                while done < view.nbytes:
                    read = os.preadv(fd, [view[done:]], offset + done)
                    if read <= 0:
                        raise ValueError(f"{filename}: frame cache is shorter than its header says")
                    done += read
            finally:
                os.close(fd)
        elif len(rows) > 1 and np.all(np.diff(rows) == 1):
            np.copyto(out, self._data[rows[0] : rows[-1] + 1])
        else:
            np.take(self._data, rows, axis=0, out=out)

    def take(self, indices: Sequence[int] | np.ndarray) -> FrameStore:
        """A view of the samples at ``indices`` (of this view), in that order; no copy.

        Raises:
            IndexError: An index outside ``[-len(self), len(self))``.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self._indices)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"take indices out of range for a frame store of {n} samples")
        return FrameStore(self.folder, self.meta, self._data, self._indices[idx])

    def fingerprint(self) -> str:
        """SHA-256 of the store key and this view's indices (equal content, equal hash)."""
        digest = hashlib.sha256(f"{self.key}:".encode())
        digest.update(self._indices.astype("<i8").tobytes())
        return digest.hexdigest()

    @property
    def indices(self) -> np.ndarray:
        """Rows of ``frames.npy`` this view reads, ``(len(self),)`` (a copy)."""
        return self._indices.copy()

    @property
    def clips(self) -> list[VideoClip]:
        """The clips of this view, in order."""
        records = self.meta["clips"]
        return [
            VideoClip(Path(r["path"]), r["start_s"], r["duration_s"])
            for r in (records[i] for i in self._indices)
        ]

    # -- pickling (DataLoader workers) ----------------------------------------------------

    def __reduce__(self) -> tuple:
        return (_reopen_store, (str(self.folder), self.key, self._indices))

    def __repr__(self) -> str:
        return f"FrameStore({self.folder}, shape={self.shape}, key={self.key[:12]})"


def _reopen_store(folder: str, key: str, indices: np.ndarray) -> FrameStore:
    """Unpickle a :class:`FrameStore` view: reopen its folder's memory map."""
    store = FrameStore._open_checked(Path(folder), key)
    return FrameStore(store.folder, store.meta, store._data, indices)
