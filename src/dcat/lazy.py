"""Lazy package exports: a name is imported from its module on first use.

Packages re-export names from their submodules without importing them all up front, so that
``import dcat`` does not pull in torch for the deployment path, and reading a configuration
does not import Lightning.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """A module ``__getattr__``, ``__dir__`` and ``__all__`` serving names lazily.

    Use as ``__getattr__, __dir__, __all__ = lazy_exports(__name__, {"module.path": ["name"]})``.

    Args:
        package: The package's ``__name__``.
        modules: Module → the names it defines that the package exports.

    Returns:
        ``(__getattr__, __dir__, __all__)``; a served name is cached in the package afterwards.

    Raises:
        ValueError: One name exported from two modules (a bug in the package).
    """
    exports: dict[str, str] = {}
    for module, names in modules.items():
        for name in names:
            if exports.setdefault(name, module) != module:
                raise ValueError(f"{package}: {name!r} is exported from two modules")

    def get_attribute(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def list_names() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return get_attribute, list_names, sorted(exports)
