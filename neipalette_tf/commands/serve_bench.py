"""Load-test the web service: `python -m neipalette_tf.serve_bench --model artifacts/X/model.onnx`.

    python -m neipalette_tf.serve_bench --model MODEL [--clients 8] [--requests 200] [--warmup 80]
        [--workers N] [--processes P] [--images] [--suggest] [--json]
    python -m neipalette_tf.serve_bench --model MODEL --attacks [--processes 2] [--json]

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

`--attacks`: instead, hostile clients (`neipalette_tf/serving/attacks.py`)
against the server started with short limits (headers and body gaps 1.5 s,
a request 6 s, 4 requests in progress and 40 connections per process, so
that each attack takes seconds): slowloris, stalled and dripping uploads,
huge headers, large-image `/v1/rank`, a burst past the requests limit,
malformed HTTP. Under each, a watcher polls `/healthz` every 0.1 s and
sends a well-formed `/v1/score` every 0.5 s; prints their worst times and
the statuses each attack got. Exit status 1 when a goal is missed:
`/healthz` not 200 within 1 s, a `/v1/score` not 200 within 2 s (during
the burst a quick JSON 503 is right too), an answer
that is not the service's JSON (or a 503 without `Retry-After`), a
traceback in the server's log, or the server gone.
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
    p.add_argument("--processes", type=int, help="the server's --processes (default 1; 2 with --attacks)")
    p.add_argument("--images", action="store_true", help="ask for the pictures too (as the page does)")
    p.add_argument("--suggest", action="store_true", help="suggest colours for every pair, harmonious too")
    p.add_argument("--attacks", action="store_true",
                   help="hostile clients instead of the load test (default --processes 2 then)")
    p.add_argument("--json", action="store_true")
    return p.parse_args(argv)


def attacks(args):
    from neipalette_tf.serving.attacks import HEALTH_WITHIN_S, SCORE_WITHIN_S, attack_bench

    r = attack_bench(args.model, args.processes, args.workers)
    failed = bool(r["failed"]) or r["server_tracebacks"] or not r["server_alive"]
    if args.json:
        print(json.dumps(r, default=str))
        return 1 if failed else 0
    limits = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in r["limits"].items())
    print(f"model: {r['model']}; serve --processes {r['processes']} {limits}; load average {r['load_average']:.1f}")
    print(cpu_summary())
    for a in r["attacks"]:
        w = a["watch"]
        print(f"{a['attack']} ({a['what']}): /healthz {w['health_n']} polls, max {w['health_max_ms']:.0f} ms; "
              f"/v1/score {w['score_n']}, max {w['score_max_ms']:.0f} ms; answers: {a['answers'] or 'none'}"
              + (f"; NOT clean: {a['not_clean']}" if a["not_clean"] else "")
              + (f"; missed: {w['health_failed'][:3]} {w['score_failed'][:3]}" if w["health_failed"] or
                 w["score_failed"] else ""))
    print(f"server log tracebacks: {r['server_tracebacks']}; goals (/healthz 200 within {HEALTH_WITHIN_S:g} s, "
          f"/v1/score 200 within {SCORE_WITHIN_S:g} s, every refusal JSON): {'NOT met' if failed else 'met'}")
    return 1 if failed else 0


def main(argv=None):
    args = parse_args(argv)
    if args.processes is None:
        args.processes = 2 if args.attacks else 1
    if args.attacks:
        if not os.path.exists(args.model):
            raise cli.UserError(f"{args.model}: model not found")
        if args.processes < 1:
            raise cli.UserError(f"--processes must be at least 1, got {args.processes}")
        return attacks(args)
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
    if r["processes"] > 1:
        print(f"the {r['clients']} connections fell {'/'.join(map(str, r['connections_per_process']))} on the "
              f"{r['processes']} server processes at the start, "
              f"{'/'.join(map(str, r['connections_per_process_halfway']))} halfway; the server closed "
              f"{r['server_closes']} kept-alive connection(s) to even them out")
    print(f"server memory: {r['rss_before_mb']:.0f} MB after warm-up -> {r['rss_after_mb']:.0f} MB ({growth}; "
          f"bound +{MAX_MEMORY_GROWTH:.0%}); p99 goal <= {GOAL_P99_MS:.0f} ms: "
          f"{'met' if r['p99_ms'] <= GOAL_P99_MS else 'NOT met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
