"""Gradio's REST API called by hand, the way a script without gradio_client (or an attacker) would:
the payload goes out exactly as written, with no client-side checks or uploads."""

from __future__ import annotations

import json
import urllib.request


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
