"""The demo page at ``/`` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium through /usr/bin/chromedriver; no driver is downloaded).

Uploads through ``#image-input`` must show the API's answer for that file, a drawing on the
canvas gets the API's answer for the drawing, a replayed stream shows its decision, API errors
show the API's message, and the browser console holds no error. Screenshots of each panel go to
docs/demo/ (the README and the docs show them) with ``make screenshots``, else to a scratch folder, so that a
test run leaves the tracked images alone.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]
SCREENSHOTS = Path(
    os.environ.get("FIRSTSPIKE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "firstspike-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_BROWSER = CHROMEDRIVER.exists() and Path(CHROMIUM).exists()

# Skipped only where Debian's chromium is absent and this is not CI (make test installs it).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAVE_BROWSER and not os.environ.get("CI"),
        reason="needs Debian's chromium and chromium-driver (make tools installs them)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    if not os.environ.get("CI"):
        pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never reach the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,2600",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, server):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "return document.getElementById('image-model').options.length > 0"
            " && document.getElementById('stream-example').options.length > 0"
        )
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return browser


def console_errors(browser, allowed: tuple[str, ...] = ()) -> list[dict]:
    return [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)
    ]


def wait_for_new_answer(browser, element_id: str, previous: str, timeout: float = 30) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(
        lambda d: d.find_element("id", element_id).get_attribute("data-request-id") not in ("", previous)
    )
    return browser.find_element("id", element_id).get_attribute("data-request-id")


def text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def api_answer(server, data: bytes, **params) -> httpx.Response:
    return httpx.post(
        server.url + "/classify",
        params={"model": "digits", **params},
        files={"image": ("image.png", data, "image/png")},
        timeout=30,
    )


def test_uploads_show_the_api_answer_for_each_file(page, server, digits_test_pngs, tmp_path):
    pngs, _ = digits_test_pngs
    assert page.execute_script("return document.getElementById('image-model').value") == "digits"
    previous = ""
    for index in (0, 1, 7, 11):
        path = tmp_path / f"digit-{index}.png"
        path.write_bytes(pngs[index])
        expected = api_answer(server, pngs[index]).json()
        page.find_element("id", "image-input").send_keys(str(path))
        previous = wait_for_new_answer(page, "result-label", previous)
        assert len(previous) == 32
        assert text(page, "result-label") == expected["label"]
        assert text(page, "result-timestep").startswith(
            f"t = {expected['decision_timestep']} of T = {expected['max_timesteps']}"
        )
        # the raster: a spike of the winning class at the decision timestep, nothing after it
        decision = page.find_elements("css selector", "#spike-raster tr.winner td.decision.fired")
        assert len(decision) == 1
        after = page.find_elements("css selector", "#spike-raster td.after")
        assert len(after) == 10 * (expected["max_timesteps"] - expected["timesteps_run"])
    # the early-exit-off toggle runs the same file over all T timesteps
    page.find_element("id", "full-run").click()
    path = tmp_path / "digit-3.png"
    path.write_bytes(pngs[3])
    expected = api_answer(server, pngs[3], early_exit="false").json()
    page.find_element("id", "image-input").send_keys(str(path))
    wait_for_new_answer(page, "result-label", previous)
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(page, 30).until(lambda d: d.find_element("id", "full-result").is_displayed())
    full = text(page, "full-stats")
    assert f"{expected['label']} (the same answer)" in full
    assert f"{expected['max_timesteps']} of {expected['max_timesteps']}" in full
    # its raster covers all T timesteps, a dot for every output spike of the answer
    assert len(page.find_elements("css selector", "#full-raster td.after")) == 0
    assert len(page.find_elements("css selector", "#full-raster td.fired")) == sum(
        expected["spikes"]["output"]
    )
    page.find_element("id", "image-panel").screenshot(str(SCREENSHOTS / "image-panel.png"))
    page.find_element("id", "full-run").click()
    assert console_errors(page) == []


def test_a_drawing_gets_the_api_answer_for_it(page, server):
    from selenium.webdriver.common.action_chains import ActionChains

    previous = page.find_element("id", "result-label").get_attribute("data-request-id")
    page.find_element("id", "clear-drawing").click()
    canvas = page.find_element("id", "draw-canvas")
    # a "7": a stroke across the top, then down to the bottom left (offsets from the centre)
    (
        ActionChains(page)
        .move_to_element_with_offset(canvas, -60, -70)
        .click_and_hold()
        .move_by_offset(60, 0)
        .move_by_offset(60, 0)
        .move_by_offset(-40, 70)
        .move_by_offset(-40, 70)
        .release()
        .perform()
    )
    drawing = base64.b64decode(
        page.execute_script("return document.getElementById('draw-canvas').toDataURL('image/png')").split(
            ",", 1
        )[1]
    )
    page.find_element("id", "classify-drawing").click()
    wait_for_new_answer(page, "result-label", previous)
    expected = api_answer(server, drawing).json()
    assert text(page, "result-label") == expected["label"]
    assert text(page, "result-timestep").startswith(f"t = {expected['decision_timestep']} of T = 4")
    page.find_element("id", "image-panel").screenshot(str(SCREENSHOTS / "drawing.png"))
    assert console_errors(page) == []


def test_a_file_dropped_on_the_canvas_gets_the_api_answer(page, server, digits_test_pngs):
    pngs, _ = digits_test_pngs
    expected = api_answer(server, pngs[20]).json()
    previous = page.find_element("id", "result-label").get_attribute("data-request-id")
    page.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
        document.getElementById("draw-canvas").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));""",
        base64.b64encode(pngs[20]).decode(),
    )
    wait_for_new_answer(page, "result-label", previous)
    assert text(page, "result-label") == expected["label"]
    assert text(page, "result-timestep").startswith(
        f"t = {expected['decision_timestep']} of T = {expected['max_timesteps']}"
    )
    assert console_errors(page) == []


