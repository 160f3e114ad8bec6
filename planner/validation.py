"""The one check of a count that configs and calls share: an int (numpy ints too, not a bool)
of at least a minimum, refused with a message naming it."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_count(name: str, value: Any, minimum: int = 1, hint: str = "") -> None:
    """Raise ValueError unless ``value`` is an int (not a bool) >= ``minimum``.

    ``name`` is what the message calls it (``"PlannerConfig.iterations"``); ``hint`` is added
    in parentheses after the bound (``"N candidates per iteration"``).
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        detail = f" ({hint})" if hint else ""
        raise ValueError(f"{name} must be an int >= {minimum}{detail}, got {value!r}")
