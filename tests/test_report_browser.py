"""The HTML report renders in a real headless Chromium: every embedded figure decodes, the expected figures and
the results table are there, and a screenshot is not blank. Reuses the tiny runs shared with test_experiments
and test_analysis (launched once per session)."""

from __future__ import annotations


import pytest

from tests.helpers import headless_chromium, needs_chromium

from experiments.spec import load_spec

pytestmark = needs_chromium()


@pytest.fixture(scope="module")
def report(tmp_path_factory, model_cache):
    from tests.test_analysis import tiny_report

    return tiny_report(tmp_path_factory.getbasetemp() / "tiny_fig3", model_cache)[1]


@pytest.fixture
def browser(tmp_path):
    driver = headless_chromium(tmp_path / "profile", window="1280,2400")
    yield driver
    driver.quit()


def test_report_renders_with_every_figure(report, browser, tmp_path):
    from PIL import Image

    browser.get((report / "report.html").resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.alt]);")
    figures = load_spec("fig3_entropy").figures
    assert [alt for *_, alt in images] == list(figures)
    assert all(done and width > 0 and height > 0 for done, width, height, _ in images), images
    assert browser.execute_script("return document.querySelectorAll('table.paper').length") == 1
    header = browser.execute_script("return Array.from(document.querySelectorAll('table.paper th'))"
                                    ".map(th => th.textContent);")
    assert header[:4] == ["method", "easy", "hard", "Avg"] and "Δ Avg vs GRPO" in header
    assert "Paper Figure 3" in browser.execute_script("return document.body.innerText")

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert img.size[0] >= 1000 and colours is not None and len(colours) > 50  # not a blank page
