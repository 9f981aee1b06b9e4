"""A disk cache of decoded video frames, read back through a memory map.

Video is the expensive modality: decoding an MP4 costs far more than a training step on a few
frames, so it is decoded once and cached (docs/design.md, "Data model"). :class:`FrameStore`
does that: every clip is decoded once into one ``uint8`` array ``(N, F, C, H, W)`` on disk,
read back through a memory map, and reused by every later run with the same files and options.
It is a :class:`~dcat.data.paired.LazyArray`, so a :class:`~dcat.data.paired.PairedDataset`
holds it as a modality and reads one sample at a time.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from dcat.errors import DcatError
from dcat.io.atomic import atomic_folder, write_atomic
from dcat.io.frames import list_images, read_frame_array, read_image_sequence, resize_frames
from dcat.io.media import _check_file, _check_size, decode_video

__all__ = [
    "FrameClip",
    "FrameStore",
    "VideoClip",
    "derived_indices",
    "frame_channels",
    "stored_metas",
]

# Written into every FrameStore key and meta.json: bump it when decoding changes (sampling
# rule, resizing, colour conversion) so caches built by older code are not reused.
_STORE_FORMAT = "dcat.FrameStore/1"
_FRAMES_FILE = "frames.npy"
_META_FILE = "meta.json"


def frame_channels(grayscale: bool) -> tuple[str, ...]:
    """Channel names of stored frames: ``("gray",)`` or ``("red", "green", "blue")``."""
    return ("gray",) if grayscale else ("red", "green", "blue")


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


@dataclass(frozen=True)
class FrameClip:
    """A clip of frames outside a video container, one sample of a :class:`FrameStore`: a
    folder of PNG/JPEG frames or a ``(T, H, W[, C])`` ``.npy`` array (:mod:`dcat.io.frames`).

    Attributes:
        path: The folder or the ``.npy`` file.
        rate_hz: Its frame rate: frame ``i`` is shown from ``i / rate_hz`` s.
        start_s: Clip start in seconds.
        duration_s: Clip length in seconds; ``None`` runs to the last frame.
        value_range: Array values mapped to ``0…255`` (``None``: 8-bit frames as they are).
    """

    path: Path
    rate_hz: float
    start_s: float = 0.0
    duration_s: float | None = None
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.value_range is not None:
            object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))


Clip = VideoClip | FrameClip


def _file_identity(path: Path) -> dict:
    """Resolved path, size and mtime of a file, or of every frame file of a folder."""
    if path.is_dir():
        files = list_images(path)
        digest = hashlib.sha256()
        for file in files:
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return {
            "path": str(path.resolve()),
            "files": len(files),
            "files_sha256": digest.hexdigest(),
        }
    _check_file(path)
    stat = path.stat()
    return {"path": str(path.resolve()), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _clip_record(clip: Clip) -> dict:
    """What identifies a clip's content: the file (resolved, size, mtime) and the interval."""
    record = {
        **_file_identity(Path(clip.path)),
        "start_s": float(clip.start_s),
        "duration_s": None if clip.duration_s is None else float(clip.duration_s),
    }
    if isinstance(clip, FrameClip):  # video records keep their old form (and cache keys)
        record.update(
            kind="frames",
            rate_hz=float(clip.rate_hz),
            value_range=None if clip.value_range is None else list(clip.value_range),
        )
    return record


def _decode(
    clip: Clip, frames: int, size: tuple[int, int], grayscale: bool, out: np.ndarray
) -> np.ndarray:
    """Decode one clip's ``frames`` evenly spaced frames into ``out`` (uint8 ``(F, C, H, W)``,
    a row of the memory-mapped store: a long clip is never held whole in memory)."""
    if isinstance(clip, VideoClip):
        # fps is unused when frames is given (evenly spaced over the clip)
        return decode_video(
            clip.path, fps=0.0, size=size, frames=frames, start_s=clip.start_s,
            duration_s=clip.duration_s, grayscale=grayscale, out=out,
        )  # fmt: skip
    read = read_image_sequence if clip.path.is_dir() else read_frame_array
    options: dict[str, Any] = {} if clip.path.is_dir() else {"value_range": clip.value_range}
    return read(
        clip.path, rate_hz=clip.rate_hz, size=size, frames=frames, start_s=clip.start_s,
        duration_s=clip.duration_s, grayscale=grayscale, out=out, **options,
    )  # fmt: skip


