"""Reading media files: WAV audio, video frames and audio tracks (numpy only, no torch).

Decoded video is cached on disk by :class:`dcat.data.frame_store.FrameStore`.

Times are in seconds from the start of the container (its first timestamp), the same axis for
a file's video and audio streams, so clips cut with the same ``start_s``/``duration_s`` from
both stay synchronised (docs/design.md, "Data model").

Decoding uses PyAV (FFmpeg); WAV files are read with soundfile. Every reader raises
``ValueError`` naming the file for a missing file, unreadable or corrupt media, a missing
stream, or a clip outside the file.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcat.errors import DcatError
from dcat.io.frames import frame_buffer

if TYPE_CHECKING:
    from av import VideoFrame
    from av.container import InputContainer


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
    "AUDIO_SUFFIXES",
    "PYAV_AUDIO_SUFFIXES",
    "VIDEO_SUFFIXES",
    "AudioInfo",
    "VideoInfo",
    "decode_audio_track",
    "decode_video",
    "probe_audio",
    "probe_video",
    "read_audio",
    "read_wav",
    "resample_audio",
]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# soundfile reads these; the compressed formats after them go through PyAV (FFmpeg)
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
PYAV_AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac")

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
        DcatError: A rate that is not a positive integer.
    """
    for name, value in (("orig_rate", orig_rate), ("rate", rate)):
        if int(value) != value or value <= 0:
            raise DcatError(f"{name} must be a positive integer in Hz, got {value!r}")
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
        DcatError: A missing or unreadable file (the message names it), or a bad
            ``sample_rate``.
    """
    path = Path(path)
    _check_file(path)
    try:
        # always_2d: one code path for mono and multichannel files, (samples, channels)
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise DcatError(f"{path}: cannot read audio (corrupt or unsupported file): {exc}") from exc
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
        raise DcatError(f"{path}: {what}")


def _open(path: Path) -> InputContainer:
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise DcatError(f"{path}: cannot read media (corrupt or unsupported file): {exc}") from exc


def _stream(container: InputContainer, kind: str, path: Path) -> Any:
    streams = container.streams.video if kind == "video" else container.streams.audio
    if not streams:
        found = ", ".join(s.type for s in container.streams) or "none"
        raise DcatError(f"{path}: no {kind} stream (streams found: {found})")
    return streams[0]


def _origin(container: InputContainer) -> float:
    """The container's first timestamp (s): time 0 of every stream's clip times."""
    start = container.start_time
    return start / av.time_base if start is not None else 0.0


def _stream_end(container: InputContainer, stream: Any, origin: float) -> float | None:
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
        raise DcatError(f"{path}: the {kind} stream has no timestamps or duration")
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
        raise DcatError(f"{path}: start_s must be ≥ 0 s, got {start_s}")
    if start_s >= file_end:
        raise DcatError(
            f"{path}: clip start {start_s:g} s is outside the file's duration ({file_end:.3f} s)"
        )
    if duration_s is None:
        return float(start_s), file_end - start_s
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise DcatError(f"{path}: duration_s must be > 0 s, got {duration_s}")
    if start_s + duration_s > file_end + tolerance:
        raise DcatError(
            f"{path}: clip [{start_s:g}, {start_s + duration_s:g}) s runs past the end of the "
            f"file's duration ({file_end:.3f} s)"
        )
    return float(start_s), float(duration_s)


def _seek(container: InputContainer, stream: Any, time_s: float) -> None:
    """Seek to the keyframe at or before ``time_s`` (container seconds) so a late clip does not
    decode the whole file before it; frames before ``time_s`` still come out and are skipped."""
    if time_s <= 0 or stream.time_base is None:
        return
    container.seek(int(time_s / stream.time_base), stream=stream, backward=True, any_frame=False)


# ---------------------------------------------------------------------------------------------
# Probing: what a file holds, from its headers


@dataclass(frozen=True)
class VideoInfo:
    """A video file's first video stream, from its headers.

    Attributes:
        rate_hz: Average frame rate (frames per second).
        duration_s: Seconds from the container's start to the stream's end.
        height: Frame height in pixels.
        width: Frame width in pixels.
    """

    rate_hz: float
    duration_s: float
    height: int
    width: int


@dataclass(frozen=True)
class AudioInfo:
    """An audio file: sample rate, channels and duration.

    Attributes:
        rate_hz: Samples per second.
        channels: Channels in the file (PyAV formats are decoded to mono: 1).
        duration_s: Length in seconds.
    """

    rate_hz: int
    channels: int
    duration_s: float


def probe_video(path: str | Path) -> VideoInfo:
    """Frame rate, duration and frame size of a video file, without decoding it.

    Raises:
        DcatError: Missing, unreadable or truncated file, no video stream, or no frame rate;
            the message names the file.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = _stream(container, "video", path)
        _origin_s, end = _timeline(container, stream, path, "video")
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise DcatError(f"{path}: the video stream states no frame rate")
        height, width = stream.codec_context.height, stream.codec_context.width
        if not height or not width:
            raise DcatError(f"{path}: the video stream states no frame size")
        return VideoInfo(float(rate), float(end), int(height), int(width))
    finally:
        container.close()


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate, channels and duration of an audio file (soundfile or PyAV formats).

    Raises:
        DcatError: Missing or unreadable file, or no audio stream; the message names the file.
    """
    path = Path(path)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        _check_file(path)
        try:
            info = sf.info(str(path))
        except (sf.SoundFileError, RuntimeError) as exc:
            raise DcatError(
                f"{path}: cannot read audio (corrupt or unsupported file): {exc}"
            ) from exc
        return AudioInfo(int(info.samplerate), int(info.channels), float(info.duration))
    container = _open(path)
    try:
        stream = _stream(container, "audio", path)
        _origin_s, end = _timeline(container, stream, path, "audio")
        return AudioInfo(int(stream.rate), 1, float(end))
    finally:
        container.close()


def read_audio(
    path: str | Path, *, sample_rate: int | None = None, mono: bool = False
) -> tuple[np.ndarray, int]:
    """Read a whole audio file: soundfile for ``.wav``/``.flac``/``.ogg``, PyAV for
    ``.mp3``/``.m4a``/``.aac`` (decoded to mono).

    Args:
        path: The audio file.
        sample_rate: Resample to this rate (Hz); ``None`` keeps the file's.
        mono: Average the channels into one.

    Returns:
        ``(audio, rate)``: float32 ``(channels, samples)`` and its rate in Hz.

    Raises:
        DcatError: Missing, unreadable or corrupt file; the message names it.
    """
    path = Path(path)
    if path.suffix.lower() in AUDIO_SUFFIXES:
        audio, rate = read_wav(path, sample_rate=sample_rate, mono=mono)
        return (audio[None] if audio.ndim == 1 else audio), rate
    rate = probe_audio(path).rate_hz if sample_rate is None else int(sample_rate)
    return decode_audio_track(path, sample_rate=rate)[None], rate


# ---------------------------------------------------------------------------------------------
# Video


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or any(int(v) != v or v <= 0 for v in size):
        raise DcatError(f"size must be (height, width) in positive pixels, got {size!r}")
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
    out: np.ndarray | None = None,
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
        out: Write the frames here (uint8 ``(F, C, H, W)``, e.g. a slice of a memory-mapped
            frame store), so a long clip is never held whole in memory.

    Returns:
        ``(F, C, H, W)`` uint8, ``C = 1`` if ``grayscale`` else 3 (RGB): ``out`` when given.

    Raises:
        DcatError: Missing, unreadable or corrupt file, no video stream, a clip outside the
            file's duration (more than one source frame past its end), or bad arguments; the
            message names the file.
    """
    path = Path(path)
    height, width = _check_size(size)
    if frames is None:
        if not (math.isfinite(fps) and fps > 0):
            raise DcatError(f"fps must be > 0 to sample {path} at a frame rate, got {fps}")
    elif int(frames) != frames or frames < 1:
        raise DcatError(f"frames must be a positive integer, got {frames!r}")
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
                raise DcatError(f"{path}: a clip of {duration:g} s holds no frame at {fps:g} fps")
            step = 1.0 / fps
        else:
            count, step = int(frames), duration / frames
        times = start + (np.arange(count) + 0.5) * step
        _seek(container, stream, start + origin)
        return _sample_frames(
            container, stream, times + origin, path, height, width, grayscale, rate, out
        )
    except av.FFmpegError as exc:
        raise DcatError(f"{path}: corrupt media, decoding failed: {exc}") from exc
    finally:
        container.close()


