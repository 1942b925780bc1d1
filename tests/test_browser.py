"""A person's visit: real Chromium on the real server. Screenshots go to test-artifacts/."""

import re
import shutil
from pathlib import Path

import pytest

import ui.tabs
from testing import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = [pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
              pytest.mark.slow]
TABS = [tab.LABEL for tab in ui.tabs.TABS]  # the page must show every tab the code lists, in its order
# each exploring tab and the picture it shows on arrival, without a click
FIRST_PICTURES = {"Sample": "sample-grid", "Latent traverse": "traverse-grid",
                  "Conditional digit": "conditional-grid", "Reconstruct": "reconstruct-grid",
                  "Interpolate": "interpolate-grid", "Complete a digit": "complete-grid", "How it works": "how-picture"}
IN_PAGE = {"Latent playground": "#playground .pg-picture", "Latent map": "#latent-map .lm-plot"}  # drawn in the page


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


def src(page, elem_id) -> str | None:
    image = page.locator(f"#{elem_id} img").first
    return image.get_attribute("src") if image.count() else None


def changed(page, elem_id, before, timeout=20_000) -> str:
    """Wait until the picture in `elem_id` is a new one; its new address."""
    page.wait_for_function("([id, before]) => { const img = document.querySelector(`#${id} img`); "
                           "return img && img.getAttribute('src') && img.getAttribute('src') !== before; }",
                           arg=[elem_id, before], timeout=timeout)
    return src(page, elem_id)


def test_every_tab_shows_a_picture_on_arrival_without_a_click(page):
    from playwright.sync_api import expect

    # weights/… at first launch, runs/… once a test has trained (the server is shared)
    expect(page.locator("#active-models")).to_contain_text(re.compile(r"VAE from (weights|runs)/"), timeout=20_000)
    for name in TABS:
        open_tab(page, name)
        if name in FIRST_PICTURES:
            wait_for_image(page, FIRST_PICTURES[name], timeout=20_000)
        if name in IN_PAGE:
            page.locator(IN_PAGE[name]).wait_for(timeout=20_000)
        page.wait_for_timeout(300)
        page.screenshot(path=ARTIFACTS / f"tab-{name.lower().replace(' ', '-')}.png")


def test_a_slider_move_changes_its_picture_without_a_button(page):
    open_tab(page, "Sample")
    wait_for_image(page, "sample-grid")
    before = src(page, "sample-grid")
    page.locator("#sample-grid").scroll_into_view_if_needed()
    temperature = page.locator(".limit-temperature input[type=range]").first
    temperature.focus()
    temperature.press("ArrowLeft")  # one step: a change event, as a drag gives many
    changed(page, "sample-grid", before)
    open_tab(page, "Conditional digit")
    wait_for_image(page, "conditional-grid")
    before = src(page, "conditional-grid")
    page.locator("#conditional-digit").get_by_text("7", exact=True).click()  # the digit is a button
    changed(page, "conditional-grid", before)
    page.screenshot(path=ARTIFACTS / "conditional-7.png")


PLAYGROUND = "document.querySelector('#playground [data-draws]')"  # the playground's root, once it has drawn


def playground_source(server, source: str):
    from vae_core.checkpoint import load_checkpoint

    folder = ROOT / source if source.startswith("weights/") else server.runs_dir / source.split("/", 1)[1]
    return load_checkpoint(folder).model


def test_the_playground_decodes_in_the_page_with_no_request_and_matches_the_server(page, server):
    import numpy as np

    from vae_core.browser import decode

    open_tab(page, "Latent playground")
    page.locator("#playground .pg-pad").wait_for(timeout=20_000)
    page.wait_for_timeout(1500)  # the tab's own loading calls (and their event stream) are over
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    pad = page.locator("#playground .pg-pad").bounding_box()
    draws = int(page.evaluate(f"() => {PLAYGROUND}.dataset.draws"))
    page.mouse.move(pad["x"] + 20, pad["y"] + 20)
    page.mouse.down()
    page.mouse.move(pad["x"] + pad["width"] - 20, pad["y"] + pad["height"] - 20, steps=100)
    page.mouse.up()
    assert int(page.evaluate(f"() => {PLAYGROUND}.dataset.draws")) - draws >= 90  # a redraw on every move
    assert requests == []  # and not one request to the server
    last, source = page.evaluate(f"() => [{PLAYGROUND}.playground.last, {PLAYGROUND}.playground.spec.source]")
    assert max(abs(v) for v in last["code"]) > 1  # the drag moved the code
    server_pixels = decode(playground_source(server, source), last["code"], last["label"]).reshape(-1)
    assert np.abs(np.array(last["pixels"]) - server_pixels).max() <= 1e-3
    page.screenshot(path=ARTIFACTS / "playground.png")


