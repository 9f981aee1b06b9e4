"""What a decoded-frame cache folder holds, and clearing it (``dcat cache list|clear``).

Every ``frames``/``size``/colour of a data set's video, and every edit of its files, makes a
store of its own in the cache folder (:class:`~dcat.data.frame_store.FrameStore`), and none is
ever removed by a run: a store can serve a later run, or be derived from
(:meth:`FrameStore.build`). These functions list the stores, with their size on disk, and
remove them, all or those named by key, together with the debris an interrupted build leaves
(``.NAME.tmp-…`` folders of :func:`dcat.io.atomic.atomic_folder`). Nothing else in the folder
is touched.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dcat.data.frame_store import stored_metas
from dcat.errors import DcatError

__all__ = ["CachedStore", "clear_stores", "find_cache_dir", "list_stores"]

# Where the data-set readers keep their cache by default, below data.root (or the manifest's
# folder); a path given to `dcat cache` may name that parent instead of the cache itself.
_DEFAULT_NAME = ".dcat_frames"


@dataclass(frozen=True)
class CachedStore:
    """One store of a cache folder.

    Attributes:
        folder: Its folder.
        key: Its key (SHA-256; the folder is named by the first 32 characters).
        count: Clips (samples).
        frames: Frames per clip.
        channels: Channels per frame.
        size: ``(H, W)`` of the frames.
        bytes: Size on disk of its files.
        created: When it was written (its ``meta.json``'s modification time).
        derived_from: Key of the store it was derived from, or ``None`` (decoded).
    """

    folder: Path
    key: str
    count: int
    frames: int
    channels: int
    size: tuple[int, int]
    bytes: int
    created: datetime
    derived_from: str | None

    def describe(self) -> str:
        """``3f2a…  120 clips × 16 frames × 1×60×80  9.2 MiB  2025-01-31 12:00  derived from …``."""
        source = f"  derived from {self.derived_from[:12]}" if self.derived_from else ""
        height, width = self.size
        return (
            f"{self.key[:12]}  {self.count} clips × {self.frames} frames × "
            f"{self.channels}×{height}×{width}  {self.bytes / 2**20:.1f} MiB  "
            f"{self.created:%Y-%m-%d %H:%M}{source}"
        )


def find_cache_dir(path: str | Path) -> Path:
    """The cache folder ``path`` names: itself (a ``.dcat_frames`` folder, one holding stores
    or build debris, or an empty one), or its ``.dcat_frames`` (a data root).

    Raises:
        DcatError: ``path`` is none of these, so clearing it could remove what is no cache.
    """
    path = Path(path)
    if path.is_dir() and (path.name == _DEFAULT_NAME or stored_metas(path) or _debris(path)):
        return path
    if (path / _DEFAULT_NAME).is_dir():
        return path / _DEFAULT_NAME
    if path.is_dir() and not any(path.iterdir()):
        return path  # an empty cache: nothing to list
    raise DcatError(
        f"{path}: not a frame cache (a folder of stores, each holding meta.json and "
        f"frames.npy) and holds no {_DEFAULT_NAME}; data sets keep theirs in "
        f"<data.root>/{_DEFAULT_NAME} unless data.options.frame_cache names another"
    )


def list_stores(cache_dir: str | Path) -> list[CachedStore]:
    """The stores in ``cache_dir``, oldest first."""
    stores = []
    for folder, meta in stored_metas(Path(cache_dir)):
        files = [f for f in folder.iterdir() if f.is_file()]
        derived = meta.get("derived_from")
        stores.append(
            CachedStore(
                folder=folder,
                key=meta["key"],
                count=int(meta["count"]),
                frames=int(meta["frames"]),
                channels=int(meta["channels"]),
                size=(int(meta["size"][0]), int(meta["size"][1])),
                bytes=sum(f.stat().st_size for f in files),
                created=datetime.fromtimestamp((folder / "meta.json").stat().st_mtime),
                derived_from=derived["key"] if isinstance(derived, dict) else None,
            )
        )
    return sorted(stores, key=lambda s: s.created)


def _debris(cache_dir: Path) -> list[Path]:
    """Temporary folders an interrupted build left (``.NAME.tmp-…``)."""
    return sorted(p for p in cache_dir.glob(".*.tmp-*") if p.is_dir())


def clear_stores(
    cache_dir: str | Path, keys: Sequence[str] = ()
) -> tuple[list[CachedStore], list[Path]]:
    """Remove the stores of ``cache_dir`` whose keys start with one of ``keys`` (all stores
    when none is given) and, with all of them, the debris of interrupted builds.

    Args:
        cache_dir: The cache folder.
        keys: Key prefixes (as ``dcat cache list`` shows them), each naming one store.

    Returns:
        The stores removed and the debris folders removed.

    Raises:
        DcatError: A prefix that names no store, or several; checked before anything is
            removed.
    """
    cache_dir = Path(cache_dir)
    stores = list_stores(cache_dir)
    chosen = stores
    if keys:
        chosen = []
        for prefix in keys:
            matches = [s for s in stores if s.key.startswith(prefix)]
            if len(matches) != 1:
                what = "no store" if not matches else f"{len(matches)} stores"
                raise DcatError(
                    f"{cache_dir}: key {prefix!r} names {what}; the keys are "
                    f"{[s.key[:12] for s in stores]}"
                )
            chosen.append(matches[0])
    debris = [] if keys else _debris(cache_dir)
    for store in chosen:
        shutil.rmtree(store.folder)
    for folder in debris:
        shutil.rmtree(folder, ignore_errors=True)
    return chosen, debris
