"""`python -m neipalette_tf.serve --processes 2` on 127.0.0.1 under hostile clients, with an ONNX and a TFLite model.

The attacks are `neipalette_tf/serving/attacks.py` (also `serve_bench --attacks`).
Each runs while a watcher polls `/healthz` (every answer 200 within 1 s)
and sends a well-formed `POST /v1/score` every 0.5 s from its own
connections (each 200 within 2 s): the issue's goals, generous for a loaded
2-core machine where one takes ~50 ms. The server runs with the short
limits of `attacks.LIMITS` (headers and body gaps 1.5 s, a request 6 s, 4
requests in progress and 40 connections per process) so that the attacks
take seconds.
"""

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httptools")

from neipalette_tf.serving import attacks  # noqa: E402

LIMITS = attacks.LIMITS


@pytest.fixture(scope="module", params=["model.onnx", "model_int8.tflite"])
def server(request, explain_export, tmp_path_factory):
    """(port, server process, its log file) of `serve --processes 2` with short limits, for each model format."""
    from neipalette_tf.serving.load_test import start_server, stop_server, wait_healthy

    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    with open(log, "wb") as stderr:  # a file, not a pipe nobody reads: the server must never block on its log
        port, process = start_server(str(explain_export[1] / request.param), 2, 1, attacks.server_flags(),
                                     stderr=stderr)
    try:
        wait_healthy(port, process, processes=2)
        yield port, process, log
    finally:
        stop_server(process)


def watched(port, attack, *args, busy_ok=False):
    """Run `attack(port, *args)` under a watcher; assert the goals held throughout; return what it saw.

    An attack whose only miss is a well-formed `/v1/score` answered 200 but late is run once more and
    judged on that run: in the full suite the other xdist worker may be training beside it on the same
    2 cores (one such answer took 2.2 s against the 2 s goal, 2026-12-06), which is the machine, not
    the service. A late answer in both runs, a wrong status or a slow `/healthz` fails at once.
    """
    for attempt in (1, 2):
        with attacks.Watcher(port) as watcher:
            result = attack(port, *args)
        w = watcher.summary(busy_ok)
        late_only = w["score_failed"] and all(status == 200 for status, _ in w["score_failed"])
        if not (late_only and not w["health_failed"] and attempt == 1):
            break
    assert w["health_n"] >= 3 and w["score_n"] >= 1, w
    assert not w["health_failed"], f"/healthz not 200 within {attacks.HEALTH_WITHIN_S} s: {w['health_failed']}"
    assert not w["score_failed"], f"/v1/score not 200 within {attacks.SCORE_WITHIN_S} s: {w['score_failed']}"
    assert not attacks.not_clean(result), attacks.not_clean(result)  # every refusal the service's JSON
    return result


def test_kept_alive_connections_are_evened_out(server):
    """8 kept-alive clients end 4/4 on the 2 processes, whichever way the kernel first placed them: a process
    over its share answers `Connection: close` and the client reconnects (`neipalette_tf.serving.balance`)."""
    import collections
    import http.client
    import json

    conns = [http.client.HTTPConnection("127.0.0.1", server[0], timeout=5) for _ in range(8)]
    rounds = []
    try:
        for _ in range(40):
            held, closes = [], 0
            for conn in conns:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                held.append(json.loads(response.read())["pid"])
                closes += response.will_close  # http.client opens a new connection for the next request
            rounds.append((sorted(collections.Counter(held).values()), closes))
            if not closes and len(rounds) > 1:
                break
    finally:
        for conn in conns:
            conn.close()
    assert rounds[-1] == ([4, 4], 0), rounds
    first = rounds[0][0]
    assert first == [4, 4] or sum(c for _, c in rounds) > 0, rounds  # an uneven start was evened out by closes


def test_slowloris_connections_are_closed_and_do_not_starve_health(server):
    """80 connections (2 x the connection limit) send a never-ending header, a byte each 0.1 s."""
    r = watched(server[0], attacks.slowloris, 80)
    assert r["closed"] == 80 and r["closed_by_s"] < LIMITS["header_timeout"] + 4, r
    assert r["answers"] and all(s == 408 and body["field"] == "headers" for s, body in r["answers"]), r


def test_stalled_and_dripping_uploads_are_cut_off(server):
    """6 uploads stop after their first bytes (408 after the body gap); 1 drips a byte each 0.5 s (503 at --timeout)."""
    r = watched(server[0], attacks.stalled_uploads, 6)
    assert r["closed"] == 6 and r["stalled_closed_by_s"] < LIMITS["body_timeout"] + 4, r
    assert [s for s, _ in r["stalled_answers"]] == [408] * 6
    assert all(body["field"] == "body" for _, body in r["stalled_answers"])
    assert [s for s, _ in r["drip_answers"]] == [503] and "longer than" in r["drip_answers"][0][1]["error"]
    assert LIMITS["timeout"] - 0.5 < r["drip_closed_s"] < LIMITS["timeout"] + 4, r


def test_huge_and_numerous_headers_are_refused_early(server):
    """A 64 MiB header is cut at the header limit (431, memory flat); 150 header lines are refused too."""
    port, process, _ = server
    r = watched(port, attacks.huge_headers, process.pid)
    assert r["sent_bytes"] < 16 * 2**20, f"the server kept reading a header past {r['sent_bytes']} bytes"
    assert [s for s, _ in r["answers"]] == [431, 431] and all(b["field"] == "headers" for _, b in r["answers"])
    assert r["rss_growth_mb"] is None or r["rss_growth_mb"] < 64, r


def test_many_large_images_do_not_block_the_server(server):
    """Two concurrent /v1/rank of 9 flat 10-MP PNGs each (~90 MP to decode, under the budget) and one over it."""
    r = watched(server[0], attacks.large_images, (9, 9, 10))
    assert [(x["garments"], x["status"]) for x in r] == [(9, 200), (9, 200), (10, 413)], r
    assert r[0]["ranked"] == r[1]["ranked"] == 5
    assert r[2]["refusal"]["field"] == "garments[9]"  # 10 x 10 MP + the query: above 100 MP, from the headers


def test_concurrency_limit_answers_json_503(server):
    """16 well-formed /v1/rank at once against 4 requests in progress per process: the rest get JSON 503."""
    r = watched(server[0], attacks.burst, 16, busy_ok=True)
    statuses = sorted(str(s) for s, _ in r)
    assert set(statuses) <= {"200", "503"} and "200" in statuses and "503" in statuses, statuses
    reasons = [body["error"] for s, body in r if s == 503]
    assert any("busy" in x for x in reasons) and all("busy" in x or "longer than" in x for x in reasons), reasons


def test_malformed_http_and_unknown_routes_answer_json(server):
    r = watched(server[0], attacks.malformed_http)
    assert [x["status"] for x in r] == [400, 400, 400, 404] and all(x["closed"] for x in r[:3]), r
    assert r[3]["location"] is None


def test_the_attacks_left_no_traceback_in_the_server_log(server):
    """Run last for each model: nothing above reached uvicorn's "Exception in ASGI application"."""
    port, process, log = server
    assert process.poll() is None
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]
