"""The service's refusals, in process (FastAPI's test client): every one JSON, none leaking the server.

Malformed multipart bodies, fields of the wrong kind in every route, the
per-request pixel budget (refused before decoding), the whole-request time
limit (503, slot freed), no redirect built from `Host`, no server paths in
answers; and a property test of random multipart bodies. The connection-level
attacks against a running server are in test_hostile.py.
"""

import io
import json
import re
import threading
import time
import uuid

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Exception class names, tracebacks, reprs of Python objects (the multipart parser's UploadFile, Headers ...).
LEAK = re.compile(r"Traceback|File \"|[A-Za-z]*(Error|Exception)\b|object at 0x|UploadFile|FormData|Headers\(|"
                  r"<[A-Za-z_.]+[ >]")
# An absolute POSIX path of two or more components (answers name files, never where the server keeps them).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.-]+/)+[\w.-]*")
STATUSES = {400, 408, 413, 415, 422}


def _image(fmt, size=(40, 52), colour=(200, 30, 40)):
    img = np.empty((size[1], size[0], 3), np.uint8)
    img[:] = (236, 236, 232)
    img[size[1] // 6: -size[1] // 6, size[0] // 5: -size[0] // 5] = colour
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


RED, GREEN = _image("JPEG"), _image("PNG", colour=(40, 150, 60))


def assert_clean_refusal(response, status=None, field=None, server_paths=()):
    """A refusal: JSON {"error", "field"} only, with no exception text, repr or server path in it."""
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"error", "field"} and isinstance(body["error"], str) and body["error"], body
    assert not LEAK.search(response.text), response.text
    assert not ABSOLUTE_PATH.search(body["error"]), response.text
    for path in server_paths:
        assert path not in response.text
    if status is not None:
        assert response.status_code == status, response.text
    if field is not None:
        assert body["field"] == field, response.text
    if response.status_code in (429, 503):
        assert int(response.headers["retry-after"]) >= 1
    return body


@pytest.fixture(scope="module")
def served(explain_export):
    """(test client, server paths that must not leak) of an app with small limits."""
    from fastapi.testclient import TestClient

    from conftest import ROOT
    from neipalette_tf.serving.app import create_app

    app = create_app(explain_export[1] / "model.onnx", workers=1, max_upload_mb=0.2, max_pixels=1_000_000,
                     max_request_pixels=2_500_000)
    paths = (str(explain_export[1]), str(explain_export[0]), str(ROOT))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, paths


def _multipart(parts, boundary=None):
    """A multipart body from (name, filename or None, content bytes) parts."""
    boundary = boundary or uuid.uuid4().hex
    out = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_answers_name_files_not_server_paths(served):
    client, paths = served
    card = client.get("/v1/model").json()
    assert card["model"] == "model.onnx" and card["card"]["image_size"] == 32
    text = json.dumps(card)
    assert not ABSOLUTE_PATH.search(text) and not any(p in text for p in paths), text[:2000]
    assert card["card"]["source"]["run"] == paths[1].rstrip("/").rsplit("/", 1)[-1]  # the run folder's name
    r = client.post("/v1/score", files={"top": ("t.jpg", RED), "bottom": ("b.png", GREEN)}, data={"images": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["model"]["path"] == "model.onnx" and not any(p in r.text for p in paths)
    assert r.json()["images"]["top"].startswith("data:image/png;base64,")  # pictures pass unchanged


@pytest.mark.parametrize("method,path,status", [
    ("POST", "/v1/score/", 404), ("GET", "/v1/rank/", 404), ("GET", "/nowhere", 404),
    ("GET", "/v1/score", 405), ("POST", "/healthz", 405), ("DELETE", "/v1/model", 405),
])
def test_no_redirect_from_host_and_json_for_unknown_routes(served, method, path, status):
    client, paths = served
    r = client.request(method, path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert_clean_refusal(r, status, server_paths=paths)
    assert "location" not in r.headers and "evil.example" not in r.text


MALFORMED = {
    "no boundary": (b"--x\r\nContent-Disposition: form-data; name=\"top\"\r\n\r\nabc\r\n--x--\r\n",
                    "multipart/form-data"),
    "wrong boundary": (b"--y\r\nContent-Disposition: form-data; name=\"top\"\r\n\r\nabc\r\n--y--\r\n",
                       "multipart/form-data; boundary=x"),
    "cut short": (b"--x\r\nContent-Disposition: form-data; name=\"top\"; filename=\"t.jpg\"\r\n\r\n" + RED[:50],
                  "multipart/form-data; boundary=x"),
    "garbage": (bytes(range(256)) * 4, "multipart/form-data; boundary=x"),
    "part without name": (b"--x\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--x--\r\n",
                          "multipart/form-data; boundary=x"),
    "part without headers": (b"--x\r\n\r\nabc\r\n--x--\r\n", "multipart/form-data; boundary=x"),
    "broken header line": (b"--x\r\nContent-Disposition form-data name top\r\n\r\nabc\r\n--x--\r\n",
                           "multipart/form-data; boundary=x"),
    "empty body": (b"", "multipart/form-data; boundary=x"),
    "only the end": (b"--x--\r\n", "multipart/form-data; boundary=x"),
    "non-UTF-8 name": (b"--x\r\nContent-Disposition: form-data; name=\"\xff\xfe\"\r\n\r\nabc\r\n--x--\r\n",
                       "multipart/form-data; boundary=x"),
    "boundary of 300 chars": (b"--" + b"b" * 300 + b"--\r\n", "multipart/form-data; boundary=" + "b" * 300),
    "text field above 1 MB": _multipart([("role", None, b"t" * (1024 * 1024 + 10))]),
    "70 files": _multipart([("garments", f"g{i}.jpg", b"x") for i in range(70)]),
    "20 text fields": _multipart([(f"f{i}", None, b"1") for i in range(20)]),
    "json, not multipart": (b'{"top": 1}', "application/json"),
    "no content type": (b"abc", ""),
}


@pytest.mark.parametrize("route", ["/v1/score", "/v1/rank"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_multipart_is_a_clean_json_refusal(served, route, case):
    client, paths = served
    body, ctype = MALFORMED[case]
    r = client.post(route, content=body, headers={"content-type": ctype} if ctype else {})
    assert r.status_code in STATUSES, (case, r.status_code, r.text)
    assert_clean_refusal(r, server_paths=paths)


SCORE_OK = [("top", "t.jpg", RED), ("bottom", "b.png", GREEN)]
RANK_OK = [("query", "q.jpg", RED), ("garments", "g0.png", GREEN), ("garments", "g1.jpg", RED)]


def _replace(parts, name, part):
    return [p for p in parts if p[0] != name] + [part]


@pytest.mark.parametrize("route,parts,field", [
    ("/v1/score", _replace(SCORE_OK, "top", ("top", None, b"a text")), "top"),
    ("/v1/score", _replace(SCORE_OK, "bottom", ("bottom", None, b"a text")), "bottom"),
    ("/v1/score", SCORE_OK + [("images", "i.jpg", RED)], "images"),
    ("/v1/score", SCORE_OK + [("suggest", "s.jpg", RED)], "suggest"),
    ("/v1/score", SCORE_OK + [("target", "t.txt", b"0.8")], "target"),
    ("/v1/score", SCORE_OK + [("target", None, b"high")], "target"),
    ("/v1/score", SCORE_OK + [("target", None, b"nan")], "target"),
    ("/v1/score", SCORE_OK + [("images", None, b"maybe")], "images"),
    ("/v1/score", SCORE_OK + [("top", "t2.jpg", RED)], "top"),
    ("/v1/score", _replace(SCORE_OK, "top", ("top", "t.jpg", b"")), "top"),
    ("/v1/score", _replace(SCORE_OK, "top", ("top", "t.jpg", b"GIF89a" + b"\0" * 40)), "top"),
    ("/v1/score", _replace(SCORE_OK, "bottom", ("bottom", "b.jpg", RED[: len(RED) // 2])), "bottom"),
    ("/v1/rank", RANK_OK + [("k", "k.txt", b"3")], "k"),
    ("/v1/rank", RANK_OK + [("k", None, b"three")], "k"),
    ("/v1/rank", RANK_OK + [("k", None, b"0")], "k"),
    ("/v1/rank", RANK_OK + [("k", None, b"9" * 5000)], "k"),
    ("/v1/rank", RANK_OK + [("role", "r.txt", b"top")], "role"),
    ("/v1/rank", RANK_OK + [("role", None, b"hat")], "role"),
    ("/v1/rank", RANK_OK + [("diverse", "d.txt", b"1")], "diverse"),
    ("/v1/rank", _replace(RANK_OK, "query", ("query", None, b"a text")), "query"),
    ("/v1/rank", RANK_OK + [("garments", None, b"a text")], "garments[2]"),
    ("/v1/rank", [p for p in RANK_OK if p[0] != "query"], "query"),
    ("/v1/rank", [p for p in RANK_OK if p[0] != "garments"], "garments"),
])
def test_fields_of_the_wrong_kind_are_422_naming_the_field(served, route, parts, field):
    client, paths = served
    body, ctype = _multipart(parts)
    r = client.post(route, content=body, headers={"content-type": ctype})
    assert_clean_refusal(r, 422, field, paths)


def _png(w, h):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (10, 120, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_pixel_budget_per_request_is_checked_before_decoding(served, monkeypatch):
    from neipalette_tf.serving import images

    client, paths = served
    decoded = []
    real = images.load_image
    monkeypatch.setattr(images, "load_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    big = _png(1000, 1000)  # 1 MP each, a few KB: the budget is 2.5 MP per request
    files = [("query", ("q.jpg", RED))] + [("garments", (f"g{i}.png", big)) for i in range(3)]
    r = client.post("/v1/rank", files=files)
    body = assert_clean_refusal(r, 413, "garments[2]", paths)
    assert "per request" in body["error"] and decoded == []  # refused from the headers: nothing decoded
    r = client.post("/v1/score", files={"top": ("t.png", _png(1001, 1000)), "bottom": ("b.jpg", RED)})
    assert_clean_refusal(r, 422, "top", paths)  # one image above the per-image limit
    assert decoded == []
    # A 1000 x 1000 JPEG decodes at 1/8 scale here (32 px model): 5 of them fit the budget, and are decoded.
    buf = io.BytesIO()
    Image.new("RGB", (1000, 1000), (200, 30, 40)).save(buf, format="JPEG")
    files = [("query", ("q.jpg", RED))] + [("garments", (f"g{i}.jpg", buf.getvalue())) for i in range(5)]
    r = client.post("/v1/rank", files=files, data={"k": "5"})
    assert r.status_code == 200 and len(r.json()["ranking"]) == 5 and len(decoded) == 6, r.text


def test_whole_request_time_limit_answers_503_and_frees_the_slot(explain_export, monkeypatch):
    from fastapi.testclient import TestClient

    from neipalette_tf.serving import images
    from neipalette_tf.serving.app import create_app

    app = create_app(explain_export[1] / "model.onnx", workers=1, timeout=1.5, max_in_flight=1)
    release = threading.Event()
    real = images.Decoder._decode_one

    def slow(self, data, field):  # a decode that takes long (a huge image) until released (at most 10 s)
        release.wait(10)
        return real(self, data, field)

    monkeypatch.setattr(images.Decoder, "_decode_one", slow)
    files = {"top": ("t.jpg", RED), "bottom": ("b.png", GREEN)}
    with TestClient(app, raise_server_exceptions=False) as client:
        release.set()
        assert client.post("/v1/score", files=files).status_code == 200  # warm-up
        release.clear()
        start = time.monotonic()
        r = client.post("/v1/score", files=files)
        elapsed = time.monotonic() - start
        body = assert_clean_refusal(r, 503, None)
        assert "1.5 s" in body["error"] and elapsed < 5.0, (elapsed, body)
        release.set()
        r = client.post("/v1/score", files=files)
        assert r.status_code == 200, r.text  # the one slot (max_in_flight=1) was freed


FIELDS = ["top", "bottom", "query", "garments", "k", "role", "target", "images", "suggest", "diverse", "x", ""]
CONTENTS = [RED, GREEN, b"", b"not an image", b"1", b"0", b"top", b"bottom", b"\xff\xfe\x00", RED[:40],
            _png(1200, 1000)]


@st.composite
def multipart_bodies(draw):
    boundary = draw(st.sampled_from(["x", uuid.uuid4().hex, "a" * 70, "-=-", "b\u00e9"]))
    parts = draw(st.lists(st.tuples(st.sampled_from(FIELDS), st.one_of(st.none(), st.sampled_from(
        ["f.jpg", "", "a\"b.png", "../../etc/passwd", "\u00e9.png"])), st.one_of(
        st.sampled_from(CONTENTS), st.binary(max_size=64))), max_size=6))
    out = []
    for name, filename, content in parts:
        head = f'Content-Disposition: form-data; name="{name}"' + (
            "" if filename is None else f'; filename="{filename}"')
        if draw(st.booleans()):
            head += "\r\nContent-Type: " + draw(st.sampled_from(["image/jpeg", "text/plain", "", "x/y; q=1"]))
        out.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(out) + (f"--{boundary}--\r\n".encode() if draw(st.booleans()) else b"")
    if draw(st.booleans()) and body:
        body = body[: draw(st.integers(0, len(body)))]
    ctype = draw(st.sampled_from([f"multipart/form-data; boundary={boundary}",
                                  f"multipart/form-data; boundary=\"{boundary}\"",
                                  "multipart/form-data", "multipart/form-data; boundary=other", "text/plain"]))
    return body, ctype


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(["/v1/score", "/v1/rank"]), request=multipart_bodies())
def test_random_multipart_bodies_get_json_and_never_an_internal_error(served, route, request):
    client, paths = served
    body, ctype = request
    r = client.post(route, content=body, headers={"content-type": ctype.encode("utf-8")})
    if r.status_code == 200:
        assert r.headers["content-type"].startswith("application/json") and not any(p in r.text for p in paths)
        assert "p_harmonious" in r.text
    else:
        assert r.status_code in STATUSES, (r.status_code, r.text)
        assert_clean_refusal(r, server_paths=paths)
