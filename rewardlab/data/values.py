"""Checks on single values read from records, shared by every format.

Numbers must be finite: Python's ``json`` accepts ``NaN`` and ``Infinity``, ``1e400`` parses to
infinity, and CSV cells such as ``"nan"`` or ``"inf"`` convert with :func:`float`; any of them in a
margin, score, rank or label would poison a model, so they are refused with a :class:`DataError`
(reason ``"non-finite number"``) that ``--on-error skip`` drops and counts like any bad record.
Values shown in error messages are cut short first, so a huge field never lands in a message whole.
"""

from __future__ import annotations

import math
from typing import Any

from rewardlab.data.io import DataError

#: Reason of the error for NaN and infinite numbers (the drop-count category).
NON_FINITE = "non-finite number"


def shown(value: Any, limit: int = 40) -> str:
    """A short, safe rendering of ``value`` for an error message.

    Strings are cut to ``limit`` characters *before* ``repr`` (no copy of a huge text), and
    containers are described by their type and size rather than printed.
    """
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit else f"{text}… ({len(value)} characters)"
    if isinstance(value, dict | list | tuple | set):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    return repr(value)[:limit]


def finite(number: float, where: str, field: str) -> float:
    """``number`` itself when finite.

    Raises:
        DataError: ``number`` is NaN or infinite.
    """
    if not math.isfinite(number):
        raise DataError(
            where, NON_FINITE, f"non-finite number {number!r} (NaN and infinity are refused)", field
        )
    return number


def to_number(value: Any, where: str, field: str) -> float:
    """A finite float from a number, a boolean, or a numeric string (as CSV cells are).

    ``true``/``false`` strings read as 1 and 0.

    Raises:
        DataError: ``value`` is not a number (reason ``"not a number"``), or is NaN, infinite or
            too large for a float (reason ``"non-finite number"``).
    """
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise DataError(where, NON_FINITE, f"number too large: {shown(value)}", field) from None
    if isinstance(value, float):
        return finite(value, where, field)
    if isinstance(value, str) and len(value) < 400:
        low = value.strip().lower()
        if low in ("true", "false"):
            return float(low == "true")
        try:
            number = float(low)
        except ValueError:
            pass
        else:
            return finite(number, where, field)
    raise DataError(where, "not a number", f"expected a number, got {shown(value)}", field)