def _meta_key(folder: Path) -> str | None:
    """The key in ``folder/meta.json`` (raises OSError or ValueError when it is unreadable)."""
    return json.loads((folder / _META_FILE).read_text()).get("key")


def _store_key(records: list[dict], frames: int, size: tuple[int, int], grayscale: bool) -> str:
    params = {"format": _STORE_FORMAT, "frames": frames, "size": list(size), "gray": grayscale}
    text = json.dumps({"clips": records, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _derived_key(parent: str, frames: int, size: tuple[int, int]) -> str:
    """Key of frames derived from the store ``parent``: not a fresh decode's key, so that a
    run's fingerprint tells the two apart (a derived pixel can differ by a grey level or two)."""
    params = {"format": _STORE_FORMAT, "derived_from": parent, "frames": frames, "size": list(size)}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def stored_metas(cache_dir: Path) -> list[tuple[Path, dict]]:
    """``(folder, meta.json)`` of every complete store of this format in ``cache_dir``; other
    folders, unreadable ones and debris are left out."""
    found = []
    for folder in sorted(cache_dir.iterdir()) if cache_dir.is_dir() else ():
        try:
            meta = json.loads((folder / _META_FILE).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("format") == _STORE_FORMAT and "key" in meta:
            found.append((folder, meta))
    return found


def derived_indices(stored: int, frames: int) -> np.ndarray:
    """Which of ``stored`` evenly spaced samples of a clip stands for each of ``frames``
    evenly spaced samples of it (``frames ≤ stored``): the nearest in time, the earlier on a
    tie. Sample ``j`` of ``n`` lies at ``(j + 0.5) / n`` of the clip, so this is exact when
    ``stored / frames`` is an odd integer (15 → 5) and otherwise at most half a stored step
    early (16 → 8: samples 0, 2, 4, ...).

    Returns:
        ``(frames,)`` int64 indices in ``[0, stored)``.
    """
    j = np.arange(frames, dtype=np.int64)
    # ceil(((2j + 1)·stored − 2·frames) / (2·frames)), in integers: no rounding at a tie
    numerator = (2 * j + 1) * stored - 2 * frames
    return np.clip(-(-numerator // (2 * frames)), 0, stored - 1)


def _decoder(
    clips: Sequence[Clip],
    frames: int,
    size: tuple[int, int],
    grayscale: bool,
    progress: Callable[[int, int], None] | None,
) -> Callable[[np.ndarray], None]:
    """A ``fill`` for :meth:`FrameStore._create` that decodes clip ``i`` into row ``i``.

    Args:
        clips: The ``N`` clips, in store order.
        frames: Frames per clip ``F``.
        size: ``(H, W)`` of the stored frames.
        grayscale: Decode luma (``C = 1``) instead of RGB (``C = 3``).
        progress: Called as ``progress(done, N)`` after each row.

    Returns:
        A function filling a uint8 ``(N, F, C, H, W)`` array in place.
    """

    def fill(array: np.ndarray) -> None:
        first_row: dict[Clip, int] = {}
        for row, clip in enumerate(clips):
            if clip in first_row:  # the same clip listed twice: copy, do not decode again
                array[row] = array[first_row[clip]]
            else:
                first_row[clip] = row
                _decode(clip, frames, size, grayscale, array[row])
            if progress is not None:
                progress(row + 1, len(clips))

    return fill


def _derived_note(store: FrameStore, frames: int, size: tuple[int, int]) -> str:
    """One line saying which cached store a derived ``store`` of ``frames`` × ``size`` came from."""
    parent = store.meta["derived_from"]
    return (
        f"frames derived from the cache {parent['key'][:12]} of "
        f"{parent['frames']} frames of {parent['size'][0]}×{parent['size'][1]} "
        f"(no decoding): {frames} frames of {size[0]}×{size[1]} in {store.folder}"
    )


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
        clips: Sequence[Clip | str | Path],
        cache_dir: str | Path,
        *,
        frames: int,
        size: tuple[int, int],
        grayscale: bool = False,
        progress: Callable[[int, int], None] | None = None,
        derive: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> FrameStore:
        """Decode ``clips`` (each once) into ``cache_dir/<key[:32]>/``, or open it if built.

        The key hashes each clip's resolved path, file size, modification time (ns), start and
        duration, plus ``frames``, ``size`` and ``grayscale``: editing or touching a source file
        makes a new key (old folders are left in place: ``dcat cache list|clear`` shows and
        removes them, :mod:`dcat.data.frame_cache`).

        With ``derive``, a store of the same clips and colour with at least as many frames and
        at least the size (a decode of an earlier ``frames``/``size``) is used instead of
        decoding: the frames nearest in time (:func:`derived_indices`) scaled down with the
        box filter of a decode. That takes a second where decoding takes minutes, but scaling
        twice can leave a pixel a grey level or two off a fresh decode and a sample can be half
        a stored step early, so the derived store has a key of its own (``derived_from`` in its
        ``meta.json``), found again on the next build.

        Args:
            clips: The samples, in order: :class:`VideoClip` s, :class:`FrameClip` s (image
                folders, frame arrays), or a str/Path taken as a whole video file.
            cache_dir: Folder holding one sub-folder per key.
            frames: Frames per clip, evenly spaced (:func:`decode_video` with ``frames=``).
            size: ``(H, W)`` of the stored frames.
            grayscale: Store luma (``C = 1``) instead of RGB (``C = 3``).
            progress: Called as ``progress(done, total)`` after each decoded clip.
            derive: Derive the frames from a larger store when there is one (above).
            log: Told, in one line, where derived frames come from.

        Returns:
            The store, memory-mapped, of shape ``(len(clips), frames, C, H, W)``.

        Raises:
            DcatError: No clips, a bad parameter, or a clip :func:`decode_video` refuses
                (missing or corrupt file, clip outside it); nothing is left in ``cache_dir``.
        """
        if not clips:
            raise DcatError("FrameStore.build needs at least one clip")
        if int(frames) != frames or frames < 1:
            raise DcatError(f"frames must be a positive integer, got {frames!r}")
        frames = int(frames)
        height, width = _check_size(size)
        given: list[Clip] = [
            c if isinstance(c, VideoClip | FrameClip) else VideoClip(Path(c)) for c in clips
        ]
        records = [_clip_record(clip) for clip in given]
        key = _store_key(records, frames, (height, width), bool(grayscale))
        cache_dir = Path(cache_dir)
        folder = cache_dir / key[:32]
        if (folder / _META_FILE).is_file():
            return cls._open_checked(folder, key)
        if derive:
            store = cls._derive(cache_dir, records, frames, (height, width), bool(grayscale))
            if store is not None:
                if log is not None:
                    log(_derived_note(store, frames, (height, width)))
                return store

        channels = 1 if grayscale else 3
        shape = (len(given), frames, channels, height, width)
        fill = _decoder(given, frames, (height, width), grayscale, progress)
        return cls._create(folder, key, shape, fill, {"grayscale": bool(grayscale)}, records)

    @classmethod
    def _derive(
        cls,
        cache_dir: Path,
        records: list[dict],
        frames: int,
        size: tuple[int, int],
        grayscale: bool,
    ) -> FrameStore | None:
        """The store of these clips derived before, or derived now from the smallest store of
        them that has enough frames and pixels; ``None`` when there is none."""
        clips = json.loads(json.dumps(records))  # as meta.json holds them
        same = [
            (folder, meta)
            for folder, meta in stored_metas(cache_dir)
            if meta.get("clips") == clips and meta.get("grayscale") == grayscale
        ]
        for folder, meta in same:
            if meta.get("derived_from") and (meta["frames"], meta["size"]) == (frames, list(size)):
                return cls._open_checked(folder, meta["key"])
        parents = [
            (folder, meta)
            for folder, meta in same
            if not meta.get("derived_from")  # one resize from a decode, never two
            and meta["frames"] >= frames
            and meta["size"][0] >= size[0]
            and meta["size"][1] >= size[1]
        ]
        if not parents:
            return None
        # the least to read and scale
        folder, meta = min(parents, key=lambda p: p[1]["frames"] * np.prod(p[1]["size"]))
        parent = cls._open_checked(folder, meta["key"])
        key = _derived_key(parent.key, frames, size)
        rows = derived_indices(meta["frames"], frames)
        shape = (meta["count"], frames, meta["channels"], *size)

        def fill(array: np.ndarray) -> None:
            for row in range(len(array)):
                chosen = np.asarray(parent._data[row, rows])  # (frames, C, H, W)
                if chosen.shape[2:] == size:
                    array[row] = chosen
                else:
                    resize_frames(chosen, size, array[row])

        derived = {"key": parent.key, "frames": meta["frames"], "size": meta["size"]}
        params = {"grayscale": grayscale, "derived_from": derived}
        return cls._create(cache_dir / key[:32], key, shape, fill, params, records)

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
            DcatError: ``frames`` is not a uint8 array of 5 dimensions with ``N ≥ 1``.
        """
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 5 or not len(frames):
            raise DcatError(
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
        """Write ``frames.npy`` (filled in place by ``fill``) and ``meta.json`` to ``folder``.

        The folder is content-addressed (its name is the key), so one that another process
        finished first with the same key is kept and used; debris or another key is replaced.
        """
        with atomic_folder(folder, replace="never", valid=lambda f: _meta_key(f) == key) as tmp:
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
            # written last: a folder with meta.json is a complete store
            write_atomic(tmp / _META_FILE, json.dumps(meta, indent=1))
        return cls._open_checked(folder, key)

    @classmethod
    def open(cls, folder: str | Path) -> FrameStore:
        """Open a store written by :meth:`build` or :meth:`from_array` (memory-mapped, read-only).

        Args:
            folder: ``cache_dir/<key[:32]>``, holding ``meta.json`` and ``frames.npy``.

        Raises:
            DcatError: Not a frame store, or its frames do not match its ``meta.json``.
        """
        folder = Path(folder)
        meta_path = folder / _META_FILE
        if not meta_path.is_file():
            raise DcatError(f"{folder}: not a frame store (no {_META_FILE})")
        try:
            meta = json.loads(meta_path.read_text())
            data = np.load(folder / _FRAMES_FILE, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DcatError(f"{folder}: unreadable frame store: {exc}") from exc
        if meta.get("format") != _STORE_FORMAT or not {"key", "count", "channels"} <= set(meta):
            raise DcatError(
                f"{folder}: frame store format {meta.get('format')!r}, expected {_STORE_FORMAT!r}"
            )
        expected = (meta["count"], meta["frames"], meta["channels"], *meta["size"])
        if data.dtype != np.uint8 or data.shape != expected:
            raise DcatError(
                f"{folder}: {_FRAMES_FILE} is {data.dtype} {data.shape}, meta.json says uint8 "
                f"{expected}"
            )
        return cls(folder, meta, data, np.arange(meta["count"], dtype=np.int64))

    @classmethod
    def _open_checked(cls, folder: Path, key: str) -> FrameStore:
        store = cls.open(folder)
        if store.key != key:
            raise DcatError(
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
        frames = self._data[self._indices[i]].astype(np.float32)
        frames /= np.float32(255)  # in place: one float copy of the sample, not two
        return frames

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
            mapped = cast(np.memmap, self._data)  # it has a file name: a memory map
            offset = int(mapped.offset) + int(rows[0]) * row_bytes
            fd = os.open(filename, os.O_RDONLY)
            try:
                view, done = out.data.cast("B"), 0  # out.data: memoryview(out)
                while done < view.nbytes:
                    read = os.preadv(fd, [view[done:]], offset + done)
                    if read <= 0:
                        raise DcatError(f"{filename}: frame cache is shorter than its header says")
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
    def clips(self) -> list[Clip]:
        """The clips of this view, in order."""
        records = self.meta["clips"]
        return [
            FrameClip(
                Path(r["path"]), r["rate_hz"], r["start_s"], r["duration_s"], r["value_range"]
            )
            if r.get("kind") == "frames"
            else VideoClip(Path(r["path"]), r["start_s"], r["duration_s"])
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
