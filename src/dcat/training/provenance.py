"""Where a run came from: versions of dcat and its key libraries, and the git commit."""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dcat

__all__ = ["git_state", "versions"]


def versions() -> dict[str, Any]:
    """Versions of dcat, Python and the key libraries, and the commit of a dcat checkout.

    ``git_commit`` and ``git_dirty`` (uncommitted changes to tracked files) are there only when
    dcat is imported from a git working tree that tracks it (not from an installed wheel).
    They are read once per process: the code a process runs is the code it imported then, and
    three ``git`` calls per model cost more than a small model's set-up.
    """
    return copy.deepcopy(_versions())


@functools.cache
def _versions() -> dict[str, Any]:
    import lightning
    import torchmetrics

    found = {
        "dcat": dcat.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torchmetrics": torchmetrics.__version__,
        "numpy": np.__version__,
    }
    for distribution in ("torchvision", "scipy", "scikit-learn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[distribution] = importlib.metadata.version(distribution)
    out: dict[str, Any] = {name: "".join(v) for name, v in found.items()}  # TorchVersion → str
    out.update(git_state(Path(dcat.__file__).resolve().parent))
    return out


def git_state(folder: Path) -> dict[str, Any]:
    """``git_commit`` and ``git_dirty`` of the checkout tracking ``folder``; ``{}`` without one."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=5,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # never take the index lock
        )

    try:
        # a venv or wheel inside some other repository must not report that repository
        if git("ls-files", "--error-unmatch", "--", "__init__.py").returncode != 0:
            return {}
        head = git("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return {}
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return {}
    state: dict[str, Any] = {"git_commit": head.stdout.strip()}
    if status.returncode == 0:
        state["git_dirty"] = bool(status.stdout.strip())
    return state
