"""The page in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright's
Python package) loads `/`, uploads a figure, asks two models side by side, and reads both
streamed answers (each what `Engine.generate` gives) and the figure-type bar charts; a built-in
example can be picked. A screenshot is kept under tests/serve/artifacts/ (or
$SCITUNE_TEST_ARTIFACTS)."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from scitune.data.corpus.vocab import FIGURE_TYPES

from tests.serve.conftest import ARTIFACTS, png_bytes
from tests.serve.test_api import expected

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "Which bar is the tallest?"


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        context.set_default_timeout(30_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        context.close()


def test_upload_a_figure_ask_two_models_and_read_the_answers(server, reference, browser_page, tmp_path):
    page, errors = browser_page
    figure = tmp_path / "uploaded-figure.png"
    figure.write_bytes(png_bytes(160, 120, color=(230, 120, 20)))
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#model-a option")).to_have_count(2)
    expect(page.locator("#compare")).to_be_checked()  # two models: side by side by default
    page.set_input_files("#file", str(figure))
    expect(page.locator("#preview")).to_be_visible()
    page.fill("#question", QUESTION)
    page.fill("#max-tokens", "8")
    page.click("#ask")
    expect(page.locator("#answer-a")).to_have_attribute("data-done", "true")
    expect(page.locator("#answer-b")).to_have_attribute("data-done", "true")
    expect(page.locator("#chart-a .row")).to_have_count(len(FIGURE_TYPES))
    expect(page.locator("#chart-b .row")).to_have_count(len(FIGURE_TYPES))
    expect(page.locator("#status")).to_contain_text("done")
    answer_a = page.locator("#answer-a").text_content()
    answer_b = page.locator("#answer-b").text_content()
    assert answer_a == expected(reference["tiny"], QUESTION, 8, figure)
    assert answer_b == expected(reference["merged"], QUESTION, 8, figure)
    assert page.locator("#panel-a .model-name").text_content() == "tiny"
    assert page.locator("#panel-b .model-name").text_content() == "lora"
    labels = page.locator("#chart-a .row .label").all_text_contents()
    assert labels == list(FIGURE_TYPES)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
    assert (ARTIFACTS / "serve-page.png").stat().st_size > 10_000
    assert not errors, errors  # no script errors, no content-security-policy violations


def test_pick_a_built_in_example_and_caption_it(server, browser_page):
    page, errors = browser_page
    page.goto(server.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#examples button")).to_have_count(len(FIGURE_TYPES))
    page.locator("#examples button").first.click()
    expect(page.locator("#examples button").first).to_have_attribute("aria-pressed", "true")
    assert page.locator("#preview").get_attribute("src").startswith("data:image/png;base64,")
    page.uncheck("#compare")
    expect(page.locator("#panel-b")).to_be_hidden()
    page.fill("#max-tokens", "6")
    page.click("#caption")
    expect(page.locator("#answer-a")).to_have_attribute("data-done", "true")
    expect(page.locator("#chart-a .row")).to_have_count(len(FIGURE_TYPES))
    assert not errors, errors
