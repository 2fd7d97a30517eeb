"""The page of ``nnscratch serve`` in a real browser: Debian's chromium, driven by Selenium.

A small network trained on the real MNIST (784-128-10, 2 epochs: it reads drawn digits) is
served by ``nnscratch serve --port 0`` in a subprocess, which every test run stops. The tests
draw with real pointer events — the mouse through ActionChains, a finger through a touch
pointer — and check what a person sees: the prediction, the bars, the prompt on a blank pad,
the network's view and its hidden layer.

They need ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``)
and skip, saying so, without them. Selenium is told where both are, so its own browser manager
never reaches for the network.
"""

from __future__ import annotations

import base64
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnscratch.cli import main
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HEADLESS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--window-size=1100,900"]

Stroke = Sequence[tuple[float, float]]  # points as fractions of the pad's width and height
ONE = [[(0.5, 0.2), (0.5, 0.8)]]
SEVEN = [[(0.3, 0.25), (0.7, 0.25)], [(0.7, 0.25), (0.45, 0.8)]]
TWO = [[(0.3, 0.3), (0.4, 0.22), (0.55, 0.22), (0.65, 0.3), (0.63, 0.42), (0.3, 0.75),
        (0.7, 0.75)]]


def shrunk(strokes: list[Stroke], scale: float, left: float, top: float) -> list[Stroke]:
    """The same drawing made `scale` times as large, its box starting at (`left`, `top`)."""
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return [[(left + (x - min(xs)) * scale, top + (y - min(ys)) * scale) for x, y in stroke]
            for stroke in strokes]


