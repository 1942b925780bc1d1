"""A person's visit: real Chromium on the real server. Screenshots go to test-artifacts/."""

import re
import shutil
from pathlib import Path

import pytest

from testing import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
TABS = ["Train", "Sample", "Latent traverse", "Conditional digit", "Reconstruct", "Interpolate", "Complete a digit",
        "How it works", "Latent map"]


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        page.get_by_text("VAE Studio").first.wait_for(timeout=30_000)
        yield page
        browser.close()


def open_tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()


def wait_for_image(page, elem_id, timeout=30_000):
    page.locator(f"#{elem_id} img").first.wait_for(state="visible", timeout=timeout)


def test_every_tab_opens_and_answers(page):
    from playwright.sync_api import expect

    # weights/… at first launch, runs/… once a test has trained (the server is shared)
    expect(page.locator("#active-models")).to_contain_text(re.compile(r"VAE from (weights|runs)/"), timeout=20_000)
    expect(page.locator("#active-models")).to_contain_text(re.compile(r"CVAE from (weights|runs)/"))
    for name in TABS:
        open_tab(page, name)
        page.wait_for_timeout(300)
        page.screenshot(path=ARTIFACTS / f"tab-{name.lower().replace(' ', '-')}.png")
    open_tab(page, "Sample")
    page.locator("#sample-btn").click()
    wait_for_image(page, "sample-grid")
    open_tab(page, "Conditional digit")
    expect(page.locator("#conditional-classes")).to_contain_text("Classes of the active CVAE: 0 = 0", timeout=15_000)
    expect(page.locator("#conditional-digit input[type=range]")).to_be_visible()
    page.locator("#conditional-btn").click()
    wait_for_image(page, "conditional-grid")
    open_tab(page, "Latent traverse")
    page.locator("#traverse-btn").click()
    wait_for_image(page, "traverse-grid")
    page.screenshot(path=ARTIFACTS / "traverse-result.png")


def test_draw_a_digit_and_reconstruct_it(page):
    open_tab(page, "Reconstruct")
    page.get_by_role("tab", name="Draw").first.click()
    page.locator("#reconstruct-image-sketch button[aria-label='Brush']").first.click()
    canvas = page.locator("#reconstruct-image-sketch canvas").first
    canvas.wait_for(state="visible", timeout=10_000)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy - 50)
    page.mouse.down()
    for dx, dy in [(30, -60), (30, -40), (30, 0), (0, 60), (0, 80)]:
        page.mouse.move(cx + dx - 30, cy + dy, steps=8)
    page.mouse.up()
    page.get_by_role("tab", name="Upload").first.click()
    wait_for_image(page, "reconstruct-image", timeout=15_000)
    page.locator("#reconstruct-btn").click()
    wait_for_image(page, "reconstruct-grid")
    page.screenshot(path=ARTIFACTS / "reconstruct-drawn.png")


def test_interpolate_two_test_digits_and_map_the_latent_space(page):
    open_tab(page, "Interpolate")
    page.locator("#pick-digits").click()
    wait_for_image(page, "image-a")
    page.locator("#interpolate-btn").click()
    wait_for_image(page, "interpolate-grid")
    page.screenshot(path=ARTIFACTS / "interpolate.png")
    open_tab(page, "Latent map")
    page.locator("#latent-map-btn").click()
    page.locator("#latent-scatter canvas, #latent-scatter svg").first.wait_for(timeout=30_000)
    page.screenshot(path=ARTIFACTS / "latent-map.png")


def test_complete_a_test_digit(page):
    open_tab(page, "Complete a digit")
    page.locator("#complete-pick").click()
    wait_for_image(page, "complete-image")
    page.locator("#complete-btn").click()
    wait_for_image(page, "complete-grid")
    page.screenshot(path=ARTIFACTS / "complete.png", full_page=True)


def test_how_it_works_explains_a_test_digit_and_follows_the_controls(page):
    from playwright.sync_api import expect

    open_tab(page, "How it works")
    expect(page.locator(".katex").first).to_be_visible(timeout=10_000)  # the maths is typeset, not raw LaTeX
    page.locator("#how-pick").click()
    expect(page.locator("#how-text")).to_contain_text("With sum reduction", timeout=30_000)
    wait_for_image(page, "how-picture")
    page.locator("#how-bars canvas, #how-bars svg").first.wait_for(timeout=30_000)
    page.locator("#how-reduction input[value=mean]").check()
    expect(page.locator("#how-text")).to_contain_text("effective β against a summed reconstruction: 784",
                                                      timeout=30_000)
    page.screenshot(path=ARTIFACTS / "how-it-works.png", full_page=True)


def pick(page, elem_id, option):
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_dataset_choice_shows_the_upload_box_and_frey_face_picks_its_likelihood(page):
    from playwright.sync_api import expect

    open_tab(page, "Train")
    expect(page.locator("#zip-upload")).to_be_hidden()
    pick(page, "dataset", "your pictures (.zip)")
    expect(page.locator("#zip-upload")).to_be_visible(timeout=10_000)
    pick(page, "dataset", "frey-face")
    expect(page.locator("#zip-upload")).to_be_hidden(timeout=10_000)
    expect(page.get_by_role("radio", name="gaussian")).to_be_checked(timeout=10_000)
    pick(page, "dataset", "mnist")  # back to the seed's settings for the training test
    expect(page.get_by_role("radio", name="mse")).to_be_checked(timeout=10_000)


def test_train_shows_plot_and_grid_then_stop(page):
    from playwright.sync_api import expect

    open_tab(page, "Train")
    set_number(page, "epochs", "100")
    set_number(page, "batch-size", "16")
    page.locator("#start").click()
    wait_for_image(page, "train-grid", timeout=60_000)
    page.locator("#loss-plot canvas, #loss-plot svg").first.wait_for(timeout=30_000)
    expect(page.locator("#run-status")).to_contain_text("offline subset")
    expect(page.locator("#run-progress")).to_contain_text("images/s")
    page.wait_for_timeout(2500)  # a few more epochs on the curves
    page.screenshot(path=ARTIFACTS / "training.png", full_page=True)
    page.locator("#stop").click()
    expect(page.locator("#stop-note")).to_contain_text("Stopping", timeout=15_000)
    expect(page.locator("#run-status")).to_contain_text("Stopped", timeout=30_000)
    expect(page.locator("#active-models")).to_contain_text("runs/", timeout=15_000)
    page.screenshot(path=ARTIFACTS / "training-stopped.png")


def set_number(page, elem_id, value):
    field = page.locator(f"#{elem_id} input[type=number]").first
    field.fill(value)
    field.press("Enter")
