"""Redraw ``docs/images/serve.png``: the page of ``nnscratch serve`` with a 2 drawn on it.

    python docs/images/serve_screenshot.py [MODEL] [--out docs/images/serve.png]

Starts ``nnscratch serve MODEL --port 0`` (MODEL defaults to what ``nnscratch serve`` picks),
draws a 2 with real mouse events in headless chromium, waits for the answer and saves the
window. Needs Debian's ``chromium`` and ``chromium-driver`` and Selenium (``pip install -e
".[test]"``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TWO = [(0.3, 0.3), (0.4, 0.22), (0.55, 0.22), (0.65, 0.3), (0.63, 0.42), (0.3, 0.75),
       (0.7, 0.75)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="model file or run folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("serve.png"))
    args = parser.parse_args()
    command = [sys.executable, "-m", "nnscratch", "serve", "--port", "0", "--quiet"]
    server = subprocess.Popen(command + ([args.model] if args.model else []),
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        with tempfile.TemporaryDirectory() as profile:
            for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", "--no-first-run", "--hide-scrollbars",
                             "--window-size=1100,800", f"--user-data-dir={profile}"):
                options.add_argument(argument)
            browser = webdriver.Chrome(options=options,
                                       service=Service("/usr/bin/chromedriver"))
            try:
                browser.get(url)
                wait = WebDriverWait(browser, 20)
                wait.until(lambda b: b.find_element(By.ID, "model-architecture").text != "…")
                pad = browser.find_element(By.ID, "pad")
                size = pad.rect["width"]
                actions = ActionChains(browser, duration=20)
                (x, y), rest = TWO[0], TWO[1:]
                actions.move_to_element_with_offset(pad, (x - 0.5) * size, (y - 0.5) * size)
                actions.click_and_hold()
                for x, y in rest:
                    actions.move_to_element_with_offset(pad, (x - 0.5) * size,
                                                        (y - 0.5) * size)
                actions.release().perform()
                wait.until(lambda b: b.execute_script(
                    "return document.body.dataset.pending === '0' && "
                    "document.getElementById('prediction').dataset.state === 'answer'"))
                # Make the window tall enough for the whole page, then take it.
                height = browser.execute_script("return document.documentElement.scrollHeight")
                inner = browser.execute_script("return window.innerHeight")
                size = browser.get_window_size()
                browser.set_window_size(size["width"], size["height"] + height - inner)
                browser.save_screenshot(str(args.out))
                print(f"{args.out}: {browser.find_element(By.ID, 'prediction').text} shown")
            finally:
                browser.quit()
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
