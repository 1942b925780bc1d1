"""What every tab's `build` receives: the studio, and the page's shared pieces."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .session import Studio


@dataclass(frozen=True)
class Page:
    studio: Studio
    models: gr.Markdown  # the header's list of this session's active models
