"""Argument checks shared by the data layer.

Every check raises ``TypeError`` (wrong type) or ``ValueError`` (wrong value) with a message
that names the argument, says what was got and what was expected, and how to fix it.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value: object, *, minimum: int | None = None, fix: str = "") -> int:
    """Return ``value`` as an ``int`` after checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(
            f"{name} must be an int, got {type(value).__name__} {value!r}"
            + (f"; {fix}" if fix else "")
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}" + (f"; {fix}" if fix else ""))
    return value


def check_optional_int(
    name: str, value: object, *, minimum: int | None = None, fix: str = ""
) -> int | None:
    """Like :func:`check_int` but ``None`` passes through."""
    if value is None:
        return None
    return check_int(name, value, minimum=minimum, fix=fix)


def check_fraction(name: str, value: object, *, fix: str = "") -> float:
    """Return ``value`` as a float strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float in (0, 1), got {type(value).__name__} {value!r}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(
            f"{name} must be strictly between 0 and 1, got {value}" + (f"; {fix}" if fix else "")
        )
    return value


def as_token_array(name: str, token_ids: object) -> np.ndarray:
    """Return ``token_ids`` as a 1-D integer NumPy array without copying when possible.

    Integer arrays keep their dtype (a corpus stored as ``uint16`` stays ``uint16``); lists
    of ints become ``int64``.
    """
    if isinstance(token_ids, (str, bytes)):
        raise TypeError(
            f"{name} must be a sequence of token ids, got {type(token_ids).__name__}; "
            "encode the text with a tokenizer first"
        )
    arr = np.asarray(token_ids)
    if arr.dtype == object or arr.dtype.kind not in "iu":
        if arr.size == 0 and arr.dtype.kind == "f":
            arr = arr.astype(np.int64)
        else:
            raise TypeError(
                f"{name} must hold integer token ids, got an array of dtype {arr.dtype}; "
                "pass a list of ints or an integer NumPy array"
            )
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one token stream), got shape {arr.shape}; "
            "concatenate the documents (e.g. with an end-of-text token between them)"
        )
    if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise ValueError(f"{name} must hold non-negative token ids, got minimum {int(arr.min())}")
    return arr


class MalformedRecordError(ValueError):
    """A record of a data set is malformed; the message names its index and the problem."""
