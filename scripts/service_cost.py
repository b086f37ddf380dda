"""Where one `/v1/score` request's CPU goes, in one process at one thread (no HTTP, no queueing).

    python scripts/service_cost.py --model artifacts/X/model_int8.tflite [--rounds 3]

Runs what the service runs for a request (`explain.explain_images` with
`check_all=False, full_model=False`) on `serve_bench`'s 16 photo pairs,
once to warm up, then `--rounds` times, and prints the CPU time per request
(`time.process_time`) split into each runtime graph's runs (attention,
head, encoder: calls per request, rows per call, ms per request) and the
rest (NumPy: colour reading, candidate search, recolouring, JSON). With 8
clients on 2 processes, p99 is about four such request times plus the HTTP
work around them (docs/serving.md). Prints the CPU line.
"""

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from neipalette_tf.core import cli  # noqa: E402
from neipalette_tf.core.cpu_info import cpu_summary  # noqa: E402
from neipalette_tf.core.preprocessing import load_image  # noqa: E402
from neipalette_tf.explanation import explain  # noqa: E402
from neipalette_tf.predictors import runtime  # noqa: E402
from neipalette_tf.serving.load_test import PHOTOS, garment_photo  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model.onnx, model*.tflite or an export folder")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    if args.rounds < 1:
        raise cli.UserError(f"--rounds must be at least 1, got {args.rounds}")
    spent = collections.defaultdict(lambda: [0, 0.0, 0])  # graph file -> calls, CPU seconds, rows
    for graph_type in set(runtime.GRAPH_TYPES.values()):
        real = graph_type.run

        def timed(self, feeds, real=real):
            start = time.process_time()
            out = real(self, feeds)
            entry = spent[os.path.basename(self.path)]
            entry[0] += 1
            entry[1] += time.process_time() - start
            entry[2] += len(next(iter(feeds.values())))
            return out

        graph_type.run = timed
    backend = explain.load_backend(args.model, threads=1)
    rng = np.random.default_rng(0)  # serve_bench's photos
    pairs = [(load_image(garment_photo(rng, "top"), backend.image_size),
              load_image(garment_photo(rng, "bottom"), backend.image_size)) for _ in range(PHOTOS)]
    run = lambda: [explain.explain_images(backend, t, b, check_all=False, full_model=False)  # noqa: E731
                   for t, b in pairs]
    results = run()
    spent.clear()
    start = time.process_time()
    for _ in range(args.rounds):
        run()
    n = args.rounds * len(pairs)
    total = 1e3 * (time.process_time() - start) / n
    print(cpu_summary())
    clashing = sum(r["label"] == "clashing" for r in results)
    print(f"{args.model}: {total:.2f} ms of CPU per request ({n} requests; {clashing} of {len(pairs)} pairs "
          "clashing, so searched for suggestions)")
    graphs = 0.0
    for name, (calls, seconds, rows) in sorted(spent.items()):
        graphs += 1e3 * seconds / n
        print(f"  {name}: {calls / n:.2f} runs, {rows / calls:.0f} rows per run, {1e3 * seconds / n:.2f} ms")
    print(f"  everything else (NumPy, Python): {total - graphs:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))  # a bad --model or --rounds: one line, exit 2
