"""The one error type for bad user input.

:class:`DcatError` is raised for anything a user can fix: a config key, a data file, a shape, a
checkpoint from another configuration. The ``dcat`` command turns it into one ``dcat: error:``
line and exit code 2; any other exception is a bug in dcat and is shown with its traceback
(exit code 1). It derives from :class:`ValueError`, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["DcatError", "did_you_mean"]


class DcatError(ValueError):
    """Bad input: the message names the file, row, field or shape at fault and what was wanted."""


def did_you_mean(unknown: list[str], known: Iterable[str]) -> str:
    """``"; did you mean 'train'?"`` for the unknown names close to a known one, else ``""``."""
    guesses = [
        f"{match[0]!r} for {name!r}" if len(unknown) > 1 else repr(match[0])
        for name in unknown
        if (match := difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6))
    ]
    return f"; did you mean {', '.join(guesses)}?" if guesses else ""
