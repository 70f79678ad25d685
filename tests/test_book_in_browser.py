"""The built book in a real browser (headless Debian Chromium, driven by Playwright).

Needs the book built first (``make test`` builds it before running the tests; or ``make
book``). Without a built book or without Chromium the tests are skipped, unless
``UNET_REQUIRE_BROWSER=1`` (CI sets it), which turns a skip into a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
CHAPTERS = ["01_classic_unet", "02_improved_unet", "03_attention_unet", "04_training",
            "05_visualizing_predictions", "06_performance", "07_brats_evaluation",
            "08_attention_maps", "09_losses_and_calibration"]
PAGES = ["intro", *CHAPTERS, "instructor", "data_card", "benchmarks"]
WITH_MATH = ["03_attention_unet", "06_performance", "07_brats_evaluation",
             "09_losses_and_calibration"]


def _missing() -> str | None:
    if not (HTML / "book" / "intro.html").is_file():
        return f"the book is not built ({HTML} is missing): run `make book` or `make test`"
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("UNET_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """Open a book page offline: every request that leaves the book's folder is blocked and
    recorded, and so are failed loads and JavaScript errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside, errors = [], []

    def block(route):
        outside.append(route.request.url)
        route.abort()

    def opener(name: str):
        page = context.new_page()
        page.route(re.compile(r"^(https?|wss?)://"), block)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}")
                if request.url.startswith("file://") else None)
        page.goto((HTML / "book" / f"{name}.html").as_uri(), wait_until="load")
        return page

    opener.outside, opener.errors = outside, errors
    yield opener
    context.close()


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_offline_without_errors(open_page, name):
    page = open_page(name)
    assert page.locator("main h1").count() >= 1
    text = page.locator("main").inner_text()
    assert "Traceback" not in text and "Error" not in page.locator(
        "main .output.traceback, main .output.error").all_inner_texts().__str__()
    assert not open_page.outside, f"{name} asked the network for {open_page.outside}"
    assert not open_page.errors, f"{name}: {open_page.errors}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_chapter_shows_its_figures(open_page, name):
    page = open_page(name)
    images = page.locator("main .cell_output img")
    assert images.count() >= 1, f"{name} shows no figure"
    sizes = images.evaluate_all("(imgs) => imgs.map((i) => i.complete && i.naturalWidth)")
    assert all(width and width > 10 for width in sizes), f"{name}: broken images {sizes}"


@pytest.mark.parametrize("name", PAGES)
def test_every_table_has_a_caption_a_screen_reader_announces(open_page, name):
    page = open_page(name)
    tables = page.locator("main table:not(.highlighttable)").evaluate_all(
        "(ts) => ts.map((t) => t.caption ? t.caption.textContent.trim() : '')")
    assert all(len(caption) > 20 for caption in tables), f"{name}: {tables}"
    # numbered on their page, after the chapter's number where it has one (exercise 7.2's way)
    chapter = f"{int(name[:2])}." if name[:2].isdigit() else ""
    assert [caption.split(" ", 2)[:2] for caption in tables] == [
        ["Table", f"{chapter}{count}"] for count in range(1, len(tables) + 1)], tables
    # the comments that carried them are gone from the page
    assert "<!-- table:" not in page.content()


@pytest.mark.parametrize("name", WITH_MATH)
def test_formulas_are_typeset_offline(open_page, name):
    page = open_page(name)
    page.wait_for_selector("mjx-container", timeout=20_000)
    assert page.locator("mjx-container").count() >= 3


def test_solutions_are_folded_away(open_page):
    page = open_page("06_performance")
    solutions = page.locator("main .cell.tag_hide-cell")
    assert solutions.count() >= 2
    assert not solutions.first.locator(".cell_input").is_visible()


def _slider_state(slider):
    return slider.evaluate("""(root) => ({
        frame: root.getAttribute('data-frame'),
        sources: Array.from(root.querySelectorAll('img.unet-slider-img')).map((i) => i.src),
        caption: root.querySelector('.unet-slider-caption').textContent,
        labels: Array.from(root.querySelectorAll('output')).map((o) => o.textContent),
        alts: Array.from(root.querySelectorAll('img.unet-slider-img')).map((i) => i.alt)})""")