def test_draw_a_digit_and_its_reconstruction_follows_the_stroke(page):
    open_tab(page, "Reconstruct")
    wait_for_image(page, "reconstruct-grid")
    before = src(page, "reconstruct-grid")
    page.get_by_role("tab", name="Draw").first.click()
    canvas = page.locator("#reconstruct-image-sketch canvas").first
    canvas.wait_for(state="visible", timeout=10_000)
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy - 50)  # no click on the brush first: it is the tool from the start
    page.mouse.down()
    for dx, dy in [(30, -60), (30, -40), (30, 0), (0, 60), (0, 80)]:
        page.mouse.move(cx + dx - 30, cy + dy, steps=8)
    page.mouse.up()
    changed(page, "reconstruct-grid", before)  # the stroke's end ran the reconstruction, no button
    page.get_by_role("tab", name="Upload").first.click()
    page.screenshot(path=ARTIFACTS / "reconstruct-drawn.png")


def test_interpolate_two_test_digits(page):
    open_tab(page, "Interpolate")
    wait_for_image(page, "interpolate-grid")  # two test digits on arrival, and their path
    before = src(page, "interpolate-grid")
    page.locator("#pick-digits").click()
    changed(page, "interpolate-grid", before)  # a new pair, a new path, no other button
    page.screenshot(path=ARTIFACTS / "interpolate.png")


def test_complete_a_test_digit_as_the_quadrants_are_toggled(page):
    open_tab(page, "Complete a digit")
    wait_for_image(page, "complete-grid")
    before = src(page, "complete-grid")
    page.locator("#complete-given").get_by_text("bottom-left", exact=True).click()  # a second quadrant given
    changed(page, "complete-grid", before)
    page.screenshot(path=ARTIFACTS / "complete.png", full_page=True)


MAP = "document.querySelector('#latent-map .lm-plot').parentElement.parentElement.latentMap"


def test_the_latent_map_shows_a_clicked_point_and_a_given_digits_posterior(page, digit_png):
    from playwright.sync_api import expect

    open_tab(page, "Latent map")
    plot = page.locator("#latent-map .lm-plot")
    plot.wait_for(timeout=20_000)
    expect(page.locator("#latent-map-text")).to_contain_text("z₁, z₂")  # the 2-D VAE: its own axes
    # click where the first test point is drawn: its picture and its reconstruction show
    px, py = page.evaluate(f"() => {{ const v = {MAP}; const s = v.plot.getBoundingClientRect().width / v.plot.width;"
                           " return [(36 + (v.x[0] + v.span) / (2 * v.span) * 480) * s,"
                           " (36 + (v.span - v.y[0]) / (2 * v.span) * 480) * s]; }")
    plot.click(position={"x": px, "y": py})
    assert page.evaluate(f"() => {MAP}.picked") == 0
    expect(page.locator("#latent-map .lm-caption")).to_contain_text("Test picture 1")
    lit = page.evaluate("() => { const c = document.querySelector('#latent-map .lm-digit').getContext('2d');"
                        " return c.getImageData(0, 0, 28, 28).data.filter((v, i) => i % 4 == 0 && v > 128).length; }")
    assert lit > 20  # the digit is drawn, not an empty box
    page.locator("#latent-map-image input[type=file]").first.set_input_files(digit_png[0])
    page.wait_for_function(f"() => {MAP}.marker !== null", timeout=20_000)
    marker = page.evaluate(f"() => {MAP}.marker")
    assert marker["rx"] > 0 and abs(marker["x"]) < 10
    page.screenshot(path=ARTIFACTS / "latent-map.png", full_page=True)


def test_the_header_picks_the_seeds_exact_vae_and_restores_the_pretrained_one(page):
    from playwright.sync_api import expect

    open_tab(page, "Sample")
    wait_for_image(page, "sample-grid")
    before = src(page, "sample-grid")
    pick(page, "pick-vae", "weights/vae")
    expect(page.locator("#active-models")).to_contain_text("VAE from weights/vae:", timeout=15_000)
    changed(page, "sample-grid", before)  # every tab redraws with the picked model
    page.screenshot(path=ARTIFACTS / "picker.png")
    page.locator("#restore-pretrained").click()
    expect(page.locator("#active-models")).to_contain_text("VAE from weights/vae-sharp", timeout=15_000)
    expect(page.locator("#pick-vae input")).to_have_value("weights/vae-sharp", timeout=15_000)


