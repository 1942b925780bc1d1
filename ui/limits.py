"""Widgets and server-side checks built from `vae_core.config.LIMITS`, so the two can never disagree.

Each widget carries the CSS class `limit-<name>`: the test that compares every widget's
range with its limit finds them by it.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from vae_core.config import LIMITS, Limit, Option, check_choice  # noqa: F401 - check_choice: handlers check choices

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


def option_widget(name: str, opt: Option, default: Any) -> gr.components.Component:
    """The Train tab's widget for a model option (`vae_core.config.Option`): its choices, or its limit's range."""
    elem_id = name.replace("_", "-")
    if opt.choices or opt.limit is None:
        return gr.Radio(list(opt.choices), value=default, label=opt.label, elem_id=elem_id)
    if opt.number_box:
        return number(opt.limit, opt.label, default, elem_id=elem_id)
    return slider(opt.limit, opt.label, default, step=opt.step, elem_id=elem_id)


def check(name: str, value, label: str | None = None) -> Any:
    """The value of a setting from any client (widget, JSON, string), checked against its limit.

    An int for a whole limit, else a float. Raises ValueError with a plain sentence; handlers turn it into
    a `gr.Error`.
    """
    return LIMITS[name].check(label or name.replace("_", " "), value)
