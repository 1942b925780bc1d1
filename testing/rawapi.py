"""Gradio's REST API called by hand, the way a script without gradio_client (or an attacker) would:
the payload goes out exactly as written, with no client-side checks or uploads."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path


def call(url: str, api_name: str, data: list, timeout: float = 60) -> tuple[str, object]:
    """POST the payload, then read the event stream: ("complete", outputs) or ("error", message)."""
    request = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event_id}", timeout=timeout) as response:
        kind = None
        for line in response.read().decode().splitlines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: ") and kind in ("complete", "error"):
                return kind, json.loads(line[len("data: "):])
    raise RuntimeError("the event stream ended without a result")


def upload(url: str, path: str) -> str:
    """Upload a file the way the page does; the server's path for it."""
    import httpx

    with open(path, "rb") as f:
        response = httpx.post(f"{url}/gradio_api/upload", files={"files": (Path(path).name, f)}, timeout=60)
    response.raise_for_status()
    return response.json()[0]


def join(url: str, fn_index: int, data: list, timeout: float = 60) -> dict:
    """Queue an event by its index, as the page does for events without an API name; its final message."""
    import httpx

    session = uuid.uuid4().hex
    httpx.post(f"{url}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                     "event_data": None, "trigger_id": None},
               timeout=timeout).raise_for_status()
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                message = json.loads(line[len("data: "):])
                if message.get("msg") == "process_completed":
                    return message
    raise RuntimeError("the event stream ended without a result")


def fn_index(url: str, fn_name: str) -> int:
    """The index of the (private) event whose handler is `fn_name`, read from the page's own config."""
    with urllib.request.urlopen(f"{url}/config") as response:
        config = json.load(response)
    for dep in config["dependencies"]:
        if dep.get("api_name") == fn_name:
            return dep["id"]
    raise LookupError(fn_name)