def test_how_it_works_explains_a_test_digit_and_follows_the_controls(page):
    from playwright.sync_api import expect

    open_tab(page, "How it works")
    expect(page.locator(".katex").first).to_be_visible(timeout=10_000)  # the maths is typeset, not raw LaTeX
    expect(page.locator("#how-text")).to_contain_text("With sum reduction", timeout=30_000)  # on arrival
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
    stranger = page.context.browser.new_page()  # another visitor, whose page was open before the run began
    stranger.goto(page.url)
    stranger.get_by_text("VAE Studio").first.wait_for(timeout=30_000)
    set_number(page, "epochs", "100")
    set_number(page, "batch-size", "16")
    page.locator("#start").click()
    wait_for_image(page, "train-grid", timeout=60_000)
    page.locator("#loss-plot canvas, #loss-plot svg").first.wait_for(timeout=30_000)
    expect(page.locator("#run-status")).to_contain_text("offline subset")
    expect(page.locator("#run-progress")).to_contain_text("images/s")
    stranger.locator("#stop").click()  # is told whose run it is, and from then on sees it
    expect(stranger.locator("#stop-note")).to_contain_text("started in another page", timeout=15_000)
    expect(stranger.locator("#run-status")).to_contain_text("Someone else's run", timeout=15_000)
    stranger.close()
    page.wait_for_timeout(2500)  # a few more epochs on the curves; the stranger's Stop stopped nothing
    expect(page.locator("#run-status")).not_to_contain_text("Stopped")
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


def test_the_runs_view_compares_two_runs_and_hands_out_a_film(page):
    """β = 1 against β = 4: both curves, the β row highlighted, both final grids, a film to download."""
    from playwright.sync_api import expect

    open_tab(page, "Train")
    set_number(page, "epochs", "3")
    set_number(page, "batch-size", "128")
    for beta in ("1", "4"):
        set_number(page, "beta", beta)
        page.locator("#start").click()
        expect(page.locator("#run-status")).not_to_contain_text("Done", timeout=30_000)  # the last run's word goes
        expect(page.locator("#run-status")).to_contain_text("Done", timeout=120_000)
        expect(page.locator("#run-progress")).to_contain_text("3/3 epochs done", timeout=10_000)
    open_tab(page, "Runs")
    expect(page.locator("#runs-note")).to_contain_text("newest first", timeout=20_000)
    table = page.locator("#runs-table table")
    table.wait_for(timeout=10_000)
    assert table.locator("thead th").count() >= 3  # a label column and one per run (a stopped run may add one)
    differs = table.locator("tr.differs th")
    expect(differs.filter(has_text="β")).to_have_count(1)
    expect(table.locator("tr:not(.differs) th").filter(has_text="likelihood")).to_have_count(1)
    row = table.locator("tr", has=page.locator("th", has_text="β"))
    expect(row.locator("td").first).to_have_text("4")  # newest first
    expect(row.locator("td").nth(1)).to_have_text("1")
    assert page.locator("#runs-gallery img").count() >= 2
    runs = table.locator("thead th").count() - 1
    chart = page.locator("#runs-plot svg.runs-chart")
    expect(chart.locator("g.run polyline")).to_have_count(runs)  # one line a run, every run drawn
    expect(chart).to_contain_text("β 4")  # the legend names what sets the runs apart
    page.get_by_role("radio", name="KL (test)").check()
    expect(chart).to_contain_text("KL (test) (nats per image)", timeout=10_000)
    expect(chart.locator("g.run polyline")).to_have_count(runs)
    page.get_by_role("radio", name="test loss").check()
    expect(chart).to_contain_text("test loss (nats per image)", timeout=10_000)
    page.screenshot(path=ARTIFACTS / "runs.png", full_page=True)
    page.locator("#runs-film").click()
    expect(page.locator("#runs-download")).to_contain_text(".gif", timeout=20_000)
    # the β = 1 run (not the newest) made active: the header follows, and the picker stays on it
    page.locator("#runs-pick input").first.click()
    page.get_by_role("option", name=re.compile(r"^β 1 · ")).first.click()
    page.locator("#runs-use").click()
    expect(page.locator("#active-models")).to_contain_text("runs/", timeout=15_000)
    page.wait_for_timeout(1500)  # the tab redraws when the session's models change
    expect(page.locator("#runs-pick input").first).to_have_value(re.compile(r"^β 1 · "))


def test_a_conv_models_playground_decodes_on_the_server_and_says_so(page):
    """Last: it makes this page's VAE a conv one. The page cannot run a conv decoder, so each move asks the server."""
    from playwright.sync_api import expect

    open_tab(page, "Train")
    page.get_by_role("radio", name="conv").check()
    set_number(page, "epochs", "1")
    set_number(page, "batch-size", "128")
    page.locator("#start").click()
    expect(page.locator("#run-status")).to_contain_text("Done", timeout=120_000)
    open_tab(page, "Latent playground")
    expect(page.locator("#playground")).to_contain_text("convolutional", timeout=30_000)
    page.locator("#playground input[type=range]").first.fill("2")  # an input event, as a drag gives
    page.locator("#playground-server img").first.wait_for(state="visible", timeout=30_000)
    page.screenshot(path=ARTIFACTS / "playground-conv.png")
