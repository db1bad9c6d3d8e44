"""User-facing errors.

A `UserError` is a mistake the user can fix (a bad flag, a missing file, a wrong shape).
The CLI prints its message on one line and exits non-zero; it never shows a traceback.
"""


class UserError(ValueError):
    """An error caused by the user's input, reported as one line by the CLI."""
