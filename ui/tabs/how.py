"""How it works: the maths, and every number of the ELBO for one picture, live as β and the reduction move."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.processing_utils import save_img_array_to_cache
from gradio.utils import get_upload_folder

from vae_core import explore
from vae_core.config import Limit
from vae_core.losses import REDUCTIONS, term_balance
from vae_core.models import PriorSampler

from .. import limits
from ..components import Number, digit_input, grid_image
from ..handler import SAMPLING, active, picture, random_test_pictures, user_facing
from ..page import Page
from ..session import Studio

LABEL = "How it works"  # the tab's name, as the page shows it

TEXT = (Path(__file__).parent / "how_it_works.md").read_text()
LATEX: list[dict[str, str | bool]] = [{"left": "$$", "right": "$$", "display": True},
                                      {"left": "$", "right": "$", "display": False}]


class HowTab:
    def __init__(self, studio: Studio):
        self.studio = studio

    @user_facing
    def explain(self, image, kind: str = "vae", label: int = 0, beta: float = 1.0, reduction: str = "sum",
                seed: int = 0, request: gr.Request = None):
        """One image through the active model: μ, σ, z per latent dimension, and how the loss splits.

        Returns the input beside its reconstruction from z, a per-dimension table, the KL bar
        chart's data, the loss terms in nats (JSON) and a short reading of them.

        Args:
            image: a picture of one digit.
            kind: which of the session's models: "vae" or "cvae".
            label: the class given to a CVAE (ignored by a VAE).
            beta: the KL weight β, 0–100, for the loss shown.
            reduction: "sum" or "mean" over pixels, to see how averaging shifts the balance.
            seed: the seed of ε in z = μ + σ·ε.
        """
        net = active(self.studio, request, PriorSampler, kind).model
        label = Limit(0, max(net.config.n_classes - 1, 0), whole=True).check("label", label)
        beta, seed = limits.check("beta", beta, "β"), limits.check("seed", seed)
        reduction = limits.check_choice("reduction", reduction, REDUCTIONS)
        parts = explore.loss_breakdown(net, picture(image, net), label, seed)
        terms = term_balance(parts["reconstruction"], parts["kl"], beta, reduction, parts["n_pixels"])
        width = len(str(len(parts["mu"])))
        dims = [f"z{j + 1:0{width}d}" for j in range(len(parts["mu"]))]  # z01…z10 sort as numbers do
        table = pd.DataFrame({"dim": dims, "μ": parts["mu"], "σ": parts["sigma"], "z": parts["z"],
                              "KL (nats)": parts["kl_per_dim"]}).round(4)
        # bars start at zero: a KL near 0 is the point (an unused dimension), not an axis artefact
        bars = gr.BarPlot(pd.DataFrame({"dim": dims, "KL (nats)": parts["kl_per_dim"]}),
                          y_lim=[0, max(max(parts["kl_per_dim"]) * 1.05, 0.1)])
        numbers = {"reconstruction_nats": parts["reconstruction"], "kl_nats": parts["kl"],
                   "likelihood": net.config.likelihood, "beta": beta, "reduction": reduction,
                   "n_pixels": parts["n_pixels"], **terms}
        return parts["picture"], table, bars, numbers, reading(net.config.kind, net.config.likelihood, parts, numbers)

    @user_facing
    def pick(self, request: gr.Request = None):
        """One test picture and its label (private)."""
        images, labels = random_test_pictures(self.studio, request, 1)
        return images[0], int(labels[0])

    def arrive(self, image, kind: str, label: int, beta: float, reduction: str, seed: int,
               request: gr.Request = None):
        """On opening the tab without a picture: a test digit and its explanation in one answer (private).

        One round trip instead of two (pick, then explain on the picture's change): this tab
        also typesets its maths, and its first picture would come last of all the tabs'.
        """
        if image:
            return gr.skip()
        picked, label = self.pick(request=request)
        path = save_img_array_to_cache(picked, get_upload_folder(), format="png")
        return path, label, *self.explain(path, kind, label, beta, reduction, seed, request=request)


def reading(kind: str, likelihood: str, parts: dict, terms: dict) -> str:  # terms: the JSON the tab shows
    """The numbers in two sentences."""
    active_dims = sum(k > 0.1 for k in parts["kl_per_dim"])
    return (f"**{kind.upper()}**, {likelihood} likelihood. Reconstruction {parts['reconstruction']:.2f} nats, "
            f"KL {parts['kl']:.2f} nats ({active_dims} of {len(parts['kl_per_dim'])} dimensions above 0.1 nats)."
            f"\n\nWith **{terms['reduction']}** reduction and β = {terms['beta']:g}: loss = "
            f"{terms['reconstruction_term']:.4g} + {terms['kl_term']:.4g} = {terms['loss']:.4g}; the KL is "
            f"**{terms['kl_share']:.1%}** of it (effective β against a summed reconstruction: "
            f"{terms['effective_beta']:g}).")


def build(page: Page) -> None:
    tab = HowTab(page.studio)
    with gr.Tab(LABEL, id="how", elem_id="tab-how") as where:
        with gr.Row():  # the outputs beside the controls that move them
            with gr.Column(scale=2):
                image = digit_input("Digit", "how-image")
                pick = gr.Button("A random test digit", elem_id="how-pick")
                with gr.Row():
                    kind = page.kind_choice(PriorSampler)
                    label = Number(0, label="Label (CVAE)", precision=0, minimum=0)
                beta = limits.slider("beta", "β (KL weight)", 1.0, step=0.1)
                reduction = gr.Radio(list(REDUCTIONS), value="sum", label="Reduction over pixels",
                                     elem_id="how-reduction")
                seed = limits.seed("Seed for ε")
            with gr.Column(scale=3):
                text = gr.Markdown(elem_id="how-text")
                shown = grid_image("Input · reconstruction from z", "how-picture", height=200)
                bars = gr.BarPlot(x="dim", y="KL (nats)", title="KL per latent dimension", sort=None,
                                  elem_id="how-bars", height=260)
        with gr.Row():
            table = gr.Dataframe(label="Per latent dimension", elem_id="how-table")
            terms = gr.JSON(label="Loss terms (nats per image)", elem_id="how-terms")
        gr.Markdown(TEXT, latex_delimiters=LATEX)
    inputs, outputs = [image, kind, label, beta, reduction, seed], [shown, table, bars, terms, text]
    page.picture_action(where, tab.explain, inputs, outputs, "explain", inputs)  # the numbers move as the controls do
    pick.click(tab.pick, None, [image, label], api_visibility="private", **SAMPLING)
    where.select(tab.arrive, inputs, [image, label, *outputs], api_visibility="private", **SAMPLING)
