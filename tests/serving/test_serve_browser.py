"""The page at / in a real headless Chromium (selenium): upload two photos, read the verdict and a suggestion.

Skipped when Chromium, its driver or selenium is absent (`.ci/run` installs them).
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.request

import pytest
from conftest import ROOT
from PIL import Image

webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(explain_export):
    from neipalette_tf.serving.load_test import free_port, wait_healthy

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "neipalette_tf.serve", "--model",
                                str(explain_export[1] / "model.onnx"), "--port", str(port), "--workers", "1"],
                               cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=412,1400"):  # a phone's width
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_scores_two_uploaded_photos(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from neipalette_tf.serving.load_test import multipart

    assert urllib.request.urlopen(server + "healthz", timeout=10).status == 200
    # The tiny model learnt "harmonious when the bottom is clearly darker than the top"
    # (`helpers.make_pairs`): a light top over a dark bottom is far from its boundary, so a
    # recolour at the garment's lightness keeps p above the 0.01 target whatever the CPU
    # the model was trained on (a red over a green of nearly the same lightness did not, on CI).
    photos = {}
    for role, colour in (("top", (235, 205, 120)), ("bottom", (35, 40, 95))):
        img = Image.new("RGB", (60, 80), (236, 236, 232))
        img.paste(colour, (12, 10, 48, 70))
        photos[role] = tmp_path / f"{role}.png"
        img.save(photos[role])
    # The service's own answer first, so a failure says whether the service or the page is at fault.
    body, kind = multipart({"top": photos["top"].read_bytes(), "bottom": photos["bottom"].read_bytes(),
                            "suggest": "1", "target": "0.01"})
    request = urllib.request.Request(server + "v1/score", data=body, headers={"Content-Type": kind})
    api = json.loads(urllib.request.urlopen(request, timeout=120).read())
    assert api["suggestions"], f"the service found no suggestion at p >= 0.01: p = {api['p_harmonious']}"
    browser.get(server)
    assert browser.find_element(By.ID, "score").get_attribute("disabled")
    for role, path in photos.items():
        browser.find_element(By.ID, f"{role}-input").send_keys(str(path))
    browser.find_element(By.ID, "options").click()
    browser.find_element(By.ID, "suggest").click()
    target = browser.find_element(By.ID, "target")
    target.clear()
    target.send_keys("0.01")
    browser.find_element(By.ID, "score").click()
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.ID, "verdict").text or "Error" in d.find_element(By.ID, "status").text)
    assert "Error" not in browser.find_element(By.ID, "status").text, browser.find_element(By.ID, "status").text
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict == f"{api['label'].capitalize()} (p = {api['p_harmonious']:.2f})"
    assert browser.find_element(By.ID, "rule").text.startswith("Colour rule: ")
    shown = browser.find_elements(By.CSS_SELECTOR, "#suggestions .suggestion")  # drawn with the verdict
    assert len(shown) == len(api["suggestions"])
    suggestion = shown[0]
    assert "→" in suggestion.text and "p = " in suggestion.text
    overlay = browser.find_element(By.ID, "top-overlay")
    assert overlay.get_attribute("src").startswith("data:image/png") and browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", overlay) > 0
    # the page fits a phone's width: nothing wider than the window
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
