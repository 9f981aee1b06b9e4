"""Safe loading of torch files: tensors, containers and plain values, never pickled code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from dcat.errors import DcatError

__all__ = ["load_torch_file"]


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
        raise DcatError(
            f"{path} is not a plain weights file: refused to unpickle it (only tensors, "
            f"containers and plain values are loaded){': ' + reason if reason else ''}"
        ) from None
    except RuntimeError as err:
        if mmap and "mmap can only be used" in str(err):  # an old, non-zip file
            return load_torch_file(path, map_location=map_location)
        if "PytorchStreamReader" not in str(err):
            raise
        raise DcatError(f"{path} is not a readable torch file (truncated or corrupt?)") from err