def test_a_replayed_stream_shows_its_decision(page, server):
    from selenium.webdriver.support.ui import Select

    assert page.execute_script("return document.getElementById('stream-model').value") == "digits-dvs"
    examples = httpx.get(server.url + "/examples/digits-dvs").json()["streams"]
    Select(page.find_element("id", "stream-example")).select_by_value("3")
    page.find_element("id", "stream-play").click()
    wait_for_new_answer(page, "stream-label", "", timeout=30)
    assert text(page, "stream-label") == examples[3]["label"] == "3"
    assert text(page, "stream-timestep").startswith("t = ") and text(page, "stream-timestep").endswith(
        "of T = 4"
    )
    status = text(page, "stream-status")
    assert status.startswith("right; decided after") and f"of {examples[3]['events']:,} events" in status
    assert len(page.find_elements("css selector", "#stream-timeline .bin.decided")) == 1
    page.find_element("id", "stream-panel").screenshot(str(SCREENSHOTS / "stream-panel.png"))
    page.find_element("id", "history-panel").screenshot(str(SCREENSHOTS / "history-panel.png"))
    latest = page.find_elements("css selector", "#history-list li")[0].text
    assert latest.startswith("3 at t = ") and "(stream, digits-dvs/3)" in latest
    assert console_errors(page) == []


def test_api_errors_show_the_api_message(page, server, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    path = tmp_path / "notes.png"
    path.write_bytes(b"this is not an image")
    expected = api_answer(server, path.read_bytes())
    assert expected.status_code in (400, 415)
    page.find_element("id", "image-input").send_keys(str(path))
    WebDriverWait(page, 30).until(lambda d: d.find_element("id", "image-error").is_displayed())
    assert text(page, "image-error") == expected.json()["error"]
    # the failed request itself is the only console error (Chromium logs every 4xx fetch)
    assert console_errors(page, allowed=(f"status of {expected.status_code}",)) == []


def test_every_control_is_labelled_and_reachable_by_keyboard(page):
    unlabelled = page.execute_script("""return [...document.querySelectorAll("input, select, button, canvas")]
        .filter(e => !(e.labels && e.labels.length) && !e.textContent.trim()
                     && !e.getAttribute("aria-labelledby") && !e.getAttribute("aria-label"))
        .map(e => e.id);""")
    assert unlabelled == []
    # Tab from the top reaches the file input, the toggle and the replay button
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    page.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached = set()
    for _ in range(30):
        ActionChains(page).send_keys(Keys.TAB).perform()
        reached.add(page.switch_to.active_element.get_attribute("id"))
    assert {
        "image-model",
        "image-input",
        "draw-canvas",
        "classify-drawing",
        "full-run",
        "stream-play",
    } <= reached


OVERFLOWING = """const width = document.documentElement.clientWidth, out = [];
for (const e of document.querySelectorAll("body *")) {
  const box = e.getBoundingClientRect();
  if (box.width && box.right > width + 1)
    out.push(`${e.tagName}#${e.id}.${e.className} ${Math.round(box.right)} > ${width}`);
}
return out;"""


def test_readable_at_phone_width(page):
    # a phone's viewport (headless Chromium's windows are at least 500 px wide: emulate instead)
    page.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 2400, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        assert page.execute_script("return document.documentElement.clientWidth") == 390
        assert page.execute_script(OVERFLOWING) == []
        assert page.find_element("css selector", "label[for=image-input]").is_displayed()
        page.save_screenshot(str(SCREENSHOTS / "phone.png"))
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(page) == []
