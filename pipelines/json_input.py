"""JSON text from files and widgets, parsed with bounds: a document nested thousands deep, or a number with
thousands of digits, gets a ``ValueError`` naming the input instead of Python's RecursionError or its
integer-conversion limit (both raw library messages)."""
from __future__ import annotations

import json

MAX_INT_DIGITS = 30  # no pixel count, frame index or coordinate needs more; Python itself stops at 4300
MAX_DEPTH_HINT = 500  # the decoder's own recursion limit is about this deep; nothing the pack reads nests past 10


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _TooManyDigits(digits)
    return int(text)


class _TooManyDigits(ValueError):
    def __init__(self, digits: int):
        super().__init__(digits)
        self.digits = digits


def parse_json(text: str, what: str, remedy: str):
    """``json.loads(text)``, or a ``ValueError`` starting with ``what`` (e.g. ``"Pose file 'x.json'"``) that says
    what is wrong (not JSON, at which line; nested too deep; an integer with too many digits) and ends with
    ``remedy``."""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except _TooManyDigits as exc:
        raise ValueError(f"{what} holds a whole number with {exc.digits} digits; at most {MAX_INT_DIGITS} are "
                         f"read. {remedy}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested more than about {MAX_DEPTH_HINT} levels deep, which no file of this "
                         f"kind is. {remedy}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not readable JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
                         f"{remedy}") from None
    except ValueError as exc:  # e.g. Python's own digit limit on a float-looking token
        raise ValueError(f"{what} could not be read as JSON ({exc}). {remedy}") from None
