"""Frames outside a video container: image-sequence folders and ``(T, H, W[, C])`` arrays.

Both are frame sequences at a known rate (frame ``i`` is shown from ``i / rate`` seconds). They
are sampled on a time grid by the rule :func:`dcat.io.media.decode_video` uses for video files,
so a camera recorded as PNG frames and the same camera as an MP4 give the same samples:
sample ``k`` of a clip ``[start_s, start_s + D)`` is the frame shown at
``start_s + (k + 0.5) · step``.

Values become ``uint8`` frames ``(F, C, H, W)``: images as decoded (8-bit), arrays mapped from a
``value_range`` ``(lo, hi)`` to ``0…255`` (depth in millimetres, thermal in kelvin, ...), then
scaled to the requested size with an area filter (Pillow's box filter). Pillow is imported only
when an image is read. numpy only, no torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from dcat.errors import DcatError

__all__ = [
    "IMAGE_SUFFIXES",
    "FrameInfo",
    "array_frame_info",
    "frame_buffer",
    "grid_indices",
    "image_sequence_info",
    "list_images",
    "read_frame_array",
    "read_image_sequence",
    "resize_frames",
    "to_uint8",
    "value_range_of",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TIME_EPS = 1e-6  # as in dcat.io.media: an exact hit shows the frame, not the one before


@dataclass(frozen=True)
class FrameInfo:
    """What a frame source holds, read without decoding it all.

    Attributes:
        count: Number of frames.
        height: Frame height in pixels.
        width: Frame width in pixels.
        channels: 1 (grey, depth) or 3 (RGB).
    """

    count: int
    height: int
    width: int
    channels: int


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_images(folder: str | Path) -> list[Path]:
    """The PNG/JPEG frames of an image-sequence folder in frame order (natural sort of names).

    Frame numbers in the names must run without a hole: ``f_0001.png … f_0040.png`` with
    ``f_0017.png`` absent is a missing frame, not a shorter recording.

    Raises:
        DcatError: Not a folder, no image in it, or a missing frame number (named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DcatError(f"{folder}: not a folder of image frames")
    images = sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=_natural_key,
    )
    if not images:
        raise DcatError(f"{folder}: no image frames ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    numbers = [re.findall(r"\d+", p.stem) for p in images]
    if all(numbers):
        last = [int(n[-1]) for n in numbers]
        expected = range(last[0], last[0] + len(last))
        if last != list(expected):
            present = set(last)
            hole = next(n for n in range(last[0], last[-1] + 1) if n not in present)
            raise DcatError(
                f"{folder}: missing image frame {hole} (the frames are numbered {last[0]}–"
                f"{last[-1]} but {len(last)} files are there); add the frame or renumber"
            )
    return images


def _pil() -> ModuleType:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("Pillow is needed to read image frames: pip install pillow") from err
    return Image


def image_sequence_info(folder: str | Path) -> FrameInfo:
    """Count and size of an image-sequence folder (from its first frame's header)."""
    return _images_info(list_images(folder))


def _images_info(images: list[Path]) -> FrameInfo:
    image_mod = _pil()
    try:
        with image_mod.open(images[0]) as image:
            width, height = image.size
            channels = 1 if image.mode in ("L", "I", "I;16", "F", "1") else 3
    except OSError as err:
        raise DcatError(f"{images[0]}: cannot read image: {err}") from None
    return FrameInfo(len(images), height, width, channels)


def _frame_array(path: Path) -> np.ndarray:
    """``(T, H, W, C)`` view of a ``(T, H, W)`` or ``(T, H, W, C)`` ``.npy`` (memory-mapped)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DcatError(f"{path}: not a readable .npy array ({err})") from None
    if array.ndim == 3:
        array = array[..., None]
    if (
        array.ndim != 4
        or array.shape[-1] not in (1, 3)
        or not np.issubdtype(array.dtype, np.number)
    ):
        raise DcatError(
            f"{path}: expected frames (T, H, W) or (T, H, W, C) with C = 1 or 3, got "
            f"{array.dtype} {array.shape}"
        )
    if len(array) == 0:
        raise DcatError(f"{path}: holds no frame (shape {array.shape})")
    return array


def array_frame_info(path: str | Path) -> FrameInfo:
    """Count and size of a ``(T, H, W[, C])`` ``.npy`` of frames (read from its header)."""
    array = _frame_array(Path(path))
    return FrameInfo(array.shape[0], array.shape[1], array.shape[2], array.shape[3])


def value_range_of(paths: Sequence[str | Path]) -> tuple[float, float]:
    """The smallest and largest finite value over ``.npy`` frame arrays, read frame by frame.

    Raises:
        DcatError: A file without a finite value, or NaN/Inf in one (named with the frame).
    """
    low, high = math.inf, -math.inf
    for path in paths:
        array = _frame_array(Path(path))
        for index in range(len(array)):
            frame = np.asarray(array[index], dtype=np.float64)
            if not np.isfinite(frame).all():
                raise DcatError(f"{path}: NaN or Inf in frame {index}")
            low, high = min(low, float(frame.min())), max(high, float(frame.max()))
    if not high > low:
        high = low + 1.0  # a constant sensor: map it to 0 rather than divide by zero
    return low, high


def grid_indices(
    count: int,
    rate_hz: float,
    *,
    frames: int | None = None,
    fps: float | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    where: str = "frames",
) -> np.ndarray:
    """Which of ``count`` frames at ``rate_hz`` each grid sample shows (see the module doc).

    Args:
        count: Frames in the source; frame ``i`` is shown from ``i / rate_hz`` s.
        rate_hz: Source frame rate.
        frames: Exactly this many samples evenly over the clip (``step = D / frames``).
        fps: Else samples every ``1 / fps`` s, ``ceil(D · fps − 0.5)`` of them.
        start_s: Clip start in seconds.
        duration_s: Clip length; ``None`` runs to the end of the source.
        where: Names the source in errors.

    Returns:
        ``(F,)`` int64 frame indices.

    Raises:
        DcatError: A clip that starts before 0 or ends more than one frame past the source, or
            neither ``frames`` nor ``fps``.
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise DcatError(f"{where}: frame rate must be a positive number of Hz, got {rate_hz}")
    total = count / rate_hz
    duration = total - start_s if duration_s is None else float(duration_s)
    if start_s < -_TIME_EPS or start_s + duration > total + 1.0 / rate_hz + _TIME_EPS:
        raise DcatError(
            f"{where}: clip {start_s:g}–{start_s + duration:g} s lies outside the {count} "
            f"frames ({total:g} s at {rate_hz:g} Hz)"
        )
    if frames is not None:
        step, n = duration / frames, int(frames)
    elif fps is not None:
        step, n = 1.0 / fps, math.ceil(duration * fps - 0.5 - 1e-9)
    else:
        raise DcatError(f"{where}: give frames or fps to sample the frames")
    if n < 1:
        raise DcatError(f"{where}: a clip of {duration:g} s holds no frame")
    times = start_s + (np.arange(n) + 0.5) * step
    return np.clip(np.floor(times * rate_hz + _TIME_EPS), 0, count - 1).astype(np.int64)


def to_uint8(values: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Map frame values to ``uint8``: ``value_range`` ``(lo, hi)`` → ``0…255`` (clipped), or
    unchanged for ``uint8`` input without a range."""
    if value_range is None:
        if values.dtype != np.uint8:
            raise DcatError(f"frames of dtype {values.dtype} need a value_range to become 8-bit")
        return np.asarray(values)
    low, high = value_range
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, C)`` uint8 → ``(C, h, w)`` at ``size`` with an area (box) filter."""
    height, width = size
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame.transpose(2, 0, 1))
    image_mod = _pil()
    channels = [
        np.asarray(
            image_mod.fromarray(np.ascontiguousarray(frame[..., c])).resize(
                (width, height), image_mod.Resampling.BOX
            )
        )
        for c in range(frame.shape[2])
    ]
    return np.stack(channels)


def resize_frames(frames: np.ndarray, size: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """Scale uint8 frames ``(F, C, H, W)`` to ``size`` ``(h, w)`` with the area (box) filter
    frames are read with, into ``out`` ``(F, C, h, w)`` (returned)."""
    for k, frame in enumerate(frames):
        out[k] = _resize(np.ascontiguousarray(frame.transpose(1, 2, 0)), size)
    return out


def _colour(frame: np.ndarray, grayscale: bool) -> np.ndarray:
    """``(H, W, C)`` → grey ``(H, W, 1)`` (BT.601 luma) or RGB ``(H, W, 3)``."""
    if grayscale and frame.shape[2] == 3:
        luma = frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    if not grayscale and frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    return frame


def read_frame_array(
    path: str | Path,
    *,
    rate_hz: float,
    size: tuple[int, int],
    frames: int | None = None,
    fps: float | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    grayscale: bool = True,
    value_range: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Sample a ``(T, H, W[, C])`` ``.npy`` of frames (depth, thermal) on a time grid.

    Args:
        path: The array file; frame ``i`` is shown from ``i / rate_hz`` s.
        rate_hz: Its frame rate.
        size: Output ``(H, W)``.
        frames, fps, start_s, duration_s: The grid (:func:`grid_indices`).
        grayscale: One channel out (luma of RGB arrays); else 3 (grey repeated).
        value_range: Values mapped to ``0…255`` (required unless the array is ``uint8``).
        out: Write the frames here (uint8 ``(F, C, H, W)``) instead of a new array.

    Returns:
        ``(F, C, H, W)`` uint8.
    """
    path = Path(path)
    array = _frame_array(path)
    grid = {"frames": frames, "fps": fps, "start_s": start_s, "duration_s": duration_s}

    def load(i: int) -> np.ndarray:
        return to_uint8(np.asarray(array[i]), value_range)

    return _sample(len(array), rate_hz, grid, load, size, grayscale, out, str(path))


def frame_buffer(out: np.ndarray | None, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Where ``shape`` uint8 frames are written: ``out`` when given (checked), else a new
    array. ``where`` names the source in the error."""
    if out is None:
        return np.empty(shape, dtype=np.uint8)
    if out.shape != shape or out.dtype != np.uint8:
        raise DcatError(f"{where}: frames are uint8 {shape}, out is {out.dtype} {out.shape}")
    return out


def _sample(
    count: int,
    rate_hz: float,
    grid: dict,
    load: Callable[[int], np.ndarray],
    size: tuple[int, int],
    grayscale: bool,
    out: np.ndarray | None,
    where: str,
) -> np.ndarray:
    """The ``count`` frames at ``rate_hz`` shown on ``grid`` (:func:`grid_indices`'s keyword
    options), each read by ``load(i)`` as ``(H, W, C)`` uint8, converted and resized."""
    index = grid_indices(count, rate_hz, **grid, where=where)
    out = frame_buffer(out, (len(index), 1 if grayscale else 3, *size), where)
    done: dict[int, int] = {}
    for k, i in enumerate(index.tolist()):
        if i in done:  # a frame shown at several sample times is converted once
            out[k] = out[done[i]]
            continue
        out[k] = _resize(_colour(load(i), grayscale), size)
        done[i] = k
    return out


def read_image_sequence(
    folder: str | Path,
    *,
    rate_hz: float,
    size: tuple[int, int],
    frames: int | None = None,
    fps: float | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    grayscale: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Sample a folder of PNG/JPEG frames (:func:`list_images`) on a time grid.

    Args:
        folder: The frames, one image per frame, shown from ``i / rate_hz`` s.
        rate_hz: The frame rate (the manifest's ``NAME_hz`` column).
        size: Output ``(H, W)``.
        frames, fps, start_s, duration_s: The grid (:func:`grid_indices`).
        grayscale: Luma instead of RGB.
        out: Write the frames here (uint8 ``(F, C, H, W)``) instead of a new array.

    Returns:
        ``(F, C, H, W)`` uint8.

    Raises:
        DcatError: A missing frame, an unreadable image, or an image whose size differs from
            the first frame's (mixed frame sizes), each naming the file.
    """
    images = list_images(folder)
    image_mod = _pil()
    first = _images_info(images)
    grid = {"frames": frames, "fps": fps, "start_s": start_s, "duration_s": duration_s}

    def load(i: int) -> np.ndarray:
        try:
            with image_mod.open(images[i]) as image:
                if image.size != (first.width, first.height):
                    raise DcatError(
                        f"{images[i]}: frame of {image.size[1]}×{image.size[0]} pixels, the "
                        f"sequence's first frame is {first.height}×{first.width} (mixed frame "
                        "sizes within one sensor)"
                    )
                pixels = np.asarray(image.convert("L" if grayscale else "RGB"))
        except OSError as err:
            raise DcatError(f"{images[i]}: cannot read image: {err}") from None
        return pixels[..., None] if pixels.ndim == 2 else pixels

    return _sample(len(images), rate_hz, grid, load, size, grayscale, out, str(folder))
