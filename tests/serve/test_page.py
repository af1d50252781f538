"""The drawing pad's page (``mnist_accel/serve/static``) in a real browser: headless Chromium (Debian's
``chromium``, driven by Playwright attached to that binary) draws the strokes of MNIST test digits with
pointer events, by mouse and by touch, and the page must show what the model reads: the label, the
server's 28x28 image and ten bars. Skips where Playwright or Chromium is missing.

The strokes: a test digit's lit pixels thinned to one-pixel lines (Zhang and Suen's thinning), traced into
paths, scaled to the pad and drawn with the page's own pen, as a person would retrace the digit.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install playwright "
                               "(it is in the dev extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH: apt-get install chromium (Debian's "
                                "package; .ci/run installs it); Playwright's own download is not used")
# Flags for a sandbox-less container without a GPU or network: no first-run, sync, update or QUIC traffic.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = os.environ.get("MNIST_ACCEL_PAD_SCREENSHOT")  # also save the page after drawing here


def thin(lit: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image: the same shape, its strokes one pixel wide."""
    a = np.pad(lit.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = np.pad(a[1:-1, 1:-1], 1)
            # neighbours P2..P9, clockwise from north
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            count = sum(x.astype(int) for x in n)
            transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)).astype(int) for i in range(8))
            if step == 0:
                side = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                side = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            drop = (a[1:-1, 1:-1] == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if drop.any():
                a[1:-1, 1:-1][drop] = 0
                changed = True
        if not changed:
            return a[1:-1, 1:-1].astype(bool)


def strokes(digit: np.ndarray) -> list[list[tuple[int, int]]]:
    """Pen paths (row, column) over a digit's thinned strokes: each starts at a loose end where there is one
    and follows unvisited neighbours until there are none."""
    left = thin(digit > 127)
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1)]

    def neighbours(r, c):
        return [(r + dr, c + dc) for dr, dc in steps if 0 <= r + dr < 28 and 0 <= c + dc < 28 and left[r + dr, c + dc]]

    paths = []
    while left.any():
        start = min(map(tuple, np.argwhere(left)), key=lambda rc: (len(neighbours(*rc)), rc))
        path = [start]
        left[start] = False
        while nxt := neighbours(*path[-1]):
            path.append(nxt[0])
            left[nxt[0]] = False
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, pad_server):
    context = browser.new_context(viewport={"width": 1000, "height": 720}, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"{request.url}: {request.failure}"))
    page.goto(pad_server.url)
    page.wait_for_selector("#bars li >> nth=9")  # the model's ten classes, from /api/info
    yield page
    context.close()
    assert not errors


def _answer_shown(page, timeout: float = 10_000) -> None:
    """Wait until the answer on screen belongs to the drawing as it is now."""
    page.wait_for_function("() => document.body.dataset.shown === document.body.dataset.version", timeout=timeout)


def _to_pad(page, paths):
    box = page.locator("#pad").bounding_box()
    return [[(box["x"] + (c + 0.5) / 28 * box["width"], box["y"] + (r + 0.5) / 28 * box["height"]) for r, c in path]
            for path in paths]


def draw_mouse(page, digit: np.ndarray, check_live: bool = False) -> None:
    for i, path in enumerate(_to_pad(page, strokes(digit))):
        page.mouse.move(*path[0])
        page.mouse.down()
        for j, point in enumerate(path[1:]):
            page.mouse.move(*point)
            if check_live and i == 0 and j == len(path) // 2:  # mid-stroke, the button still down
                page.wait_for_function("() => document.getElementById('label').textContent.trim() !== ''")
        page.mouse.up()


def draw_touch(page, digit: np.ndarray) -> None:
    cdp = page.context.new_cdp_session(page)
    for path in _to_pad(page, strokes(digit)):
        events = [("touchStart", [path[0]]), *(("touchMove", [p]) for p in path[1:]), ("touchEnd", [])]
        for kind, points in events:  # Chromium turns these into pointer events of pointerType "touch"
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]})
    cdp.detach()


def _reading(page) -> dict:
    return page.evaluate("""() => ({
        label: document.getElementById('label').textContent.trim(),
        bars: [...document.querySelectorAll('#bars li')].map(li => parseFloat(li.querySelector('.pct').textContent)),
        top: [...document.querySelectorAll('#bars li')].findIndex(li => li.classList.contains('top')),
        seen: Array.from(document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data
                         .filter((_, i) => i % 4 === 0)),
    })""")


def _first(mnist, digit: int) -> int:
    return int(np.flatnonzero(mnist.test_labels == digit)[0])


@pytest.mark.parametrize("digit", [7, 2, 1, 0, 4])
def test_drawn_digit_is_read(page, pad_server, mnist, digit, tmp_path):
    """The first test image of each digit, drawn by mouse: the page reads it, and shows the server's 28x28
    input (the very image ``predict`` would prepare from the canvas) and ten bars led by the label."""
    index = _first(mnist, digit)
    draw_mouse(page, mnist.test_images[index], check_live=True)
    _answer_shown(page)
    got = _reading(page)
    assert got["label"] == str(digit)
    assert len(got["bars"]) == 10 and got["top"] == digit and max(got["bars"]) == got["bars"][digit]
    assert abs(sum(got["bars"]) - 100) < 1
    # The canvas's own PNG, as the page sends it: the preview is the server's preparation of it, pixel for pixel
    png = base64.b64decode(page.evaluate("() => document.getElementById('pad').toDataURL('image/png')")
                           .partition(",")[2])
    expected = pad_server.predictor.predict_image(png)
    assert expected["label"] == digit
    seen = np.asarray(got["seen"]).reshape(28, 28) / 255
    assert seen.max() == 1 and np.abs(seen - np.asarray(expected["image"])).max() <= 0.6 / 255
    page.screenshot(path=tmp_path / "pad.png")
    if SCREENSHOT and digit == 7:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.locator("main").screenshot(path=SCREENSHOT)  # the page's content, without the empty viewport


def test_touch_draws_and_clear_resets(page, mnist):
    page.evaluate("() => { window.kinds = new Set(); document.getElementById('pad').addEventListener("
                  "'pointerdown', (e) => window.kinds.add(e.pointerType)); }")
    draw_touch(page, mnist.test_images[_first(mnist, 2)])
    _answer_shown(page)
    assert _reading(page)["label"] == "2"
    assert page.evaluate("() => [...window.kinds]") == ["touch"]
    page.click("#clear")
    _answer_shown(page)
    got = _reading(page)
    assert got["label"] == "" and got["top"] == -1 and max(got["bars"]) == 0 and max(got["seen"]) == 0
    draw_mouse(page, mnist.test_images[_first(mnist, 7)])  # the pad draws again after a clear
    _answer_shown(page)
    assert _reading(page)["label"] == "7"


def test_page_works_offline(browser, pad_server):
    """Every file the page loads comes from the server itself: with every other address blocked, it loads."""
    context = browser.new_context()
    foreign = []

    def route(route):
        if route.request.url.startswith(pad_server.url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(pad_server.url)
    page.wait_for_selector("#bars li >> nth=9")
    assert page.locator("#model").text_content().startswith("model.npz: 784-512-10")
    assert not foreign
    context.close()
