"""Atomic writes: a reader never sees a half-written file or folder."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

__all__ = ["atomic_folder", "write_atomic"]

# How often a commit retries when other processes keep putting folders at the destination
# between its rename attempts; each retry needs a competing writer to win a race, so a few are
# plenty and a bound keeps a pathological case from spinning.
_COMMIT_ATTEMPTS = 8


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` through a temporary file and a rename, so a reader
    never sees a half-written file and an interrupted write leaves the old one (or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(
    path: str | Path,
    *,
    replace: Literal["never", "always"],
    valid: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Build a folder under a temporary sibling name and rename it to ``path`` on success.

    The body of the ``with`` fills the yielded temporary folder (``.NAME.tmp-XXXXXXXX`` beside
    ``path``); a reader of ``path`` sees the old folder, the new one, or nothing, never a half
    written one. If the body raises, the temporary is removed and ``path`` is left untouched.

    What is already at ``path`` when the new folder is committed:

    * ``replace="always"`` (e.g. an export with ``--overwrite``): it is renamed aside, the new
      folder renamed into place, then the old one removed (between the two renames ``path``
      is briefly absent; if the second fails, the old folder is put back).
    * ``replace="never"`` with ``valid`` (content-addressed folders: a cache whose name
      determines its content): if ``valid(path)`` holds, another process already wrote the
      same content, so its folder is kept and the new one discarded (a process loading it is
      never disturbed); otherwise it is stale (another key, debris of an older format) and is
      renamed aside and replaced as for ``"always"``. An existing folder is never removed in
      place, so no reader sees one vanish file by file.
    * ``replace="never"`` without ``valid``: :class:`FileExistsError`, the new one discarded.

    Concurrent writers of one ``path`` are safe: each commits with a rename, which fails
    rather than merges when the destination is a non-empty folder, and a loser re-examines what
    the winner left.

    Args:
        path: The folder to create or replace.
        replace: ``"never"`` or ``"always"``, as above.
        valid: For ``replace="never"``: whether an existing folder at ``path`` holds what this
            writer would write (e.g. its ``meta.json`` names the same key); one that raises
            OSError or ValueError (unreadable metadata) counts as ``False``.

    Yields:
        The temporary folder to fill (empty, on the same file system as ``path``).

    Raises:
        FileExistsError: ``replace="never"``, no ``valid``, and ``path`` exists.
        ValueError: ``replace`` is neither ``"never"`` nor ``"always"``.
        OSError: The folder could not be renamed into place (the temporary is removed).
    """
    if replace not in ("never", "always"):
        raise ValueError(f"replace must be 'never' or 'always', got {replace!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_temporary(path)
    try:
        yield tmp
        _commit(tmp, path, replace, valid)
    finally:
        # after a commit the temporary no longer exists (renamed) or is a discarded duplicate
        _remove(tmp)


def _commit(tmp: Path, path: Path, replace: str, valid: Callable[[Path], bool] | None) -> None:
    """Rename ``tmp`` to ``path`` under the ``replace`` policy of :func:`atomic_folder`."""

    def keep_existing() -> bool:
        if replace != "never" or not os.path.lexists(path):
            return False
        if valid is None:
            raise FileExistsError(errno.EEXIST, "folder already exists", str(path))
        return _holds(valid, path)

    aside: Path | None = None
    try:
        for _ in range(_COMMIT_ATTEMPTS):
            if keep_existing():
                return
            try:
                # os.rename, not os.replace: it fails on a non-empty folder on every platform
                # instead of overwriting, which is what lets a loser see the winner's folder
                os.rename(tmp, path)
                return
            except OSError:
                if not os.path.lexists(path):
                    raise  # not a collision: a real failure (permissions, full disk)
            if keep_existing():  # another writer just committed the same content
                return
            if aside is not None:
                _remove(aside)  # the stale folder of the previous attempt
                aside = None
            candidate = _aside_name(path)
            try:
                os.rename(path, candidate)
            except FileNotFoundError:
                continue  # another writer moved it first; try again
            aside = candidate
            if replace == "never" and valid is not None and _holds(valid, aside):
                # raced with a writer that committed between our check and the move: put the
                # valid folder back rather than delete it (ours is redundant)
                try:
                    os.rename(aside, path)
                    aside = None
                    return
                except OSError:
                    pass  # a third writer filled the gap; theirs is as good, carry on
        raise OSError(
            errno.EBUSY,
            "could not rename a folder into place: other writers kept racing",
            str(path),
        )
    finally:
        if aside is not None:
            if os.path.lexists(path):
                _remove(aside)
            else:
                # the new folder never landed: put the old one back rather than lose it
                with suppress(OSError):  # if that fails too it stays aside, hidden, not deleted
                    os.rename(aside, path)


def _holds(valid: Callable[[Path], bool], folder: Path) -> bool:
    """``valid(folder)``, where a folder the predicate cannot read (debris, a half-removed
    folder, unparsable metadata) counts as not valid."""
    try:
        return bool(valid(folder))
    except (OSError, ValueError):
        return False


def _make_temporary(path: Path) -> Path:
    """Create an empty, uniquely named sibling of ``path``.

    Not :func:`tempfile.mkdtemp`: its folders are private (mode 0o700), and the folder becomes
    ``path`` itself, which should get the permissions of any folder the user creates.
    """
    while True:
        tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _aside_name(path: Path) -> Path:
    """A fresh sibling name to move an old folder to before it is removed."""
    return path.parent / f".{path.name}.old-{secrets.token_hex(4)}"


def _remove(path: Path) -> None:
    """Remove a folder (or a file where a folder was expected); nothing if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()
