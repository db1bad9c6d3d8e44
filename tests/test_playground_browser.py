"""The playground in a real browser: headless Chromium (Debian's, driven by selenium) loads
the page from a live server, drives the pusher with arrow keys, sees the model's predicted
frames appear beside the simulator's, draws a goal and runs a plan the robot executes; and
the page shows no broken image and nothing overlapping from 1280 px down to 800 px wide.

Nothing is downloaded: the browser and its driver come from the system packages
(`apt-get install chromium chromium-driver`, done by .ci/run). Without them this test
FAILS, on purpose: a skipped browser test would hide a broken playground.
"""

import os
import shutil
import time

import pytest
from stand_ins import tiny_predictor

from maskvit.serve import ServeSettings, create_app
from maskvit.serve.runner import ThreadedServer

CHROMIUM = os.environ.get("MASKVIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MASKVIT_CHROMEDRIVER", "/usr/bin/chromedriver")


def _browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) or shutil.which(p))]
    if missing:
        pytest.fail(f"the browser test needs {', '.join(missing)}: install them with "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does)", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser test needs selenium: pip install -e '.[dev]'", pytrace=False)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,800", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def server():
    app = create_app(tiny_predictor(), ServeSettings(port=0, max_wait_ms=1.0), "tiny")
    srv = ThreadedServer(app).start()
    yield srv
    srv.stop()


def _wait(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_drive_dream_draw_and_plan_in_a_real_browser(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = _browser()
    try:
        driver.get(server.url + "/")
        find = driver.find_element
        _wait(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the page to start")
        assert find(By.ID, "reality").get_attribute("src").startswith("data:image/png;base64,")
        assert "tiny-push" in find(By.ID, "model-info").text

        body = find(By.TAG_NAME, "body")
        for steps, key in enumerate((Keys.ARROW_RIGHT, Keys.ARROW_DOWN, Keys.ARROW_LEFT), start=2):
            body.send_keys(key)
            _wait(lambda n=steps: find(By.ID, "step-count").text == str(n), f"step {steps}")
        dreams = _wait(lambda: len(find(By.ID, "dream-strip").find_elements(By.TAG_NAME, "img")) == 3,
                       "the dream of three steps")
        assert dreams
        assert len(find(By.ID, "reality-strip").find_elements(By.TAG_NAME, "img")) == 3
        assert find(By.ID, "dream").get_attribute("src").startswith("data:image/png;base64,")

        find(By.CSS_SELECTOR, "#pad .up").click()  # on-screen buttons drive too
        _wait(lambda: find(By.ID, "step-count").text == "5", "a button step")

        find(By.CSS_SELECTOR, ".swatch.red").click()  # draw a goal
        canvas = find(By.ID, "goal")
        ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(20, 10).release().perform()
        assert "drawn" in find(By.ID, "goal-source").text

        for field, value in (("samples", 4), ("iterations", 1), ("horizon", 2), ("execute", 1), ("replans", 2)):
            box = find(By.ID, field)
            box.clear()
            box.send_keys(str(value))
        find(By.ID, "plan").click()
        _wait(lambda: "done" in find(By.ID, "plan-status").text, "the plan to run", timeout=60)
        assert find(By.ID, "step-count").text == "7"  # 2 replans × 1 executed action
        assert len(find(By.ID, "plan-strip").find_elements(By.TAG_NAME, "img")) == 2
        log = find(By.ID, "latency").text
        assert "predict" in log and "plan M=4 K=1" in log and " ms" in log

        find(By.CSS_SELECTOR, "input[name=kind][value=episode]").click()  # a held-out episode
        find(By.ID, "start").click()
        _wait(lambda: find(By.ID, "step-count").text == "1" and find(By.ID, "replay").is_enabled(),
              "the held-out episode")
        find(By.ID, "replay").click()
        _wait(lambda: find(By.ID, "step-count").text == "2", "a replayed step")
        _wait(lambda: len(find(By.ID, "dream-strip").find_elements(By.TAG_NAME, "img")) == 1, "its dream")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


# Visible images that did not load (a broken-image icon), panels that overlap, and
# elements that stick out of their panel.
LAYOUT_FAULTS = """
const visible = (el) => el.offsetParent !== null && getComputedStyle(el).visibility !== "hidden";
const broken = [...document.images].filter(i => visible(i) && !(i.complete && i.naturalWidth > 0))
  .map(i => i.id || i.outerHTML.slice(0, 60));
const panels = [...document.querySelectorAll("main > .panel")];
const boxes = panels.map(p => p.getBoundingClientRect());
const overlapping = [];
boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b, j) => {
  if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
    overlapping.push(panels[i].id + " & " + panels[i + 1 + j].id);
}));
const outside = [];
panels.forEach((p, i) => p.querySelectorAll("*").forEach(el => {
  const e = el.getBoundingClientRect();
  if (e.width && (e.left < boxes[i].left - 0.5 || e.right > boxes[i].right + 0.5))
    outside.push(p.id + ": " + (el.id || el.tagName.toLowerCase()));
}));
return {broken, overlapping, outside,
        wider_than_window: document.documentElement.scrollWidth > window.innerWidth};
"""


@pytest.mark.parametrize("width", [1280, 1000, 800])
def test_no_broken_image_before_the_first_step_and_no_overlap(server, width):
    driver = _browser()
    try:
        driver.set_window_size(width, 800)
        driver.get(server.url + "/")
        _wait(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the page to start")
        assert driver.execute_script("return window.innerWidth") == width
        faults = driver.execute_script(LAYOUT_FAULTS)
        assert faults == {"broken": [], "overlapping": [], "outside": [], "wider_than_window": False}, faults
    finally:
        driver.quit()