# ---------------------------------------------------------------------------------------------
# The browser, the model and the server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: install them with "
                    "'apt-get install chromium chromium-driver' to run the browser tests")
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="nnscratch-chromium-") as profile:
        for argument in [*HEADLESS, f"--user-data-dir={profile}"]:
            options.add_argument(argument)
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="session")
def reader_model(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """A run folder with a 784-128-10 ReLU network trained for 2 epochs (about 96 % test)."""
    run = tmp_path_factory.mktemp("reader") / "run"
    status = main(["train", "--recipe", "mnist10", "--layers", "128", "--epochs", "2",
                   "--dropout", "0", "--no-plots", "--quiet", "--data-dir", str(mnist_dir),
                   "--out", str(run)])
    assert status == 0
    return run


@contextlib.contextmanager
def serving(model: Path, log: Path) -> Iterator[str]:
    """``nnscratch serve MODEL --port 0`` in a subprocess; its URL; stopped however it ends."""
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "nnscratch", "serve", str(model), "--port", "0", "--quiet"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
        try:
            line = process.stdout.readline()
            assert line.startswith("Serving on http://"), (line, log.read_text())
            yield line.split()[-1]
        finally:
            process.kill()
            process.wait(30)
            process.stdout.close()


@pytest.fixture(scope="module")
def server(reader_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(reader_model, tmp_path_factory.mktemp("server") / "stderr.txt") as url:
        yield url


class Page:
    """The page as a person sees it, and the gestures they make."""

    def __init__(self, driver, url: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.by = driver, By
        self.wait = WebDriverWait(driver, 20)
        driver.get(url)
        self.wait.until(lambda d: d.execute_script(
            "return document.getElementById('model-architecture').textContent !== '…'"))
        self.pad = driver.find_element(By.ID, "pad")

    def draw(self, strokes: list[Stroke], pointer: str = "mouse") -> None:
        """Draw each stroke with real pointer events; points are fractions of the pad."""
        from selenium.webdriver.common.actions import interaction
        from selenium.webdriver.common.actions.action_builder import ActionBuilder
        from selenium.webdriver.common.actions.pointer_input import PointerInput

        kind = interaction.POINTER_TOUCH if pointer == "touch" else interaction.POINTER_MOUSE
        actions = ActionBuilder(self.driver, mouse=PointerInput(kind, pointer), duration=25)
        size = self.pad.rect["width"]
        for stroke in strokes:
            (x, y), rest = stroke[0], stroke[1:]
            # Offsets are from the pad's centre, in CSS pixels.
            actions.pointer_action.move_to(self.pad, (x - 0.5) * size, (y - 0.5) * size)
            actions.pointer_action.pointer_down()
            for x, y in rest:
                actions.pointer_action.move_to(self.pad, (x - 0.5) * size, (y - 0.5) * size)
            actions.pointer_action.pointer_up()
        actions.perform()

    def settle(self) -> None:
        """Wait until no answer is on its way."""
        time.sleep(0.05)
        self.wait.until(lambda d: d.execute_script("return document.body.dataset.pending")
                        == "0")

    def click(self, element_id: str) -> None:
        self.driver.find_element(self.by.ID, element_id).click()

    def prediction(self) -> tuple[str, str]:
        element = self.driver.find_element(self.by.ID, "prediction")
        return element.text, element.get_attribute("data-state")

    def bars(self) -> list[tuple[str, float, bool]]:
        """(class, probability, highlighted) of every bar."""
        return [(bar.get_attribute("data-class"), float(bar.get_attribute("data-probability")),
                 "top" in bar.get_attribute("class").split())
                for bar in self.driver.find_elements(self.by.CSS_SELECTOR, "#bars .bar")]

    def pixels(self, canvas_id: str) -> list[list[int]]:
        """The red channel of a small canvas (#seen, #hidden), row by row."""
        return self.driver.execute_script("""
            const canvas = document.getElementById(arguments[0]);
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                              canvas.height).data;
            const rows = [];
            for (let r = 0; r < canvas.height; r++) {
              const row = [];
              for (let c = 0; c < canvas.width; c++) row.push(data[4 * (r * canvas.width + c)]);
              rows.push(row);
            }
            return rows;""", canvas_id)

    def record_sent(self) -> None:
        """Keep every picture the page sends to the API from now on (``sent_pictures``)."""
        self.driver.execute_script("""
            window.sentPictures = [];
            const send = window.fetch;
            window.fetch = (url, options) => {
              if (String(url).endsWith('api/predict')) window.sentPictures.push(options.body);
              return send(url, options);
            };""")

    def last_sent(self) -> np.ndarray:
        """The last picture sent, as gray levels (height, width)."""
        url = self.driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const reader = new FileReader();
            reader.onload = () => done(reader.result);
            reader.readAsDataURL(window.sentPictures[window.sentPictures.length - 1]);""")
        png = base64.b64decode(url.split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(png)).convert("L"))

    def pad_picture(self) -> str:
        """The pad's pixels as a PNG data URL: equal strings, equal pixels."""
        return self.driver.execute_script("return document.getElementById('pad').toDataURL()")

    def pad_darkest(self) -> int:
        """The darkest gray level on the pad (255: nothing drawn)."""
        return self.driver.execute_script("""
            const pad = document.getElementById('pad');
            const data = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
            let darkest = 255;
            for (let i = 0; i < data.length; i += 4) darkest = Math.min(darkest, data[i]);
            return darkest;""")

    def pad_pixel(self, x: int, y: int) -> int:
        return self.driver.execute_script(
            "return document.getElementById('pad').getContext('2d')"
            ".getImageData(arguments[0], arguments[1], 1, 1).data[0]", x, y)


@pytest.fixture
def page(browser, server) -> Page:
    return Page(browser, server)


def ink_centre(rows: list[list[int]]) -> tuple[float, float]:
    total = sum(map(sum, rows))
    row = sum(r * value for r, line in enumerate(rows) for value in line) / total
    col = sum(c * value for line in rows for c, value in enumerate(line)) / total
    return row, col


# ---------------------------------------------------------------------------------------------
# What a person sees


def test_a_blank_pad_shows_the_prompt_and_no_class(page):
    assert page.prediction() == ("draw a digit", "blank")
    bars = page.bars()
    assert [label for label, _, _ in bars] == [str(d) for d in range(10)]
    assert all(p == 0 and not top for _, p, top in bars)
    assert max(map(max, page.pixels("seen"))) == 0


def test_a_vertical_stroke_is_read_as_one(page):
    page.draw(ONE)
    page.settle()
    assert page.prediction() == ("1", "answer")


def test_the_bars_sum_to_one_and_the_highlighted_bar_is_the_prediction(page):
    page.draw(TWO)
    page.settle()
    label, state = page.prediction()
    assert (label, state) == ("2", "answer")
    bars = page.bars()
    assert sum(p for _, p, _ in bars) == pytest.approx(1, abs=1e-6)
    highlighted = [name for name, _, top in bars if top]
    assert highlighted == [label] == [max(bars, key=lambda bar: bar[1])[0]]


def test_a_small_digit_in_a_corner_gets_the_answer_of_a_large_centred_one(page):
    for drawing, digit in ((SEVEN, "7"), (TWO, "2")):
        page.draw(drawing)
        page.settle()
        large = page.prediction()
        page.click("clear")
        page.draw(shrunk(drawing, 0.4, left=0.05, top=0.05))
        page.settle()
        assert page.prediction() == large == (digit, "answer")
        # The network's view is centred all the same: centre of mass at (14, 14).
        row, col = ink_centre(page.pixels("seen"))
        assert abs(row - 14) < 1 and abs(col - 14) < 1
        page.click("clear")


def _stroke_share(picture: np.ndarray) -> float:
    """A vertical stroke's width as a share of its height: ink area over height squared."""
    ink = picture < 128
    rows = np.flatnonzero(ink.any(axis=1))
    height = rows[-1] - rows[0] + 1
    return float(ink.sum()) / height**2


def test_a_digit_drawn_small_is_sent_with_strokes_in_proportion(page):
    # The pad's brush is fixed; what the page sends is redrawn with a brush in proportion to
    # the drawing, so a small 1 is as slender as a large one (with the pad's pixels, the small
    # one's stroke would be 3.4 times as wide relative to its height).
    page.record_sent()
    page.draw(ONE)
    page.settle()
    large = page.last_sent()
    page.click("clear")
    page.draw(shrunk(ONE, 0.2, left=0.1, top=0.1))
    page.settle()
    small = page.last_sent()
    assert large.shape == small.shape == (140, 140)
    assert 0.7 < _stroke_share(small) / _stroke_share(large) < 1.4
    assert page.prediction() == ("1", "answer")
    assert page.pad_darkest() == 0  # the pad itself still shows the strokes as drawn
    page.click("clear")


def test_the_network_view_and_the_hidden_layer_follow_the_drawing(page):
    page.draw(ONE)
    page.settle()
    seen = page.pixels("seen")
    assert sum(value > 128 for line in seen for value in line) > 20  # a visible stroke
    hidden_one = page.pixels("hidden")
    assert len(hidden_one) * len(hidden_one[0]) >= 128 and max(map(max, hidden_one)) > 0
    page.click("clear")
    page.draw(SEVEN)
    page.settle()
    assert page.pixels("hidden") != hidden_one


def test_clear_resets_pad_bars_prediction_and_preview(page):
    page.draw(SEVEN)
    page.settle()
    assert page.prediction()[1] == "answer"
    page.click("clear")
    page.settle()
    assert page.prediction() == ("draw a digit", "blank")
    assert all(p == 0 and not top for _, p, top in page.bars())
    assert max(map(max, page.pixels("seen"))) == 0
    assert page.pad_darkest() == 255  # white paper again
    # Clearing while answers are on their way: they must not bring the drawing's class back.
    page.draw(SEVEN)
    page.click("clear")
    page.settle()
    assert page.prediction() == ("draw a digit", "blank")


def test_undo_removes_the_last_stroke(page):
    page.draw(ONE)
    page.settle()
    one, pad_one = page.prediction(), page.pad_picture()
    page.draw([[(0.3, 0.2), (0.5, 0.2)]])  # a flag: no longer a plain 1
    page.settle()
    assert page.pad_picture() != pad_one
    page.click("undo")
    page.settle()
    assert page.prediction() == one and page.pad_picture() == pad_one
    page.click("undo")
    page.settle()
    assert page.prediction() == ("draw a digit", "blank")


def test_a_finger_draws_without_scrolling_the_page(browser, server):
    browser.set_window_size(420, 700)  # a phone: the page is taller than the window
    try:
        page = Page(browser, server)
        browser.execute_script("""
            window.pointerTypes = [];
            document.getElementById('pad').addEventListener('pointerdown',
                (event) => window.pointerTypes.push(event.pointerType));
            document.getElementById('pad').scrollIntoView({block: 'center'});""")
        scrolled = browser.execute_script("return window.scrollY")
        assert browser.execute_script(
            "return getComputedStyle(document.getElementById('pad')).touchAction") == "none"
        # Upwards: were the page to scroll, it would scroll down, where there is room.
        page.draw([[(0.5, 0.85), (0.5, 0.5), (0.5, 0.15)]], pointer="touch")
        page.settle()
        assert browser.execute_script("return window.pointerTypes") == ["touch"]
        assert browser.execute_script("return window.scrollY") == scrolled
        assert page.prediction() == ("1", "answer")
    finally:
        browser.set_window_size(1100, 900)


def test_drawing_lands_under_the_pointer_when_the_pad_is_scaled(page, browser):
    browser.execute_script("""
        const pad = document.getElementById('pad');
        pad.style.width = '200px';
        pad.style.maxWidth = '200px';""")
    page.draw([[(0.2, 0.3), (0.3, 0.3)]])
    page.settle()
    inside = browser.execute_script("""
        const pad = document.getElementById('pad');
        const box = pad.getBoundingClientRect();
        return [pad.clientLeft, pad.clientWidth, box.width];""")
    border, content, outer = inside
    # The pointer's CSS position, mapped through the scale, is where the ink is.
    x = round((0.25 * outer - border) * 280 / content)
    y = round((0.3 * outer - border) * 280 / content)
    assert page.pad_pixel(x, y) < 64
    assert page.pad_pixel(280 - x, y) == 255 and page.pad_pixel(x, 280 - y) == 255


def test_a_slow_old_answer_never_overwrites_a_newer_one(page, browser):
    # The first request's answer comes back last, relabelled: it must never be shown.
    browser.execute_script("""
        const realFetch = window.fetch.bind(window);
        window.predictCalls = 0;
        window.fetch = async (url, options) => {
          if (!String(url).includes('api/predict')) return realFetch(url, options);
          window.predictCalls += 1;
          const response = await realFetch(url, options);
          if (window.predictCalls > 1) return response;
          const answer = await response.json();
          answer.label = 'stale';
          await new Promise((resolve) => setTimeout(resolve, 1500));
          return new Response(JSON.stringify(answer),
                              {status: 200, headers: {'Content-Type': 'application/json'}});
        };""")
    page.draw(ONE)
    page.settle()  # until the slow one is back too
    assert browser.execute_script("return window.predictCalls") >= 2
    assert page.prediction() == ("1", "answer")


def test_the_model_facts_and_a_link_to_the_api_docs(page, browser):
    text = browser.find_element(page.by.ID, "model").text
    assert "784 → 128 ReLU → 10" in text and "0 1 2 3 4 5 6 7 8 9" in text
    accuracy = browser.find_element(page.by.ID, "model-accuracy").text
    assert accuracy.endswith("% (metrics.json)") and float(accuracy.split("%")[0]) > 90
    link = browser.find_element(page.by.ID, "api-docs")
    assert link.get_attribute("href").endswith("/docs")
    # The docs render with no network (Swagger UI is served from the package): its title and
    # the predict route appear.
    browser.get(link.get_attribute("href"))
    page.wait.until(
        lambda driver: "/api/predict" in driver.find_element(page.by.TAG_NAME, "body").text)
    assert "nnscratch serve" in browser.find_element(page.by.CSS_SELECTOR, ".info .title").text


def test_a_binary_model_shows_only_its_two_classes(browser, tmp_path):
    model = tmp_path / "model.npz"
    save_model(model, build_mlp(784, [16], 1, rng=0), [1, 2],
               metadata={"preprocessing": {"scale": "pixel / 255"}})
    with serving(model, tmp_path / "stderr.txt") as url:
        page = Page(browser, url)
        assert [label for label, _, _ in page.bars()] == ["1", "2"]
        page.draw(ONE)
        page.settle()
        label, state = page.prediction()
        assert state == "answer" and label in ("1", "2")
        assert sum(p for _, p, _ in page.bars()) == pytest.approx(1, abs=1e-6)


def test_a_cnn_shows_its_first_convolutions_feature_maps(browser, tmp_path):
    from nnscratch.nn.model import build_cnn

    model = tmp_path / "model.npz"
    save_model(model, build_cnn((1, 28, 28), [4, 6], [8], 10, pool_every=1, rng=0),
               list(range(10)), metadata={"preprocessing": {"scale": "pixel / 255"}})
    with serving(model, tmp_path / "stderr.txt") as url:
        page = Page(browser, url)
        caption = page.driver.find_element(page.by.ID, "hidden-caption").text
        assert caption.startswith("The first convolution: 4 feature maps of 28×28")
        page.draw(ONE)
        page.settle()
        maps = page.pixels("hidden")
        # Four 28×28 maps in a 2×2 grid with a one-pixel white gap between them.
        assert (len(maps), len(maps[0])) == (57, 57)
        assert all(value == 255 for value in maps[28]) and all(row[28] == 255 for row in maps)
        tiles = [[row[c:c + 28] for row in maps[r:r + 28]] for r in (0, 29) for c in (0, 29)]
        assert all(min(map(min, tile)) == 0 for tile in tiles)  # each stretched on its own
        assert any(max(map(max, tile)) == 255 for tile in tiles)
        page.click("clear")
        page.draw(SEVEN)
        page.settle()
        assert page.pixels("hidden") != maps
