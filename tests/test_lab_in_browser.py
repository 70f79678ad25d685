"""The course in JupyterLab, as a teacher's lab runs it: a real JupyterLab server, a real
browser (headless Debian Chromium via Playwright), chapter 5 run from top to bottom, and its
live ipywidgets slider moved by the keyboard — the picture must change.

Needs JupyterLab (the ``course``/``book`` extras), Chromium, and the quick course models in
the course home (``make notebooks`` or ``make book`` trains them; ``make test`` runs the
notebooks first). Without them the test is skipped, unless ``UNET_REQUIRE_BROWSER=1`` (CI),
which turns a skip into a failure. The server runs on 127.0.0.1 with a random token and
temporary config/runtime folders, and is stopped also when the test fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_book_in_browser import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "05_visualizing_predictions.ipynb"


def _missing() -> str | None:
    if not Path(CHROMIUM).is_file():
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import jupyterlab  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[test,book]')"
    home = Path(os.environ.get("UNET_COURSE_HOME", ROOT / ".course"))
    if not list((home / "runs" / "course").glob("improved-quick-*/last.pt")):
        return f"no quick course models in {home}: run `make notebooks` first"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_server(tmp_path):
    """A JupyterLab server on the book folder; yields its base URL and token."""
    reason = _missing()
    if reason:
        if os.environ.get("UNET_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path / "book"
    shutil.copytree(ROOT / "book", work, ignore=shutil.ignore_patterns("_build", ".ipynb*"))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "UNET_COURSE_HOME": os.environ.get("UNET_COURSE_HOME", str(ROOT / ".course")),
           "UNET_COURSE_SCALE": "quick"}
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.open_browser=False", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _picture(page) -> str:
    """The src of the live slider's output image (a base64 PNG), or '' while there is none."""
    return page.evaluate("""() => {
        const box = document.querySelector('.jp-OutputArea .widget-interact .jp-OutputArea img')
                 || document.querySelector('.widget-interact img');
        return box ? box.src : '';
    }""")


def test_the_live_threshold_slider_redraws_the_prediction_in_jupyterlab(lab_server):
    from playwright.sync_api import sync_playwright

    base, token = lab_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}", wait_until="load")
            page.wait_for_function("() => window.jupyterapp && document.querySelector("
                                   "'.jp-Notebook')", timeout=120_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar",
                                   timeout=60_000)
            time.sleep(3)  # let the kernel start
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".widget-interact .widget-slider", timeout=300_000)
            page.wait_for_function("() => document.querySelector('.widget-interact img')",
                                   timeout=120_000)
            before = _picture(page)
            assert before.startswith("data:image/png")
            threshold = page.locator(".widget-interact .widget-slider").nth(1)
            threshold.locator(".noUi-handle, .slider-handle, [role=slider]").first.focus()
            for _ in range(4):
                page.keyboard.press("ArrowRight")
            page.wait_for_function("(old) => { const i = document.querySelector("
                                   "'.widget-interact img'); return i && i.src !== old; }",
                                   arg=before, timeout=60_000)
            assert _picture(page) != before
            labels = page.locator(".widget-interact .widget-readout").all_inner_texts()
            assert any(text.strip() in ("0.70", "0.7") for text in labels), labels
        finally:
            browser.close()
