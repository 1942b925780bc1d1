"""Publishing a checkpoint folder to the Hugging Face Hub: `python -m vae_core push FOLDER --repo NAME`.

The folder is checked as any checkpoint is before a byte leaves the machine, and goes up in
one commit with its model card (written from config.json where the folder has none, as the
shipped weights do not). Without a token or a network it says so in one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from .card import model_card
from .checkpoint import CARD, checkpoint_from_files, read_folder
from .network import reachable


class HubError(Exception):
    """Publishing could not happen; the message says why in one line."""


def push(folder: str | os.PathLike, repo: str, private: bool = False, token: str | None = None) -> str:
    """Upload the checkpoint folder to the model repo `repo` (created if new); the repo's URL."""
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd, HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    files = read_folder(folder)
    checkpoint = checkpoint_from_files(files, folder.name, path=folder)  # nothing unchecked is published
    token = token or huggingface_hub.get_token()
    if not token:
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then push again")
    endpoint = urlparse(constants.ENDPOINT)
    if not reachable(endpoint.hostname or "", timeout=5.0, port=endpoint.port or 443):
        raise HubError(f"cannot reach {endpoint.hostname} (no network?); nothing was published")
    files.setdefault(CARD, model_card({**checkpoint.info, "model": checkpoint.model.config.to_dict()}).encode())
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, private=private, exist_ok=True)
        api.create_commit(repo, [CommitOperationAdd(name, blob) for name, blob in files.items()],
                          commit_message=f"VAE Studio checkpoint ({checkpoint.info.get('epochs_trained', '?')} epochs)")
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", "?")
        reason = "the token was refused" if status in (401, 403) else f"the Hub answered {status}"
        raise HubError(f"could not publish to {repo}: {reason}") from None
    except (OSError, ValueError) as exc:  # connection failures, a malformed repo name
        raise HubError(f"could not publish to {repo}: {str(exc).splitlines()[0][:200]}") from None
    return str(url)
