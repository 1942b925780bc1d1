"""How the app answers a person: Playwright on Debian's Chromium against `python app.py`. One JSON line.

- in-page playground: input event → picture redrawn (decoded in the page), p50/p95, and the
  requests sent during a 100-step drag of its pad (the promise: none);
- a server-backed slider (Sample's temperature): change → new picture on screen, p50/p95,
  against Gradio's own floor measured in the same run (bench/floor_app.py: the app's own page
  plus a tab whose slider is wired the same way to a fixed picture);
- a drawing stroke → its reconstruction on screen;
- navigation: page load → each tab's first picture;
- an idle page: requests per minute.

    python bench/ui_latency.py [--trials 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from testing import ROOT
from testing.appserver import Server, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FIRST = {"Sample": "#sample-grid img", "Latent playground": "#playground .pg-picture",
         "Latent traverse": "#traverse-grid img", "Conditional digit": "#conditional-grid img",
         "Reconstruct": "#reconstruct-grid img", "Interpolate": "#interpolate-grid img",
         "Complete a digit": "#complete-grid img", "How it works": "#how-picture img",
         "Latent map": "#latent-map .lm-plot"}
PLAYGROUND = "document.querySelector('#playground [data-draws]')"


def stats(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "n": len(ms)}


def slider_to_picture(page, trials: int, slider_class: str = "limit-temperature", grid: str = "sample-grid"):
    """Arrow-key steps on a slider: ms from the key to a new picture's src in the page."""
    slider = page.locator(f".{slider_class} input[type=range]").first
    times = []
    for i in range(trials):
        before = page.evaluate(f"() => document.querySelector('#{grid} img')?.getAttribute('src') ?? null")
        slider.focus()
        started = time.perf_counter()
        slider.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_function(f"b => {{ const i = document.querySelector('#{grid} img');"
                               " return i && i.complete && i.getAttribute('src') !== b; }", arg=before, timeout=20_000)
        times.append(1000 * (time.perf_counter() - started))
    return times


def playground(page, trials: int) -> tuple[list[float], int]:
    """Input events dispatched in the page, timed there; then requests during a 100-step drag of the pad."""
    page.get_by_role("tab", name="Latent playground", exact=True).click()
    page.locator("#playground .pg-pad").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the tab's own loading calls (and their event stream) are over
    times = page.evaluate(f"""(trials) => {{
        const root = {PLAYGROUND}; const slider = root.querySelector('input[type=range]'); const out = [];
        for (let i = 0; i < trials; i++) {{
            slider.value = String(-2 + 4 * i / trials);
            const t0 = performance.now(); slider.dispatchEvent(new Event('input'));
            out.push(performance.now() - t0);
        }}
        return out; }}""", trials)
    requests = []

    def count(request) -> None:
        requests.append(request.url)

    page.on("request", count)
    pad = page.locator("#playground .pg-pad").bounding_box()
    page.mouse.move(pad["x"] + 10, pad["y"] + 10)
    page.mouse.down()
    page.mouse.move(pad["x"] + pad["width"] - 10, pad["y"] + pad["height"] - 10, steps=100)
    page.mouse.up()
    page.wait_for_timeout(500)
    page.remove_listener("request", count)
    return times, len(requests)


def strokes(page, trials: int) -> list[float]:
    """A short stroke on Reconstruct's pad: ms from the mouse-up to a new reconstruction in the page."""
    page.get_by_role("tab", name="Reconstruct", exact=True).click()
    page.locator("#reconstruct-grid img").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Draw").first.click()
    canvas = page.locator("#reconstruct-image-sketch canvas").first
    canvas.wait_for(state="visible", timeout=10_000)
    page.wait_for_timeout(300)
    box = canvas.bounding_box()
    times = []
    clear = page.locator("#reconstruct-image-sketch button[aria-label='Clear canvas']").first
    for i in range(trials):
        if clear.count():
            clear.click()  # each stroke is the whole drawing: a new digit, so a new reconstruction
            page.wait_for_timeout(300)
        before = page.evaluate("() => document.querySelector('#reconstruct-grid img')?.getAttribute('src') ?? null")
        x = box["x"] + box["width"] * 0.5
        page.mouse.move(x - 40 + 10 * (i % 8), box["y"] + box["height"] * 0.25)
        page.mouse.down()
        page.mouse.move(x + 30 - 5 * (i % 8), box["y"] + box["height"] * 0.75, steps=6)
        started = time.perf_counter()
        page.mouse.up()
        page.wait_for_function("b => { const i = document.querySelector('#reconstruct-grid img');"
                               " return i && i.complete && i.getAttribute('src') !== b; }", arg=before, timeout=20_000)
        times.append(1000 * (time.perf_counter() - started))
    return times


def first_pictures(browser, url: str) -> dict:
    """A fresh page per tab: seconds from navigation to that tab's first picture, clicking nothing but the tab."""
    seconds = {}
    for tab, selector in FIRST.items():
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(url)
        page.get_by_role("tab", name=tab, exact=True).click()
        page.locator(selector).first.wait_for(state="visible", timeout=60_000)
        seconds[tab] = round(time.perf_counter() - started, 2)
        page.close()
    return seconds


def idle_requests(browser, url: str, seconds: float) -> float:
    page = browser.new_page()
    page.goto(url)
    page.wait_for_timeout(5000)  # the page's own start-up calls are over
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(1000 * seconds)
    page.close()
    return round(len(requests) * 60 / seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=20)
    args = parser.parse_args()
    args_chromium = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "runs", Path(tmp) / "app.log")
        port = free_port()
        floor = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_app.py"), str(port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=args_chromium)
                first = first_pictures(browser, server.url)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_role("tab", name="Floor", exact=True).click()
                page.locator(".floor-temperature input[type=range]").first.wait_for(timeout=30_000)
                slider_to_picture(page, 2, "floor-temperature", "floor-grid")  # warm-up
                floor_ms = slider_to_picture(page, args.trials, "floor-temperature", "floor-grid")
                page.goto(server.url)
                page.get_by_role("tab", name="Sample", exact=True).click()
                page.locator("#sample-grid img").first.wait_for(timeout=30_000)
                slider_to_picture(page, 2)
                server_ms = slider_to_picture(page, args.trials)
                in_page_ms, drag_requests = playground(page, 100)
                stroke_ms = strokes(page, max(5, args.trials // 3))
                idle = idle_requests(browser, server.url, args.idle_seconds)
                browser.close()
        finally:
            floor.terminate()
            server.close()
    print(json.dumps({
        "in_page_playground": stats(in_page_ms), "requests_during_100_step_drag": drag_requests,
        "server_slider": stats(server_ms), "gradio_floor_slider": stats(floor_ms),
        "server_slider_over_floor_p50_ms": round(float(np.median(server_ms) - np.median(floor_ms)), 1),
        "stroke_to_reconstruction": stats(stroke_ms),
        "first_picture_s": first, "first_picture_max_s": max(first.values()),
        "idle_page_requests_per_minute": idle,
    }))


if __name__ == "__main__":
    main()
