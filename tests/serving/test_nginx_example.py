"""The example nginx site (neipalette_tf/serving/deploy/nginx.conf): valid, and its own refusals are the service's JSON.

Runs nginx itself on 127.0.0.1 (a free port, a temporary prefix) with the
service's upstream pointed at a closed port; skipped where nginx is not
installed (`apt-get install nginx-light`).
"""

import http.client
import json
import re
import shutil
import signal
import subprocess
import time

import pytest
from conftest import ROOT

NGINX = shutil.which("nginx") or (shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))
SITE = ROOT / "neipalette_tf" / "serving" / "deploy" / "nginx.conf"
pytestmark = pytest.mark.skipif(not NGINX, reason="nginx is not installed")


def test_every_answer_nginx_writes_itself_is_the_services_json():
    text = SITE.read_text(encoding="utf-8")
    bodies = re.findall(r"return (\d{3}) '([^']*)';", text)
    assert len(bodies) == 6
    for status, body in bodies:
        assert set(json.loads(body)) == {"error", "field"}, (status, body)


@pytest.fixture
def nginx(tmp_path):
    from neipalette_tf.serving.load_test import free_port

    port, closed = free_port(), free_port()  # nothing listens on `closed`: the service is down
    site = SITE.read_text(encoding="utf-8").replace("listen 80;", f"listen 127.0.0.1:{port};").replace(
        "127.0.0.1:8000", f"127.0.0.1:{closed}")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/logs/error.log warn;
daemon off;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/site.conf;
}}
""")
    command = [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    check = subprocess.run(command + ["-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ask(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _json_refusal(status, headers, body, expected):
    assert status == expected and headers["content-type"] == "application/json", (status, headers, body)
    assert set(json.loads(body)) == {"error", "field"}
    assert headers.get("server") in (None, "nginx")  # no version (server_tokens off)
    if status in (429, 503):
        assert headers["retry-after"] == "1"


def test_nginx_refuses_in_json(nginx):
    _json_refusal(*_ask(nginx, "GET", "/healthz"), 503)  # the service is down
    _json_refusal(*_ask(nginx, "POST", "/v1/score", b"x" * (27 * 2**20), {"Content-Type": "text/plain"}), 413)
    _json_refusal(*_ask(nginx, "GET", "/healthz", headers={"X-Big": "a" * 20000}), 400)
    statuses = [_ask(nginx, "GET", "/v1/model")[0] for _ in range(60)]  # 20/s, burst 40
    assert 429 in statuses and set(statuses) <= {429, 503}, statuses
    _json_refusal(*_ask(nginx, "GET", "/v1/model"), 429)
