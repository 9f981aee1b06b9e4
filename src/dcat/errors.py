"""The one error type for bad user input.

:class:`DcatError` is raised for anything a user can fix: a config key, a data file, a shape, a
checkpoint from another configuration. The ``dcat`` command turns it into one ``dcat: error:``
line and exit code 2; any other exception is a bug in dcat and is shown with its traceback
(exit code 1). It derives from :class:`ValueError`, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["DcatError"]


class DcatError(ValueError):
    """Bad input: the message names the file, row, field or shape at fault and what was wanted."""
