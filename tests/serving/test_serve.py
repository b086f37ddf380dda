"""The web service: API through FastAPI's test client, bounds, TF-free start, a small load run."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

pytest.importorskip("fastapi")


def _jpeg(colour, size=(40, 52)):
    img = np.empty((size[1], size[0], 3), np.uint8)
    img[:] = (236, 236, 232)
    img[8:44, 8:32] = colour
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


RED, GREEN, NAVY = _jpeg((200, 30, 40)), _jpeg((40, 150, 60)), _jpeg((30, 40, 70))


@pytest.fixture(scope="module")
def client(explain_export):
    from fastapi.testclient import TestClient

    from neipalette_tf.serving.app import create_app

    app = create_app(explain_export[1] / "model.onnx", workers=2, max_upload_mb=0.05, max_pixels=1_000_000)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_and_model_card(client):
    assert client.get("/healthz").json() == {"status": "ok", "model": "model.onnx", "format": "onnx",
                                             "pid": os.getpid()}  # which process answered (serve --processes)
    card = client.get("/v1/model").json()
    assert card["format"] == "onnx" and card["attention"] and card["card"]["image_size"] == 32
    assert card["limits"]["max_upload_bytes"] == int(0.05 * 1024 * 1024) and card["limits"]["workers"] == 2


def test_score_returns_the_explanation(client):
    r = client.post("/v1/score", files={"top": ("t.jpg", RED), "bottom": ("b.jpg", GREEN)},
                    data={"images": "1", "suggest": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0.0 <= body["p_harmonious"] <= 1.0 and body["label"] in ("harmonious", "clashing")
    assert body["colours"]["top"]["hex"].startswith("#") and body["colours"]["bottom"]["name"]
    assert body["rule"]["reading"].split(":")[0] in ("harmonious", "clashing") and body["explanation"]
    assert body["images"]["top"].startswith("data:image/png;base64,")
    assert len(body["images"]["previews"]) == len(body["suggestions"])
    for s in body["suggestions"]:
        assert {"role", "colour", "p_head", "p_pixels", "delta_e", "rule_harmonious"} <= set(s)
    plain = client.post("/v1/score", files={"top": ("t.jpg", RED), "bottom": ("b.jpg", GREEN)}).json()
    assert "images" not in plain and plain["p_harmonious"] == pytest.approx(body["p_harmonious"], abs=1e-6)


def test_rank_orders_garments_and_diversifies(client):
    garments = [("garments", (f"g{i}.jpg", g)) for i, g in enumerate([GREEN, NAVY, GREEN, RED])]
    r = client.post("/v1/rank", files=[("query", ("q.jpg", RED)), *garments], data={"k": "4"})
    assert r.status_code == 200, r.text
    ranking = r.json()["ranking"]
    assert [x["rank"] for x in ranking] == [1, 2, 3, 4]
    ps = [x["p_harmonious"] for x in ranking]
    assert ps == sorted(ps, reverse=True) and {x["file"] for x in ranking} == {"g0.jpg", "g1.jpg", "g2.jpg", "g3.jpg"}
    from neipalette_tf.ranking.diversity import mmr

    by_index = sorted(ranking, key=lambda x: x["index"])
    expected = mmr([x["p_harmonious"] for x in by_index], [x["colour"]["oklab"] for x in by_index], 2)
    r = client.post("/v1/rank", files=[("query", ("q.jpg", RED)), *garments], data={"k": "2", "diverse": "1"})
    assert r.json()["diverse"] and [x["index"] for x in r.json()["ranking"]] == expected
    r = client.post("/v1/rank", files=[("query", ("q.jpg", GREEN)), *garments], data={"role": "bottom", "k": "9"})
    assert r.status_code == 200 and r.json()["role"] == "bottom" and len(r.json()["ranking"]) == 4


@pytest.mark.parametrize("files,data,status,field", [
    ({"top": ("t.jpg", RED)}, None, 422, "bottom"),
    ({"top": ("t.jpg", b"not an image"), "bottom": ("b.jpg", GREEN)}, None, 422, "top"),
    ({"top": ("t.jpg", RED), "bottom": ("b.jpg", b"")}, None, 422, "bottom"),
    ({"top": ("t.jpg", RED), "bottom": ("b.jpg", RED[: len(RED) // 2])}, None, 422, "bottom"),
    ({"top": ("t.jpg", b"\xff" * 60_000), "bottom": ("b.jpg", GREEN)}, None, 413, "top"),
    ({"bottom": ("b.jpg", GREEN)}, {"top": "text, not a file"}, 422, "top"),
])
def test_bad_input_is_a_json_error_naming_the_field(client, files, data, status, field):
    r = client.post("/v1/score", files=files, data=data)
    assert r.status_code == status and r.json()["field"] == field and field in r.json()["error"], r.text


def test_bounds_on_body_pixels_and_type(client):
    big = client.post("/v1/score", files={"top": ("t.jpg", b"\0" * 200_000), "bottom": ("b.jpg", GREEN)})
    assert big.status_code == 413 and big.json()["field"] == "body"
    buf = io.BytesIO()
    Image.new("RGB", (1100, 1000), (10, 20, 30)).save(buf, format="PNG")  # 1.1 MP, a few KB
    r = client.post("/v1/score", files={"top": ("t.png", buf.getvalue()), "bottom": ("b.jpg", GREEN)})
    assert r.status_code == 422 and "above the limit" in r.json()["error"] and r.json()["field"] == "top"
    r = client.post("/v1/score", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 415 and r.json()["field"] == "body"
    r = client.post("/v1/score", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = client.post("/v1/rank", files=[("query", ("q.jpg", RED))], data={"role": "hat"})
    assert r.status_code == 422 and r.json()["field"] == "role"
    r = client.post("/v1/rank", files=[("query", ("q.jpg", RED))])
    assert r.status_code == 422 and r.json()["field"] == "garments"
    assert client.get("/healthz").status_code == 200  # still serving


def test_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in r.text and 'id="top-input"' in r.text and "/v1/score" in r.text


def test_service_never_imports_tensorflow(explain_export):
    code = ("import sys; from neipalette_tf.serving import app as serve; from fastapi.testclient import TestClient; "
            f"c = TestClient(serve.create_app({str(explain_export[1] / 'model.onnx')!r}, workers=1)); "
            "assert c.get('/healthz').status_code == 200; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]


def test_serve_refuses_tensorflow_formats_in_one_line(explain_export, capsys):
    from neipalette_tf.commands import serve
    from neipalette_tf.core import cli

    with pytest.raises(SystemExit) as e:
        cli.run(serve.main, ["--model", str(explain_export[0] / "model.keras")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "without TensorFlow" in err and "\n" not in err


def test_small_load_run_has_no_errors(explain_export, capsys):
    """A short version of `python -m neipalette_tf.serve_bench` (the figures are in docs/explain.md)."""
    from neipalette_tf.commands import serve_bench
    from neipalette_tf.core import cli
    from neipalette_tf.serving.load_test import MAX_MEMORY_GROWTH

    rc = cli.run(serve_bench.main, ["--model", str(explain_export[1] / "model.onnx"), "--clients", "4",
                                    "--requests", "10", "--warmup", "4", "--processes", "2", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert r["errors"] == 0 and r["requests"] == 40 and r["server_alive"], r
    assert r["processes"] == 2 and r["server_pids_answering"] == 2  # `serve --processes 2`: both answer
    assert sum(r["connections_per_process"]) == 4 and 1 <= len(r["connections_per_process"]) <= 2, r
    assert r["p99_ms"] > 0 and r["rss_before_mb"] > 0
    assert rc == (1 if (r["memory_growth"] or 0) > MAX_MEMORY_GROWTH else 0)
