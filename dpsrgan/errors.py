"""The one exception type users see.

Library code raises :class:`DpsrganError` (or a subclass) for anything the user can fix: a bad
file, a bad key, an unreachable server. Its message is a single line that names the file/key and
the fix; the CLI and the stage entry points print it and exit non-zero, never a stack trace.
Programming errors stay ordinary exceptions (and asserts for invariants).
"""


class DpsrganError(Exception):
    """A user-facing failure; ``str(error)`` is one line naming the culprit and the fix."""
