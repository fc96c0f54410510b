"""The constructor checks every model shares: sizes are integers, and positive.

A model's config arrives from ``params.yaml`` or a checkpoint; a float or a bool where a width
belongs would build a wrong network or fail deep inside torch, so each constructor names the
field in one line instead.
"""

from __future__ import annotations

from dpsrgan.errors import DpsrganError


def require_ints(model: str, minimum: int = 1, **values: object) -> None:
    """Raise one :class:`DpsrganError` line for the first of ``values`` that is not an integer
    ``>= minimum`` (``True`` is not an integer here), e.g. "generator channels must be an
    integer >= 1, got 0"."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise DpsrganError(f"{model} {name} must be an integer >= {minimum}, got {value!r}")
