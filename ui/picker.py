"""The header's model picker: which shipped checkpoint or own run each of this session's tabs uses."""

from __future__ import annotations

import gradio as gr

from vae_core.models import spec

from .catalogue import PICKABLE
from .components import ModelChoice
from .handler import FREE, LOCAL, session_of, user_facing
from .page import Page
from .session import Studio


class Picker:
    def __init__(self, studio: Studio):
        self.studio = studio

    def current(self, request: gr.Request = None) -> list[gr.Dropdown]:
        """Each picker's choices (shipped checkpoints, then this session's runs) and its current model (private)."""
        session = session_of(request)
        models = self.studio.models(session)
        return [gr.Dropdown(choices=self.studio.choices(session, role), value=models[role].source) for role in PICKABLE]

    @user_facing
    def pick(self, request: gr.Request, *sources) -> str:
        """Make the picked models this session's (private); every tab redraws with them.

        `request` comes first: with `*sources` after it, Gradio inserts it by position.
        """
        session = session_of(request)
        for role, source in zip(PICKABLE, sources, strict=True):
            if source and source != self.studio.models(session)[role].source:
                self.studio.choose(session, role, source)
        return self.studio.describe(session)

    def restore(self, request: gr.Request = None) -> str:
        """Back to the pretrained models (private); the session's runs stay pickable."""
        self.studio.restore(session_of(request))
        return self.studio.describe(session_of(request))


def build(page: Page) -> None:
    picker = Picker(page.studio)
    with gr.Row(equal_height=True):
        shipped = page.studio.catalogue.pretrained
        pickers = [ModelChoice(list(page.studio.choices(LOCAL, role)), value=shipped[role].source,
                               label=f"{spec(role).title} in my tabs", elem_id=f"pick-{role}", scale=2)
                   for role in PICKABLE]
        restore = gr.Button("Restore pretrained", elem_id="restore-pretrained", scale=1)
    for dropdown in pickers:  # one pick at a time: two quick picks land in the order they were made
        dropdown.input(picker.pick, pickers, page.models, api_visibility="private", concurrency_id="pick",
                       concurrency_limit=1)
    restore.click(picker.restore, None, page.models, api_visibility="private", **FREE)
    # a run that ends, an adopted run or a pick changes the list: the pickers follow it
    page.models.change(picker.current, None, pickers, api_visibility="private", **FREE)
