"""One registry idiom for dcat's extension points: encoders, transfer methods and data sets.

Each kind keeps a :class:`Registry`: a name → entry table filled three ways, all through
:meth:`Registry.add` (which the kinds' decorators, ``@register_encoder``, ``@register_method``
and ``@register_dataset``, call):

* the shipped modules, imported on the first lookup;
* plug-in packages, through the kind's entry-point group (``dcat.encoders``, ``dcat.methods``,
  ``dcat.datasets``): each entry point names a module (``package.module``, or
  ``package.module:attribute``) whose import registers its entries;
* any module a program imports before it asks.

Names are read when asked (:meth:`Registry.names`), never frozen at import, so an entry added
later is accepted everywhere. An unknown name gets the kind's message and a "did you mean".

A plug-in package declares, in its ``pyproject.toml``::

    [project.entry-points."dcat.methods"]
    my_method = "my_package.my_method"
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from dcat.errors import DcatError, did_you_mean

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry table of one kind of extension.

    Args:
        kind: What an entry is, in messages (``"encoder"``).
        group: The entry-point group plug-in packages register through (``"dcat.encoders"``).
        builtin: Modules that register the shipped entries, imported on the first lookup; their
            order is the listing order of the shipped entries.
        unknown: The message for an unknown name, a format string with the fields ``{name}``
            (repr), ``{where}`` (the config key asked), ``{names}`` (comma-separated) and
            ``{listed}`` (a list's repr); a "did you mean" is appended.
        duplicate: The message for a name taken by another entry, with the field ``{name}``.
        module_of: The module that defines an entry (shipped entries are listed first).
        alphabetical: List the names sorted instead (shipped and plug-in ones alike).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        builtin: Sequence[str] = (),
        unknown: str = "unknown {kind} {name}; choose from {names}",
        duplicate: str = "a {kind} named {name} is already registered",
        module_of: Callable[[T], str] = lambda entry: getattr(entry, "__module__", ""),
        alphabetical: bool = False,
    ) -> None:
        self.kind, self.group, self.builtin = kind, group, tuple(builtin)
        self._unknown, self._duplicate, self._module_of = unknown, duplicate, module_of
        self.alphabetical = alphabetical
        self._entries: dict[str, T] = {}
        self._loaded = False

    def add(self, name: str, entry: T, *, same: Callable[[T, T], bool] | None = None) -> None:
        """Register ``entry`` under ``name``.

        Args:
            name: The name configs use.
            entry: What the name stands for.
            same: Whether an entry already under ``name`` is this one again (then nothing
                changes: a module imported twice); by default none is.

        Raises:
            DcatError: ``name`` is taken by another entry.
        """
        if name in self._entries and (same is None or not same(self._entries[name], entry)):
            raise DcatError(self._duplicate.format(kind=self.kind, name=repr(name)))
        self._entries[name] = entry

    def load(self) -> None:
        """Import the shipped modules, then the plug-ins' (once; later calls do nothing).

        Raises:
            DcatError: A plug-in's module cannot be imported (naming the entry point).
        """
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin:
            importlib.import_module(module)
        for point in entry_points(group=self.group):
            module = point.value.split(":")[0].strip()
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise DcatError(
                    f"plug-in {point.name!r} of entry-point group {self.group!r}: cannot import "
                    f"{module!r}: {err}"
                ) from err

    def names(self) -> list[str]:
        """The registered names: shipped ones first in their modules' order, then the others
        in registration order (or all sorted, for an ``alphabetical`` registry)."""
        self.load()
        if self.alphabetical:
            return sorted(self._entries)
        # sorted() is stable: entries of one module, and plug-ins, keep their registration order
        return sorted(self._entries, key=lambda name: self._rank(self._entries[name]))

    def _rank(self, entry: T) -> int:
        # Registration order depends on which module a program imported first; ranking shipped
        # entries by their module's place in ``builtin`` keeps listings and messages the same.
        module = self._module_of(entry)
        for i, builtin in enumerate(self.builtin):
            if module == builtin or module.startswith(builtin + "."):
                return i
        return len(self.builtin)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in the order of :meth:`names`."""
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def get(self, name: str, where: str = "") -> T:
        """The entry registered as ``name``.

        Args:
            name: The name asked for.
            where: The config key that asked, for the message.

        Raises:
            DcatError: The kind's message for an unknown name, with a "did you mean".
        """
        if name not in self:
            raise DcatError(self.unknown_message([name], where))
        return self._entries[name]

    def unknown_message(self, names: list[str], where: str = "") -> str:
        """The kind's message for unknown ``names`` (one, or several listed), with a "did you
        mean" from the registered names."""
        known = self.names()
        shown = repr(names[0]) if len(names) == 1 else repr(names)
        message = self._unknown.format(
            kind=self.kind, name=shown, where=where, names=", ".join(known), listed=known
        )
        return message + did_you_mean(names, known)

    @contextmanager
    def scoped(self) -> Iterator[Registry[T]]:
        """Entries added inside the block are gone after it (tests register into it)."""
        self.load()
        saved = dict(self._entries)
        try:
            yield self
        finally:
            self._entries = saved
