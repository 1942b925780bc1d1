"""Widgets and server-side checks built from `vae_core.config.LIMITS`, so the two can never disagree.

Each widget carries the CSS class `limit-<name>`: the test that compares every widget's
range with its limit finds them by it.
"""

from __future__ import annotations

from vae_core.config import LIMITS, Limit, check_choice  # noqa: F401 - check_choice: handlers check choices here too

from .components import Number, Slider


def _range(name: str) -> tuple[Limit, dict]:
    limit = LIMITS[name]
    return limit, {"minimum": limit.lo, "maximum": limit.hi, "elem_classes": [f"limit-{name}"]}


def slider(name: str, label: str, value: float, step: float | None = None, **kwargs) -> Slider:
    limit, bounds = _range(name)
    return Slider(value=value, step=step or (1 if limit.whole else None), label=label, **bounds, **kwargs)


def number(name: str, label: str, value: float, **kwargs) -> Number:
    limit, bounds = _range(name)
    return Number(value, label=label, precision=0 if limit.whole else None, **bounds, **kwargs)


def seed(label: str = "Seed") -> Number:
    return number("seed", label, 0)


def check(name: str, value, label: str | None = None) -> int | float:
    """The value of a setting from any client (widget, JSON, string), checked against its limit.

    Raises ValueError with a plain sentence; handlers turn it into a `gr.Error`.
    """
    label = label or name.replace("_", " ")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{label} must be a number, not {value[:40]!r}") from None
    return LIMITS[name].check(label, value)
