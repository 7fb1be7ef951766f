"""Checks of scalar arguments shared by the public functions.  Every message names the argument.

Integers are read with ``operator.index`` (the protocol NumPy uses for indices: Python ints,
NumPy integer scalars, 0-d integer arrays), never by ``int()``, which would truncate 7.9 to 7.
Bools are refused where an integer is meant, since ``seed=True`` is almost certainly a mistake.
"""
import operator

import numpy as np


def as_int(value, name, what="an int"):
    """``operator.index(value)``; TypeError naming `name` for bools and non-integers."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    try:
        return operator.index(value)
    except TypeError:  # not an integer, or an __index__ that returns a non-int
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}") from None


def as_flag(value, name):
    """``bool(value)``, as NumPy and PyTorch read flags; TypeError naming `name` when `value`
    has no truth value (an array of several elements)."""
    if value is True or value is False:
        return value
    try:
        return bool(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}") from None