def test_static_threshold_slider_rebinarizes_the_mask(open_page):
    page = open_page("05_visualizing_predictions")
    slider = page.locator(".unet-slider").first
    assert slider.get_attribute("data-ready") == "1"  # its script ran
    before = _slider_state(slider)
    assert before["labels"][1] == "0.50"
    threshold = slider.locator("input[type=range]").nth(1)
    threshold.focus()
    for _ in range(6):  # six steps of 0.05 to the right, as a keyboard user would
        page.keyboard.press("ArrowRight")
    after = _slider_state(slider)
    assert after["labels"][1] == "0.80"
    # a screen reader hears the value as shown, then the caption (a live region) it changed
    assert threshold.get_attribute("aria-valuetext") == "0.80"
    caption = slider.locator(".unet-slider-caption")
    assert caption.get_attribute("aria-live") == "polite"
    assert caption.get_attribute("id").startswith("unet-slider-")
    assert threshold.get_attribute("aria-describedby") == caption.get_attribute("id")
    assert after["sources"][3] != before["sources"][3], "the binarized mask did not change"
    assert after["sources"][:3] == before["sources"][:3]  # input, truth, probabilities stay
    assert "threshold 0.80" in after["caption"]
    # each picture's text alternative names its panel and the sliders that change it
    assert after["alts"][3] == f"binarized: slice {after['labels'][0]}, threshold 0.80"
    assert after["alts"][0] == f"FLAIR: slice {after['labels'][0]}" == before["alts"][0]
    # the other slider picks another slice: its ground truth changes
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("ArrowRight")
    moved = _slider_state(slider)
    assert moved["labels"][0] != after["labels"][0]
    assert moved["sources"][1] != after["sources"][1]


def test_static_attention_slider_switches_gates(open_page):
    page = open_page("08_attention_maps")
    slider = page.locator(".unet-slider").first
    before = _slider_state(slider)
    gate = slider.locator("input[type=range]").nth(1)
    gate.focus()
    page.keyboard.press("Home")  # from the full-resolution gate to the deepest
    after = _slider_state(slider)
    assert after["labels"][1] != before["labels"][1]
    assert after["sources"][2] != before["sources"][2]
    assert "gate at" in after["caption"]
    assert after["labels"][1].endswith("(deepest)") and before["labels"][1].endswith("(shallowest)")


