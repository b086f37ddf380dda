"""Load-test the web service: `python -m neipalette_tf.serve_bench --model artifacts/X/model.onnx`.

    python -m neipalette_tf.serve_bench --model MODEL [--clients 8] [--requests 200] [--warmup 80]
        [--workers N] [--processes P] [--images] [--suggest] [--json]

Starts `python -m neipalette_tf.serve` on 127.0.0.1 (a free port) in its
own process, waits for `/healthz` (from every server process), sends
`--warmup` requests spread over the clients' connections, reads the
server's resident memory (VmRSS, its processes summed), then runs `--clients` concurrent clients
(threads, one keep-alive connection each) that each send `--requests`
`POST /v1/score` requests with a pair of garment photos (drawn here,
different per request), and reads the memory again. Prints p50 / p90 /
p99 / max latency, throughput, errors (any status but 200, or a broken
connection) and the memory growth; judges the goals (p99 <= 100 ms, 0
errors, growth <= 10 %). Exit status 1 when a request failed or memory
grew above the bound (the latency goal is reported, not enforced: it
depends on the machine).
"""

import argparse
import json
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.serving.load_test import GOAL_P99_MS, MAX_MEMORY_GROWTH, bench


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.serve_bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model.onnx, model*.tflite or an export folder")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=200, help="requests per client")
    p.add_argument("--warmup", type=int, default=80, help="requests before measuring, spread over the clients")
    p.add_argument("--workers", type=int, help="the server's --workers")
    p.add_argument("--processes", type=int, default=1, help="the server's --processes")
    p.add_argument("--images", action="store_true", help="ask for the pictures too (as the page does)")
    p.add_argument("--suggest", action="store_true", help="suggest colours for every pair, harmonious too")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for name in ("clients", "requests", "processes"):
        if getattr(args, name) < 1:
            raise cli.UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not os.path.exists(args.model):
        raise cli.UserError(f"{args.model}: model not found")
    r = bench(args.model, args.clients, args.requests, args.warmup, args.workers, args.images, args.suggest,
              processes=args.processes)
    failed = r["errors"] or not r["server_alive"] or (r["memory_growth"] or 0) > MAX_MEMORY_GROWTH
    if args.json:
        print(json.dumps(r))
        return 1 if failed else 0
    growth = "n/a" if r["memory_growth"] is None else f"{r['memory_growth']:+.1%}"
    print(f"model: {r['model']}; {r['clients']} clients x {r['requests_per_client']} POST /v1/score"
          f"{' (images)' if r['images'] else ''}{' (suggest)' if r['suggest'] else ''}; "
          f"load average {r['load_average']:.1f}")
    print(cpu_summary())
    print(f"latency p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
          f"max {r['max_ms']:.1f} ms; {r['requests_per_s']:.1f} requests/s; errors: {r['errors']} "
          f"{r['error_kinds'] or ''}")
    print(f"server memory: {r['rss_before_mb']:.0f} MB after warm-up -> {r['rss_after_mb']:.0f} MB ({growth}; "
          f"bound +{MAX_MEMORY_GROWTH:.0%}); p99 goal <= {GOAL_P99_MS:.0f} ms: "
          f"{'met' if r['p99_ms'] <= GOAL_P99_MS else 'NOT met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
