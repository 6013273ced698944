"""The draw-a-digit page in a real Chromium (Debian's), driven by Playwright.

The browser draws with the mouse, as a person would; the predictions it shows are checked
against qnn-ref run on the very pixels the page sent.
"""

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from pyrtlnet.web import center_digit, create_app, load_models, open_socket
from qnn_ref import default_model_path, load_mnist, preprocess, read_model, run_litert, run_numpy

pytestmark = pytest.mark.tool("chromium")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "pyrtlnet" / "web.png"
BACKENDS = ("litert", "numpy", "hardware")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The app on a free port of 127.0.0.1, served by uvicorn in a thread."""
    sock = open_socket("127.0.0.1", 0)
    app = create_app(load_models())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    page.close()
    assert errors == []


def _settled(page) -> None:
    """Wait until no request is in flight and the predictions are shown."""
    page.wait_for_function(
        "document.body.dataset.pending === '0'"
        " && document.querySelector('[data-testid=agreement]').dataset.agree !== undefined"
    )


def _shown(page) -> dict[str, int]:
    return {name: int(page.get_by_test_id(f"prediction-{name}").inner_text()) for name in BACKENDS}


def _golden(image: np.ndarray) -> tuple[int, int]:
    model = read_model(default_model_path())
    x = preprocess(image[None], model.input_shape)
    return int(run_litert(model, x).predictions[0]), int(run_numpy(model, x).predictions[0])


def _draw(page, image: np.ndarray) -> int:
    """Replay the dark pixels of ``image`` as mouse strokes: one stroke per run of ink in a
    row, through the pixel centres, on the 280x280 canvas (10 canvas pixels per image pixel).

    :returns: the number of strokes.
    """
    box = page.get_by_test_id("canvas").bounding_box()
    scale = box["width"] / image.shape[1]
    strokes = 0
    for r, row in enumerate(image > 127):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        for first, end in zip(edges[::2], edges[1::2], strict=True):
            y = box["y"] + (r + 0.5) * scale
            page.mouse.move(box["x"] + (first + 0.5) * scale, y)
            page.mouse.down()
            page.mouse.move(box["x"] + (end - 0.5) * scale, y, steps=4)
            page.mouse.up()
            strokes += 1
    return strokes


def test_a_digit_drawn_with_the_mouse_is_predicted_alike_by_all_three(page):
    images, _ = load_mnist("test")
    sent = []
    page.on(
        "requestfinished",
        lambda request: sent.append(request) if request.url.endswith("/api/infer") else None,
    )
    page.get_by_test_id("pen").fill("18")
    strokes = _draw(page, images[0])
    _settled(page)

    # Every stroke sent the drawing so far; the last request holds the whole digit.
    assert len(sent) == strokes
    last = sent[-1]
    body = last.post_data_json
    answer = last.response().json()
    assert body["center"] is True
    pixels = np.array(body["pixels"], dtype=np.uint8)
    assert pixels.shape == (28, 28)
    # What the model saw is the MNIST-style centring of what the page sent ...
    image = center_digit(pixels)
    np.testing.assert_array_equal(np.array(answer["image"], np.uint8), image, strict=True)
    # ... and every prediction shown is qnn-ref's on those pixels.
    litert, numpy = _golden(image)
    assert litert == numpy
    assert _shown(page) == {"litert": litert, "numpy": litert, "hardware": litert}
    assert page.get_by_test_id("agreement").get_attribute("data-agree") == "true"
    assert int(page.get_by_test_id("cycles").inner_text()) == answer["cycles"] > 0
    page.wait_for_function("document.getElementById('trace-caption').textContent !== ''")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_picked_test_image_is_predicted_as_qnn_ref_predicts_it(page):
    images, _ = load_mnist("test")
    index = int(page.locator("[data-testid^=sample-]").nth(4).get_attribute("data-testid")[7:])
    page.get_by_test_id(f"sample-{index}").click()
    _settled(page)
    litert, numpy = _golden(images[index])
    assert _shown(page) == {"litert": litert, "numpy": numpy, "hardware": litert}


def test_clear_and_undo_reset_the_drawing(page):
    images, _ = load_mnist("test")
    _draw(page, images[1])
    _settled(page)
    assert page.get_by_test_id("prediction-hardware").inner_text() != "·"
    page.get_by_test_id("clear").click()
    assert [page.get_by_test_id(f"prediction-{n}").inner_text() for n in BACKENDS] == ["·"] * 3
    blank = page.evaluate(
        "Array.from(document.querySelector('[data-testid=canvas]').getContext('2d')"
        ".getImageData(0, 0, 280, 280).data).some((v, i) => i % 4 < 3 && v > 0)"
    )
    assert blank is False
    # One stroke, undone: nothing left to predict.
    box = page.get_by_test_id("canvas").bounding_box()
    page.mouse.move(box["x"] + 100, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 200, steps=5)
    page.mouse.up()
    _settled(page)
    page.get_by_test_id("undo").click()
    assert page.get_by_test_id("prediction-hardware").inner_text() == "·"


def test_a_tap_on_a_touch_screen_draws_and_is_predicted(browser, url):
    context = browser.new_context(has_touch=True, viewport={"width": 420, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        box = page.get_by_test_id("canvas").bounding_box()
        with page.expect_response("**/api/infer") as answer:
            page.touchscreen.tap(box["x"] + 140, box["y"] + 140)
        pixels = np.array(answer.value.request.post_data_json["pixels"])
        assert pixels[14, 14] > 0  # the dot under the finger, in the middle
        _settled(page)
        assert len(set(_shown(page).values())) == 1
    finally:
        context.close()
