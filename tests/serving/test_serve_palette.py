"""The service's /v1/score carries the palette suggestions of a multi-colour garment (and its
pictures), and nothing of the kind for plain garments: a NumPy stand-in model in the service (the
tiny exported test model is rule-v1, whose explanations have no palette suggestions)."""

import io
import sys

import pytest
from conftest import ROOT
from PIL import Image

pytest.importorskip("fastapi")
sys.path.insert(0, str(ROOT / "tests" / "explanation"))
from explain_stand_ins import GREEN, NAVY, PURPLE, RED, PeopleBackend, garment, striped  # noqa: E402


def _png(image):
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")  # lossless: the stand-in sees the stripes as drawn
    return buf.getvalue()


@pytest.fixture()
def client(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from neipalette_tf.serving import app as service

    def load(path, threads=None):
        backend = PeopleBackend()
        backend.path = str(path)
        return backend

    monkeypatch.setattr(service.explain, "load_backend", load)
    with TestClient(service.create_app(tmp_path / "model.onnx", workers=1), raise_server_exceptions=False) as c:
        yield c


def test_score_answers_palette_suggestions_for_a_multi_colour_garment(client):
    r = client.post("/v1/score", files={"top": ("t.png", _png(striped(NAVY, RED))),
                                        "bottom": ("b.png", _png(garment(PURPLE, kind="bottom")))},
                    data={"images": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["colours"]["top"]["name"] == "navy" and len(body["colours"]["top"]["palette"]) == 2
    found = body["palette_suggestions"]
    assert found and body["palette_rating"] < 3.0 + 0.15
    assert len(body["images"]["palette_previews"]) == len(found)
    assert all(p.startswith("data:image/png;base64,") for p in body["images"]["palette_previews"])
    for s in found:
        assert s["role"] == "top" and s["from"]["hex"] == body["colours"]["top"]["palette"][s["entry"]]["hex"]
        assert s["rating_pixels"] >= 3.15 and s["text"].startswith("make the ") and 0 <= s["p_pixels"] <= 1


def test_score_adds_nothing_for_plain_garments(client):
    r = client.post("/v1/score", files={"top": ("t.png", _png(garment(RED))),
                                        "bottom": ("b.png", _png(garment(GREEN, kind="bottom")))},
                    data={"images": "1", "suggest": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["suggestions"] and "palette_suggestions" not in body and "palette_previews" not in body["images"]


@pytest.mark.slow  # a headless Chromium, as the other page tests
def test_the_page_shows_the_palette_and_its_suggestions(monkeypatch, tmp_path):
    import shutil
    import threading

    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver_path = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    import uvicorn
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from neipalette_tf.serving import app as service
    from neipalette_tf.serving.load_test import free_port

    monkeypatch.setattr(service.explain, "load_backend", lambda path, threads=None: PeopleBackend())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(service.create_app(tmp_path / "model.onnx", workers=1), port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for role, image in (("top", striped(NAVY, RED)), ("bottom", garment(PURPLE, kind="bottom"))):
        Image.fromarray(image).save(tmp_path / f"{role}.png")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=412,1400"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        WebDriverWait(browser, 30).until(lambda _: server.started)
        browser.get(f"http://127.0.0.1:{port}/")
        for role in ("top", "bottom"):
            browser.find_element(By.ID, f"{role}-input").send_keys(str(tmp_path / f"{role}.png"))
        browser.find_element(By.ID, "score").click()
        WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "verdict").text
                                         or "Error" in d.find_element(By.ID, "status").text)
        assert "Error" not in browser.find_element(By.ID, "status").text, browser.find_element(By.ID, "status").text
        assert "palette: #1f2d54 67% #c81e28 33%" in browser.find_element(By.ID, "top-colour").text
        shown = browser.find_elements(By.CSS_SELECTOR, "#suggestions .palette-suggestion")
        assert shown and "top's red →" in shown[0].text and "make the second colour of the top" in shown[0].text
        preview = shown[0].find_element(By.TAG_NAME, "img")
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", preview) > 0
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert browser.save_screenshot(str(tmp_path / "palette-page.png"))
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(10)
