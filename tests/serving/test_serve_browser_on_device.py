"""On-device scoring in a real headless Chromium with a phone's viewport (390 x 844, touch).

The page runs the service's own `.tflite` files (the embedding graph and the head it scores with)
with LiteRT.js (WASM) and must give the service's p within 0.01 for the same photos, from the same
pixels: the page's letterbox (static/letterbox.js)
is checked against `load_image` pixel for pixel. The in-browser time per pair is printed (run with
`-s`), never asserted: a speed target is a benchmark's business, not a unit test's.

Skipped when Chromium, chromedriver or selenium is absent, or when the page's runtime is not
installed (`python -m neipalette_tf.web_runtime`); `.ci/run` installs all of them.
`NEIPALETTE_BROWSER_EXPORT=artifacts/X` runs the browser tests on that export folder instead of the
tiny test model (how docs/on_device.md's timings were taken); `NEIPALETTE_BROWSER_WEBGPU=1` adds the
WebGPU test (SwiftShader's software adapter: minutes of shader compilation on a small CPU).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from neipalette_tf.serving import web_runtime

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PHONE = {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True}
PARITY = 0.01  # |p on the device - p of the service|
FILES = ("model_int8.tflite", "model.tflite")
# the tiny model is built through `request.getfixturevalue` (not when NEIPALETTE_BROWSER_EXPORT names a folder),
# so conftest cannot see it: these tests are marked as its users are
def BROWSER(test):  # noqa: N802
    return pytest.mark.slow(pytest.mark.xdist_group("tiny_model")(test))


def _serve(model, port):
    from neipalette_tf.serving.load_test import wait_healthy

    process = subprocess.Popen([sys.executable, "-m", "neipalette_tf.serve", "--model", str(model), "--port", str(port),
                                "--workers", "1"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(port, process)
    except BaseException:
        process.terminate()
        process.wait(10)
        raise
    return process


@pytest.fixture(scope="module", params=FILES)
def device_server(request):
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    if web_runtime.installed_version() is None:
        pytest.skip("the page's on-device runtime is not installed (python -m neipalette_tf.web_runtime)")
    pytest.importorskip("selenium.webdriver")
    from neipalette_tf.serving.load_test import free_port

    folder = os.environ.get("NEIPALETTE_BROWSER_EXPORT")
    folder = folder and os.path.join(ROOT, folder)
    if not folder:
        folder = str(request.getfixturevalue("explain_export")[1])
    model = os.path.join(folder, request.param)
    if not os.path.isfile(model):
        pytest.skip(f"{model}: not in this export")
    port = free_port()
    process = _serve(model, port)
    try:
        yield f"http://127.0.0.1:{port}/", model
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def phone(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(300)
    try:
        yield driver
    finally:
        driver.quit()


# a Uint8Array as base64, in chunks (spreading a 224 x 224 x 3 array into one call overflows the stack)
B64 = ("(px => { let s = ''; for (let i = 0; i < px.length; i += 8192) "
       "s += String.fromCharCode(...px.subarray(i, i + 8192)); return btoa(s); })")


def _photos(folder):
    """Pairs of photo files the page and the service both read: flat shapes, gradients, odd sizes,
    alpha, a large JPEG (Pillow's reduced-scale decode) and an EXIF-rotated one."""
    yy, xx = np.mgrid[0:517, 0:333]
    gradient = np.stack([80 + xx * 150 // 333, 40 + yy * 180 // 517, 200 - (xx + yy) * 120 // 850], -1).astype(np.uint8)
    files = {}

    def save(name, image, **kw):
        files[name] = folder / name
        image.save(files[name], **kw)

    for name, colour in (("light.png", (235, 205, 120)), ("dark.png", (35, 40, 95)), ("red.png", (200, 40, 50))):
        img = Image.new("RGB", (60, 80), (236, 236, 232))
        img.paste(colour, (12, 10, 48, 70))
        save(name, img)
    save("gradient.png", Image.fromarray(gradient))
    rgba = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    rgba.paste((30, 120, 60, 255), (20, 15, 100, 75))
    save("alpha.png", rgba)
    rng = np.random.default_rng(0)
    big = np.clip(np.kron(gradient, np.ones((5, 7, 1), np.uint8)).astype(int)
                  + rng.integers(-6, 7, (517 * 5, 333 * 7, 3)), 0, 255).astype(np.uint8)
    save("big.jpg", Image.fromarray(big), quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    save("rotated.jpg", Image.fromarray(gradient[:300, :200]), quality=95, exif=exif.tobytes())
    return files, [("light.png", "dark.png"), ("red.png", "gradient.png"), ("alpha.png", "big.jpg"),
                   ("rotated.jpg", "light.png")]


def _server_score(base, top, bottom):
    from neipalette_tf.serving.load_test import multipart

    body, kind = multipart({"top": top.read_bytes(), "bottom": bottom.read_bytes()})
    request = urllib.request.Request(base + "v1/score", data=body, headers={"Content-Type": kind})
    return json.loads(urllib.request.urlopen(request, timeout=120).read())


def _open(phone, base):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    phone.get(base)
    WebDriverWait(phone, 120).until(lambda d: d.find_element(By.ID, "device-note").text)
    assert phone.find_element(By.ID, "mode-device").is_selected(), phone.find_element(By.ID, "device-note").text
    assert phone.execute_script("return window.crossOriginIsolated"), "COOP / COEP headers missing"
    assert phone.execute_script("return navigator.maxTouchPoints") > 0 and \
        phone.execute_script("return window.innerWidth") == PHONE["width"]


def _choose(phone, top, bottom):
    from selenium.webdriver.common.by import By

    from selenium.webdriver.support.ui import WebDriverWait

    for role, path in (("top", top), ("bottom", bottom)):
        phone.find_element(By.ID, f"{role}-input").send_keys(str(path))
    # the previews drawn before the tap (a tap while the layout moves can land beside the button)
    WebDriverWait(phone, 60).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.drop img')].every(i => i.complete) && "
        "document.querySelectorAll('.drop img').length === 2"))


def _score_in_page(phone):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    phone.execute_script("window.neipaletteLastOnDevice = null")
    phone.find_element(By.ID, "score").click()
    WebDriverWait(phone, 300).until(lambda d: d.execute_script("return window.neipaletteLastOnDevice")
                                    or "Error" in d.find_element(By.ID, "status").text)
    status = phone.find_element(By.ID, "status").text
    assert "Error" not in status, status
    return phone.execute_script("return window.neipaletteLastOnDevice")


@BROWSER
def test_the_service_serves_the_model_file_and_the_runtime(device_server):
    base, model = device_server
    from ai_edge_litert.interpreter import Interpreter

    info = json.loads(urllib.request.urlopen(base + "v1/model", timeout=10).read())["on_device"]
    assert info["available"] and info["name"] == os.path.basename(model)
    # the graphs the service scores with: the embedding graph and the head of the same format
    suffix = os.path.basename(model)[len("model"):]
    assert sorted(info["files"]) == ["attention", "head"]
    for part, entry in info["files"].items():
        assert entry == {"name": part + suffix, "url": f"/v1/model/file/{part}"}
        response = urllib.request.urlopen(base + entry["url"][1:], timeout=30)
        served, etag = response.read(), response.headers["ETag"]
        assert response.headers["Cache-Control"] == "no-cache" and etag
        with pytest.raises(urllib.error.HTTPError) as e:  # revalidation: 304 when unchanged
            urllib.request.urlopen(urllib.request.Request(base + entry["url"][1:], headers={"If-None-Match": etag}))
        assert e.value.code == 304
        original = open(os.path.join(os.path.dirname(model), part + suffix), "rb").read()
        # byte for byte the file, but for its unknown (batch) dimensions, fixed at 1
        assert served == web_runtime.fixed_batch(original) and len(served) == len(original) and served != original
        changed = np.flatnonzero(np.frombuffer(served, np.uint8) != np.frombuffer(original, np.uint8))
        assert all(original[i] == 0xFF for i in changed), "only -1 (0xFFFFFFFF) values may change"
        first = Interpreter(model_content=served).get_input_details()[0]
        assert first["shape_signature"][0] == 1 and -1 not in first["shape_signature"]
    page = urllib.request.urlopen(base, timeout=10)
    assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    wasm = urllib.request.urlopen(base + "vendor/wasm/litert_wasm_internal.wasm", timeout=30)
    assert wasm.headers["Content-Type"] == "application/wasm"
    for name in ("vendor/litert.js", "static/on_device.js", "static/letterbox.js"):
        assert urllib.request.urlopen(base + name, timeout=10).headers["Content-Type"].startswith("text/javascript")
    for name in ("vendor/../web_runtime.py", "vendor/%2e%2e/web_runtime.py", "vendor/VERSION", "static/../app.py",
                 "v1/model/file/model_card.json", "v1/model/file/%2e%2e%2fmodel_card.json", "v1/model/file/model"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + name, timeout=10)
        assert e.value.code == 404, name


@BROWSER
def test_page_letterbox_equals_load_image(device_server, phone, tmp_path):
    """The page's pixels are Python's: exact for PNG; JPEGs within the two decoders' rounding."""
    from neipalette_tf.core.preprocessing import load_image

    base, _ = device_server
    files, _ = _photos(tmp_path)
    _open(phone, base)
    size = phone.execute_script("return (await (await fetch('/v1/model')).json()).on_device.image_size")
    for name, path in files.items():
        _choose(phone, path, path)
        got = phone.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import('/static/on_device.js').then(m => m.loadImage(document.getElementById('top-input').files[0],"
            f" {size})).then(px => done({B64}(px)), e => done('error: ' + e.message));")
        assert not got.startswith("error"), got
        page = np.frombuffer(base64.b64decode(got), np.uint8).reshape(size, size, 3).astype(int)
        want = load_image(path, size).astype(int)
        diff = np.abs(page - want)
        if name.endswith(".png"):
            assert diff.max() == 0, f"{name}: {int((diff > 0).sum())} values differ, by up to {diff.max()}"
        else:
            assert diff.mean() < 1.0 and diff.max() <= 12, f"{name}: mean |Δ| {diff.mean():.2f}, max {diff.max()}"
    # the resampling alone, on noisy gradients of awkward sizes (box reduction, both pass orders, padding)
    from neipalette_tf.core.preprocessing import letterbox

    rng = np.random.default_rng(1)
    for w, h, out in ((333, 517, 48), (1000, 700, 32), (10, 300, 64), (3, 2, 48), (401, 399, 96), (49, 48, 48),
                      (640, 480, 224), (97, 2001, 32)):
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.clip(np.stack([xx * 200 // w, yy * 200 // h, (xx + yy) * 100 // (w + h)], -1)
                      + rng.integers(0, 64, (h, w, 3)), 0, 255).astype(np.uint8)
        got = phone.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "const data = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
            "import('/static/letterbox.js').then(m => m.letterbox({w: arguments[1], h: arguments[2], data}, arguments[3]))"
            f".then(px => done({B64}(px)), e => done('error: ' + e.message));",
            base64.b64encode(arr.tobytes()).decode(), w, h, out)
        assert not got.startswith("error"), got
        page = np.frombuffer(base64.b64decode(got), np.uint8).reshape(out, out, 3)
        want = letterbox(Image.fromarray(arr), out)
        assert np.array_equal(page, want), f"{w}x{h} -> {out}: {int((page != want).sum())} values differ"


@BROWSER
def test_on_device_p_equals_the_service_p(device_server, phone, tmp_path):
    from selenium.webdriver.common.by import By

    base, model = device_server
    files, pairs = _photos(tmp_path)
    _open(phone, base)
    worst, backend = 0.0, None
    for top, bottom in pairs:
        api = _server_score(base, files[top], files[bottom])
        _choose(phone, files[top], files[bottom])
        r = _score_in_page(phone)
        assert abs(r["p"] - api["p_harmonious"]) <= PARITY, (top, bottom, r, api["p_harmonious"])
        assert r["label"] == api["label"] or abs(api["p_harmonious"] - 0.5) < PARITY, (top, bottom, r, api)
        for role in ("top", "bottom"):  # the main colour read from the same embedding
            lch, want = r["colours"][role], api["colours"][role]["oklch"]
            assert abs(lch[0] - want[0]) < 0.01 and abs(lch[1] - want[1]) < 0.01, (role, lch, want)
        worst, backend = max(worst, abs(r["p"] - api["p_harmonious"])), r["backend"]
        verdict = phone.find_element(By.ID, "verdict").text
        assert verdict == f"{r['label'].capitalize()} (p = {r['p']:.2f})"
    shown = phone.find_element(By.ID, "backend").text
    assert shown.startswith("Backend: LiteRT.js") and "head" + os.path.basename(model)[len("model"):] in shown, shown
    assert phone.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    shot = tmp_path / f"on-device-{os.path.basename(model)}.png"
    assert phone.save_screenshot(str(shot)) and shot.stat().st_size > 1000
    # time per pair in the page: decode + letterbox of both photos + the model, median of 20 after a first run
    timing = phone.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const f = (r) => document.getElementById(r + '-input').files[0];"
        "Promise.all([import('/static/on_device.js'), fetch('/v1/model').then(r => r.json())])"
        ".then(([m, info]) => m.bench(info.on_device, f('top'), f('bottom'), 20)).then(done, e => done({error: e.message}));")
    assert "error" not in timing, timing
    from neipalette_tf.core.cpu_info import cpu_summary

    print(f"\n{os.path.basename(model)} in Chromium ({backend}), phone viewport: max |Δp| {worst:.5f} over "
          f"{len(pairs)} pairs; per pair {timing['pair_ms_median']:.1f} ms median (model "
          f"{timing['model_ms_median']:.1f} ms), first {timing['pair_ms_first']:.1f} ms; screenshot {shot}\n"
          f"Chromium {phone.capabilities.get('browserVersion')}, {phone.execute_script('return navigator.hardwareConcurrency')} "
          f"hardware threads; {cpu_summary()}")


@BROWSER
def test_float32_page_with_webgpu_scores_on_what_runs_every_op(device_server, tmp_path):
    """Chromium with a WebGPU adapter (SwiftShader, software): a float32 file goes to WebGPU only if
    every op of its graphs can (LiteRT.js runs a partly delegated graph only in its JSPI build); the
    page says which backend ran and keeps the service's p."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    base, model = device_server
    if not os.path.basename(model) == "model.tflite":
        pytest.skip("WebGPU is tried for float32 files only")
    if os.environ.get("NEIPALETTE_BROWSER_WEBGPU") != "1":
        # on a loaded 2-core machine SwiftShader's shader compilation blocked the page past chromedriver's
        # 120 s for the ResNet18 test model (it passed in 36 s on MobileNetV3-Small)
        pytest.skip("software WebGPU is slow on a small CPU: set NEIPALETTE_BROWSER_WEBGPU=1 to run it")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'p'}",
                 "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
                 "--use-webgpu-adapter=swiftshader", "--disable-vulkan-surface"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    phone = webdriver.Chrome(service=Service(DRIVER), options=options)
    phone.set_script_timeout(300)
    try:
        phone.get(base)
        adapter = phone.execute_async_script(
            "const done = arguments[0]; navigator.gpu ? navigator.gpu.requestAdapter().then(a => done(!!a), "
            "() => done(false)) : done(false);")
        if not adapter:
            pytest.skip("this Chromium has no WebGPU adapter, even SwiftShader's")
        files, pairs = _photos(tmp_path)
        _open(phone, base)
        top, bottom = pairs[1]
        api = _server_score(base, files[top], files[bottom])
        _choose(phone, files[top], files[bottom])
        r = _score_in_page(phone)
        assert abs(r["p"] - api["p_harmonious"]) <= PARITY, (r, api["p_harmonious"])
        assert r["backend"].startswith("LiteRT.js WebGPU") or "WebGPU" in r["backend"], r["backend"]
        print(f"\n{os.path.basename(model)} with a WebGPU adapter (SwiftShader): {r['backend']}; "
              f"|Δp| {abs(r['p'] - api['p_harmonious']):.5f}")
    finally:
        phone.quit()


def test_vendor_file_stays_inside_the_folder(tmp_path):
    vendor = tmp_path / "vendor"
    (vendor / "wasm").mkdir(parents=True)
    (vendor / "wasm" / "a.wasm").write_bytes(b"\0asm")
    (vendor / "litert.js").write_text("//")
    (tmp_path / "secret.js").write_text("//")
    (vendor / "link.js").symlink_to(tmp_path / "secret.js")
    assert web_runtime.vendor_file("wasm/a.wasm", vendor) == str(vendor / "wasm" / "a.wasm")
    assert web_runtime.vendor_file("litert.js", vendor) == str(vendor / "litert.js")
    for name in ("../secret.js", "wasm/../../secret.js", "/etc/passwd", "link.js", "wasm", "", "wasm//a.wasm",
                 ".hidden.js", "wasm\\a.wasm"):
        assert web_runtime.vendor_file(name, vendor) is None, name


def test_install_refuses_a_vendor_folder_it_did_not_write(tmp_path):
    from neipalette_tf.core.errors import UserError

    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not written by this installer"):
        web_runtime.install(vendor=str(vendor), npm="/bin/false", log=lambda *_: None)
    assert (vendor / "mine.txt").read_text() == "keep"


def test_onnx_service_says_on_device_is_unavailable(explain_export):
    """An ONNX service: the page's on-device mode is off, with the reason, and no file is served."""
    from neipalette_tf.serving.load_test import free_port

    port = free_port()
    process = _serve(explain_export[1] / "model.onnx", port)
    try:
        info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=10).read())["on_device"]
        assert not info["available"] and "model.onnx" in info["reason"] and info["files"] is None
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model/file/head", timeout=10)
        assert e.value.code == 404 and ".tflite" in json.loads(e.value.read())["error"]
    finally:
        process.terminate()
        process.wait(10)
