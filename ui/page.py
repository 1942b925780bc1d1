"""What every tab's `build` receives: the studio, and the page's shared pieces."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .handler import LIVE, gpu, quiet_until_given
from .session import Studio


@dataclass(frozen=True)
class Page:
    studio: Studio
    models: gr.Markdown  # the header's list of this session's active models
    demo: gr.Blocks  # for its `load` event: every exploring tab shows a picture when the page opens

    def live(self, *controls: gr.components.Component) -> list:
        """The triggers of a cheap action: the page opening, a change of the session's models, and of its controls.

        Used with `trigger_mode="always_last"`, so a fast drag runs the latest value once
        the call in flight returns, never a backlog.
        """
        return [self.demo.load, self.models.change, *(control.change for control in controls)]

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
