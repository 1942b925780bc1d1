"""What every tab's `build` receives: the studio, and the page's shared pieces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from vae_core.models import spec

from .components import KindChoice
from .handler import FREE, LIVE, LOCAL, SAMPLING, gpu, quiet_until_given, session_of
from .session import Studio


@dataclass(frozen=True)
class Page:
    studio: Studio
    models: gr.Markdown  # the header's list of this session's active models
    demo: gr.Blocks  # for its `load` event (the Train tab's timer starts there when a run is already live)

    def live(self, where: gr.Tab, *controls: Any) -> list:
        """The triggers of a cheap action: opening its tab, a change of the session's models, and of its controls.

        Used with `trigger_mode="always_last"`, so a fast drag runs the latest value once
        the call in flight returns, never a backlog. A tab computes when it is opened, not
        when the page loads: the tab a person looks at is never queued behind nine others.
        """
        return [where.select, self.models.change, *(control.change for control in controls)]

    def kind_choice(self, capability: type, **kwargs) -> KindChoice:
        """A choice among the session's models that have `capability`, following the session's models as they change."""
        def choices(request: gr.Request):
            names = self.studio.kinds_for(session_of(request), capability)
            return gr.Radio(choices=[(spec(name).title, name) for name in names])

        names = self.studio.kinds_for(LOCAL, capability)
        choice = KindChoice([(spec(name).title, name) for name in names], value=names[0], label="Model", **kwargs)
        self.models.change(choices, None, choice, api_visibility="private", **FREE)
        return choice

    def test_pictures(self, where: gr.Tab, button: gr.Button, pick, outputs: list) -> None:
        """Random test pictures for a tab's picture inputs: on its button, and on opening the tab while they are empty.

        `pick(request)` returns one value per output; the tab's live action then runs on them.
        """
        def on_arrival(given, request: gr.Request):
            return gr.skip() if given else pick(request=request)

        button.click(pick, None, outputs, api_visibility="private", **SAMPLING)
        where.select(on_arrival, outputs[0], outputs, api_visibility="private", **SAMPLING)

    def picture_action(self, where: gr.Tab, fn, inputs: list, outputs, api_name: str, controls: list) -> None:
        """An action on given pictures: live in the page as `controls` change, and an API endpoint.

        The page's event waits quietly while a picture is missing (one arrives a moment after
        the other when a pair is picked); the API's endpoint, on an invisible trigger, tells
        its caller. Both run the same handler. The trigger is laid out in the tab `where`
        (a component outside any tab would become a tab of its own).
        """
        triggers = [self.models.change, *(control.change for control in controls)]
        gr.on(triggers, quiet_until_given(gpu(fn)), inputs, outputs, api_name=f"{api_name}_live",
              api_visibility="private", **LIVE)
        with where:
            trigger = gr.Button(visible=False)
        trigger.click(gpu(fn), inputs, outputs, api_name=api_name, **LIVE)