def _sample_frames(
    container: InputContainer,
    stream: Any,
    times: np.ndarray,
    path: Path,
    height: int,
    width: int,
    grayscale: bool,
    rate: Fraction | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The frames shown at ``times`` (container seconds, ascending), decoded in one pass."""
    out = frame_buffer(out, (len(times), 1 if grayscale else 3, height, width), str(path))
    fmt = "gray" if grayscale else "rgb24"

    def convert(frame: VideoFrame) -> np.ndarray:
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
        raise DcatError(f"{path}: the video stream holds no decodable frame in the clip")
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
        DcatError: Missing, unreadable or corrupt file, no audio stream, a clip outside the
            file's duration, or a bad ``sample_rate``; the message names the file.
    """
    path = Path(path)
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise DcatError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
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
        raise DcatError(f"{path}: corrupt media, decoding failed: {exc}") from exc
    finally:
        container.close()
    if first_time is None:
        raise DcatError(f"{path}: the audio stream holds no decodable frame in the clip")
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
            raise DcatError(f"{path}: clip start {start_s:g} s is past the decoded audio")
        return np.ascontiguousarray(clip, dtype=np.float32)
    count = round(duration * sample_rate)
    clip = audio[offset : offset + count]
    if len(clip) < count:
        clip = np.concatenate([clip, np.zeros(count - len(clip), np.float32)])
    return np.ascontiguousarray(clip, dtype=np.float32)
