"""Safe loading of torch files: tensors, containers and plain values, never pickled code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from dcat.errors import DcatError

__all__ = ["load_error_summary", "load_torch_file"]


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


def load_error_summary(err: BaseException) -> str:
    """One line for an error of loading weights into a network.

    ``load_state_dict``'s message is a header ("Error(s) in loading state_dict for …:") over
    one line per mismatch; those lines are joined with ``"; "``. Any other error gives its
    first line (its type's name when it has no message).
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        return "; ".join(lines[1:])
    return lines[0] if lines else type(err).__name__
