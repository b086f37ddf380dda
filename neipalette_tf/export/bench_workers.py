"""The export benchmark's measurements, each in a fresh process: `spawn(job)` runs one.

`python -m neipalette_tf.export.bench_workers JOB_JSON` is the worker process
(`spawn` starts it; thread counts are fixed at start-up, nothing is shared
between rows); it prints its result as one JSON line. The jobs: `measure`
(latency, throughput, test predictions, wardrobe scoring of one format),
`startup` (import, load and score one pair), `peak` (fp32 and int8 matmul
peaks) and `flops` (float operations per pair). The benchmark that plans the
jobs is `neipalette_tf.export.bench`.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from neipalette_tf.core.errors import UserError
from neipalette_tf.export.parity import batched
from neipalette_tf.predictors import load_predictor
from neipalette_tf.predictors.runtime import read_card

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds the package
BATCH = 32
WARDROBE = 1000
MATMUL_N = 2048
MIN_SECONDS = 2.0  # per latency or throughput measurement


def export_card(folder):
    """The model card of an export folder, or a one-line error."""
    card = read_card(folder)
    if card is None:
        raise UserError(f"{folder}: no model_card.json (export it first with python -m export)")
    return card




def _timed(fn, min_runs, min_seconds, warmup=2):
    """Run `fn` until both minimums are met; returns the per-run seconds."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return times


def _set_tf_threads(threads):
    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def artifact(card, folder, fmt):
    """The file (or folder) of a row: the source model.keras, or the format's model file."""
    if fmt == "keras":
        return card["source"]["model"]
    return os.path.join(folder, card["artifacts"][fmt]["model"]["file"])


def _load(fmt, folder, card, threads):
    """The `Predictor` of one row (`predict_batch`, `embed_batch`, `score_batch`)."""
    if fmt in ("keras", "savedmodel"):
        _set_tf_threads(threads)  # before TensorFlow runs anything
    return load_predictor(artifact(card, folder, fmt), threads=threads)


def work_measure(job):
    """Latency (batch 1), and optionally throughput, test predictions and wardrobe scoring."""


    card = export_card(job["folder"])
    runner = _load(job["format"], job["folder"], card, job["threads"])
    data = np.load(job["data"])
    tops, bottoms = data["tops"], data["bottoms"]
    t1, b1 = tops[:1], bottoms[:1]
    seconds = job.get("min_seconds", MIN_SECONDS)
    times = np.array(_timed(lambda: runner.predict_batch(t1, b1), 20, seconds)) * 1e3
    result = {"p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
              "runs": len(times)}
    if job["full"]:
        idx = np.arange(BATCH) % len(tops)
        tb, bb = tops[idx], bottoms[idx]
        bt = _timed(lambda: runner.predict_batch(tb, bb), 3, seconds, warmup=1)
        result["pairs_per_s_b32"] = BATCH / float(np.median(bt))
    if job.get("predict"):
        result["p_test"] = batched(runner.predict_batch, tops, bottoms, batch_size=BATCH).tolist()
    if card["pairing"] == "siamese":
        e_top = runner.embed_batch(t1)
        e_bottoms = runner.embed_batch(bottoms[:BATCH])
        e_bottoms = e_bottoms[np.arange(WARDROBE) % len(e_bottoms)]
        e_tops = np.broadcast_to(e_top, e_bottoms.shape)
        st = np.array(_timed(lambda: runner.score_batch(e_tops, e_bottoms), 10, seconds / 2)) * 1e3
        result["score_1000_p50_ms"] = float(np.percentile(st, 50))
    return result


def work_startup(job):
    """Import, load and score one pair like `neipalette_tf.predict`; report when done."""
    p = load_predictor(job["model"]).predict_pair(job["top"], job["bottom"])
    done = time.time()
    heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
    return {"done_at": done, "p": p, "imported": heavy}


def work_peak(job):
    """fp32 matmul GFLOP/s: best of NumPy and TensorFlow with `threads` threads."""
    n = MATMUL_N
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (0, 1))
    flops = 2.0 * n ** 3
    seconds = job.get("min_seconds", MIN_SECONDS) / 2
    result = {"numpy_gflops": flops / min(_timed(lambda: a @ b, 5, seconds)) / 1e9}
    _set_tf_threads(job["threads"])

    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow

    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda: tf.linalg.matmul(ta, tb))
    result["tensorflow_gflops"] = flops / min(_timed(lambda: matmul().numpy(), 5, seconds)) / 1e9
    result["peak_gflops"] = max(result["numpy_gflops"], result["tensorflow_gflops"])
    int8 = _int8_matmul(job["threads"])
    if int8 is not None:
        result["int8_gops"] = flops / min(_timed(int8, 5, seconds)) / 1e9
    return result


def _int8_matmul(threads):
    """A call of ONNX Runtime's uint8 x int8 `MatMulInteger` (MLAS, the int8 ONNX files' kernels)
    on MATMUL_N² matrices, or None without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    n = MATMUL_N
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "b")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_peak",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    return lambda: session.run(None, feed)


def work_flops(job):
    """Float operations of one pair through the full model (frozen batch-1 graph)."""


    import tensorflow as tf  # deferred: a worker timing a TF-free format never loads TensorFlow
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from neipalette_tf.export.savedmodel import endpoints  # deferred: TensorFlow
    from neipalette_tf.models import load_model  # deferred: TensorFlow

    fn, signature = endpoints(load_model(job["model"]))["serving_default"]
    one = [tf.TensorSpec([1, *s.shape[1:]], s.dtype, name=s.name) for s in signature]
    frozen = convert_variables_to_constants_v2(tf.function(fn, input_signature=one).get_concrete_function())
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return {"flops_per_pair": int(profile.total_float_ops)}


WORKERS = {"measure": work_measure, "startup": work_startup, "peak": work_peak, "flops": work_flops}


def spawn(job, threads=2):
    """Run one worker job in a fresh Python process; returns its JSON result."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "neipalette_tf.export.bench_workers", json.dumps(job)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"bench worker {job['kind']} {job.get('format', '')} failed:\n{tail}")
    result = json.loads(lines[-1])
    result["started_at"] = started
    return result


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    print(json.dumps(WORKERS[job["kind"]](job)))
