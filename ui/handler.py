"""What every handler needs: plain errors, the session it serves, that session's models, the user's picture.

No client ever sees a traceback, an object's repr or a server path: our own plain-message
exceptions become `gr.Error`, anything else a logged, generic one.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
from gradio.utils import get_upload_folder

from vae_core.checkpoint import CheckpointError
from vae_core.datasets import DataError
from vae_core.images import ImageError, prepare_upload, sketch_ink
from vae_core.models import Model, PriorSampler

from .catalogue import ActiveModel, M
from .session import Studio

if TYPE_CHECKING:
    import torch

log = logging.getLogger("vae_studio")
PLAIN = (ImageError, DataError, CheckpointError, ValueError)
LOCAL = "local"  # the session of a call from Python in this process (benchmarks), which has no request
# Picture endpoints share one slot group sized to the CPU: more parallel model calls than
# cores only make each one slower. Following a run, the timer and Stop take no slot: they
# mostly wait, and must never queue behind sampling.
SAMPLING: dict[str, Any] = {"concurrency_id": "sampling", "concurrency_limit": max(2, os.cpu_count() or 2)}
FREE: dict[str, Any] = {"concurrency_limit": None}
LIVE: dict[str, Any] = {**SAMPLING, "trigger_mode": "always_last"}  # an action that re-runs as its controls move

try:  # On a Hugging Face Space with ZeroGPU, GPU work must run inside spaces.GPU calls.
    import spaces

    def gpu(fn):
        return spaces.GPU(duration=60)(fn)
except ImportError:
    def gpu(fn):
        return fn


class Refusal(gr.Error):
    """A plain refusal of bad input: shown to the client, not printed to the server's log as a traceback.

    Bad input is not a fault of the server; only unexpected failures leave a traceback (logged
    by `user_facing`), so that the log stays a list of real problems.
    """

    def __init__(self, message: str):
        super().__init__(message, print_exception=False)


def user_facing(fn):
    """Turn our own plain-message exceptions into gr.Error, and anything else into a logged, generic one."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except PLAIN as exc:
            raise Refusal(str(exc)) from None
        except Exception:
            log.exception("unexpected failure in %s", fn.__name__)
            raise Refusal("Something went wrong on the server (it has been logged). Please try again.") from None

    return wrapper


def not_an_agent_tool(fn):
    """The endpoint stays an API endpoint but is not offered to agents in the MCP server's tool list.

    Gradio lists every API function as a tool unless it is marked as another MCP kind
    (`_mcp_type`, which `gr.mcp.resource` and `gr.mcp.prompt` set). A generator stays one.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            yield from fn(*args, **kwargs)
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
    wrapper._mcp_type = "not a tool"
    return wrapper


def withhold_from_agents(demo: gr.Blocks) -> None:
    """After launch, take the endpoints marked by `not_an_agent_tool` out of the MCP server entirely.

    The mark keeps them out of the protocol's tool list, but Gradio's MCP server answers its JSON
    schema (`/gradio_api/mcp/schema`) and `tools/call` from `tool_to_endpoint`, which holds every
    API endpoint: pruned here, an agent can neither see nor call them (API clients still can).
    """
    server = demo.mcp_server_obj
    if server is None:
        return
    for tool, endpoint in list(server.tool_to_endpoint.items()):
        block_fn = server.get_block_fn_from_endpoint_name(endpoint)
        if getattr(getattr(block_fn, "fn", None), "_mcp_type", "tool") != "tool":
            del server.tool_to_endpoint[tool]


def session_of(request: gr.Request | None) -> str:
    """The browser session (or gradio_client) a request comes from: its models are its own."""
    return getattr(request, "session_hash", None) or LOCAL


def active(studio: Studio, request: gr.Request | None, capability: type[M], kind: str | None = None) -> ActiveModel[M]:
    """This session's model that can do `capability` (its model of `kind`, if named; see `Studio.model_for`),
    after telling the session once if its own models were dropped."""
    return studio.model_for(_told(studio, request), capability, kind)


def companion(studio: Studio, request: gr.Request | None, name: str) -> ActiveModel:
    """A model a tab uses by name beside the session's own (`KindSpec.companions`: the 2-D VAE, the baseline)."""
    return studio.active(_told(studio, request), name)


def _told(studio: Studio, request: gr.Request | None) -> str:
    """The request's session, told once if its own models were dropped."""
    session = session_of(request)
    notice = studio.notice(session)
    if notice:
        gr.Warning(notice)
    return session


NOT_AN_UPLOAD = "That file is not an upload to this server: upload it through the page or gradio_client's handle_file."


def uploaded(path) -> str:
    """The path of a file a client uploaded: it must lie inside Gradio's upload folder, links resolved.

    Every file input goes through here before anything opens it. A payload naming any other
    path (a raw API call can) is refused with one sentence, the same whether or not that
    file exists, so an answer never tells what the server holds.
    """
    folder = Path(get_upload_folder()).resolve()
    try:
        real = Path(str(path)).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise Refusal(NOT_AN_UPLOAD) from None
    if not real.is_relative_to(folder) or not real.is_file():
        raise Refusal(NOT_AN_UPLOAD)
    return str(real)


class MissingPicture(Refusal):
    """No picture given yet: an error for an API caller, a quiet wait for the page (see `Page.picture_action`)."""


def quiet_until_given(fn):
    """The page's variant of a picture action: until its pictures are given it leaves its outputs as they are."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MissingPicture:
            return gr.skip()

    return wrapper


def picture(path, model: Model, label: str = "image"):
    """The uploaded or drawn picture as `model`'s training pictures were prepared."""
    if not path:
        raise MissingPicture(f"Upload or draw a picture first ({label} is empty)")
    return prepare_upload(uploaded(path), model.config)


@user_facing
def sketch_to_image(sketch) -> np.ndarray | None:
    """A Sketchpad drawing → the grey picture that the upload box then holds (private)."""
    ink = sketch_ink((sketch or {}).get("composite"))
    return gr.skip() if ink is None else ink


TEST_POINTS = 500  # test pictures the latent map shows, and that order the playground's dimensions


def first_test_pictures(studio: Studio, model: ActiveModel) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first `TEST_POINTS` test pictures of the model's data as tensors, their labels, and the test set's size."""
    data = studio.data.test_data(model)
    x, labels = data.tensors("test", limit=TEST_POINTS)
    return x, labels, len(data.test_labels)


def random_test_pictures(studio: Studio, request: gr.Request | None, count: int,
                         capability: type = PriorSampler) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct test pictures (uint8, as stored) of the data the session's model was trained on, and labels."""
    data = studio.data.test_data(active(studio, request, capability))
    idx = np.random.default_rng().choice(len(data.test_images), count, replace=False)
    return data.test_images[idx, 0], data.test_labels[idx]