def test_on_a_phone_figures_stay_readable_and_slider_panels_sit_two_abreast(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto((HTML / "book" / "04_training.html").as_uri(), wait_until="load")
        curves = page.locator("main .cell_output img[alt^='Learning curves']").first
        shown = curves.evaluate("(img) => ({width: img.getBoundingClientRect().width, "
                                "natural: img.naturalWidth, box: img.parentElement.scrollWidth "
                                "> img.parentElement.clientWidth})")
        # at the phone's 358 px the curves' labels were 4-5 px tall; now up to 760 px, scrolled
        assert shown["width"] >= min(shown["natural"], 760) - 1 and shown["box"], shown
        root = page.evaluate("[document.documentElement.scrollWidth, "
                             "document.documentElement.clientWidth]")
        assert root[0] <= root[1] + 1, f"the page itself scrolls sideways: {root}"
        # a line above the figure says it goes on past the screen's edge (scroll_hint.js)
        hint = curves.evaluate("(img) => img.previousElementSibling.textContent")
        assert "scroll sideways" in hint, hint

        page.goto((HTML / "book" / "05_visualizing_predictions.html").as_uri(),
                  wait_until="load")
        panels = page.locator(".unet-slider").first.locator("img.unet-slider-img")
        tops = [round(panels.nth(i).bounding_box()["y"]) for i in range(panels.count())]
        assert len(tops) == 4 and tops[0] == tops[1] and tops[2] == tops[3] != tops[0], tops
    finally:
        context.close()


@pytest.mark.parametrize("name", PAGES)
def test_no_page_is_wider_than_a_phone(browser, name):
    """At 390 px the page itself never scrolls sideways: long inline paths and calls break
    (the instructor page's `BraTS2020_training_data/content/data/...` made it 536 px wide);
    figures and tables scroll inside their own boxes."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto((HTML / "book" / f"{name}.html").as_uri(), wait_until="load")
        root = page.evaluate("[document.documentElement.scrollWidth, "
                             "document.documentElement.clientWidth]")
        assert root[0] <= root[1] + 1, f"{name} is {root[0]} px wide on a {root[1]} px phone"
    finally:
        context.close()


#: elements that may scroll sideways by design: formulas and the static sliders' frames
OVERFLOW_ALLOWED = "mjx-container, .unet-slider, .MathJax"


@pytest.mark.parametrize("name", PAGES)
def test_no_page_scrolls_sideways_at_1280_pixels(open_page, name):
    """Nothing is cut off at a laptop's width: neither the page nor any code block, output
    or table (an overflowing block hides its numbers behind a scroll bar)."""
    page = open_page(name)
    wide = page.evaluate("""(allowed) => {
        const found = [];
        const root = document.documentElement;
        if (root.scrollWidth > root.clientWidth + 1) found.push(`the page: ${root.scrollWidth}px`);
        for (const el of document.querySelectorAll('main pre, main table, main .cell_output img')) {
            if (el.closest(allowed)) continue;
            const box = el.closest('.highlight, .output, .table-wrapper, .cell_output') || el;
            const over = Math.max(el.scrollWidth - el.clientWidth,
                                  el.getBoundingClientRect().right - root.clientWidth);
            if (over > 1) found.push(`${el.tagName.toLowerCase()} by ${Math.round(over)}px: ` +
                                     el.textContent.trim().split('\\n')[0].slice(0, 70));
        }
        return found;
    }""", OVERFLOW_ALLOWED)
    assert not wide, f"{name} overflows at 1280 px: {wide}"


@pytest.mark.parametrize("name", PAGES)
def test_no_page_shows_a_build_path_or_links_to_a_placeholder(name):
    page = HTML / "book" / f"{name}.html"
    if not page.is_file():
        if os.environ.get("UNET_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{page} is missing: build the book first")
        pytest.skip(f"{page} is missing: build the book first")
    html = page.read_text()
    # the checkout's and the course home's absolute paths stay on the machine that built it
    for private in {str(ROOT), str(Path.home() / ".cache")}:
        assert private not in html, f"{name} shows the build path {private}"
    for placeholder in ("unet-course/unet-course", "mybinder.org", "colab.research.google"):
        assert placeholder not in html, f"{name} links to {placeholder} (launch buttons unset)"
    # a figure's text alternative is set in its cell's metadata (mystnb.image.alt); metadata
    # elsewhere leaves the screen reader the image's file name (chapter 6's pixels once did)
    named_by_file = re.findall(r'<img alt="([^"]*\.(?:png|svg|jpg))"', html)
    assert not named_by_file, f"{name}: figures without a text alternative: {named_by_file}"


def _contrast(foreground: str, background: str) -> float:
    """WCAG's contrast ratio of two CSS ``rgb(r, g, b)`` colours."""
    def luminance(colour: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_word_of_a_slider_is_readable_in_either_theme(open_page, theme):
    page = open_page("05_visualizing_predictions")
    page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
    colours = page.locator(".unet-slider").first.evaluate("""(root) => {
        const opaque = (e) => { for (; e; e = e.parentElement) {
            const colour = getComputedStyle(e).backgroundColor;
            if (colour !== 'rgba(0, 0, 0, 0)') return colour; } return 'rgb(255, 255, 255)'; };
        return Array.from(root.querySelectorAll('figcaption, div, span, output'))
            .filter((e) => e.textContent.trim() && !e.querySelector('div, span, figcaption'))
            .map((e) => [e.textContent.trim().slice(0, 30), getComputedStyle(e).color,
                         opaque(e)]); }""")
    assert len(colours) >= 5  # four panel titles, the caption, the slider names, the note
    low = [(text, round(_contrast(fg, bg), 2)) for text, fg, bg in colours
           if _contrast(fg, bg) < 4.5]  # WCAG AA for text
    assert not low, f"{theme}: {low}"


@pytest.mark.parametrize("name", ["07_brats_evaluation", "benchmarks"])
def test_folded_cells_are_named_by_the_words_they_show(open_page, name):
    page = open_page(name)
    toggles = page.locator("main summary, main button.toggle-button")
    assert toggles.count() >= 1
    for toggle in toggles.all():
        label = toggle.get_attribute("aria-label")
        # none is "Toggle hidden content": a summary is named by its visible paragraph, an
        # admonition's button by the admonition's title
        words = toggle.inner_text().strip() or toggle.evaluate(
            "(b) => b.closest('.admonition-title').textContent.trim()")
        assert words and label in (None, words), (label, words)


def test_the_keyboards_place_is_visible_on_every_control_it_reaches(open_page):
    page = open_page("05_visualizing_predictions")
    unseen, visited = [], 0
    for _ in range(200):  # every stop of the page, until the focus leaves it
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement === document.body"):
            break
        visited += 1
        shown = page.evaluate("""() => { const e = document.activeElement, c = getComputedStyle(e);
            const ring = c.outlineStyle !== 'none' && parseFloat(c.outlineWidth) >= 2;
            const shadow = /rgb\\(/.test(c.boxShadow) && !/0px 0px 0px 0px/.test(c.boxShadow)
                && !/rgba\\([^)]*, 0(\\.[0-4]\\d*)?\\)/.test(c.boxShadow);
            return [e.tagName + ' ' + (e.getAttribute('aria-label') || e.textContent).trim()
                    .slice(0, 40), ring || shadow]; }""")
        if not shown[1]:
            unseen.append(shown[0])
    assert visited >= 30 and not unseen, f"no visible focus on {unseen}"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_heading_links_are_readable(open_page, theme):
    page = open_page("05_visualizing_predictions")
    page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
    colour, background = page.evaluate("""() => [
        getComputedStyle(document.querySelector('a.headerlink')).color,
        getComputedStyle(document.body).backgroundColor]""")
    assert _contrast(colour, background) >= 4.5, (colour, background)
