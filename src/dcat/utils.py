"""Small shared helpers."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["load_torch_file", "write_atomic"]


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


def load_torch_file(path: str | Path, *, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load`` that never unpickles code: tensors, containers and plain values only.

    A file holding anything else (a pickled class, a function call) is refused with a
    ``ValueError`` naming it, and nothing in it is run; so is a truncated or corrupt file.
    """
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        reason = next((s.strip() for s in str(err).splitlines() if "global" in s.lower()), "")
        raise ValueError(
            f"{path} is not a plain weights file: refused to unpickle it (only tensors, "
            f"containers and plain values are loaded){': ' + reason if reason else ''}"
        ) from None
    except RuntimeError as err:
        if mmap and "mmap can only be used" in str(err):  # an old, non-zip file
            return load_torch_file(path, map_location=map_location)
        if "PytorchStreamReader" not in str(err):
            raise
        raise ValueError(f"{path} is not a readable torch file (truncated or corrupt?)") from err
