"""One module per tab; each `build(page)` lays its tab out and wires its own handlers.

To add a tab: a module here with its `LABEL` and `build(page: Page) -> None` (its handlers
are methods of a small class holding the studio, so that Gradio sees their parameter names
and their `gr.Request`), then list it in `TABS`, in the order the tabs appear.
"""

from . import (
    complete,
    conditional,
    how,
    interpolate,
    latent_map,
    playground,
    reconstruct,
    runs,
    sample,
    train,
    traverse,
)

TABS = (train, runs, sample, playground, traverse, conditional, reconstruct, interpolate, complete, how, latent_map)
