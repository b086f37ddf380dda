"""Run exported graphs on fixed inputs and save every output: the ARM64 side of `export.arm64`.

    python3 arm64_worker.py JOB_DIR [OUT_DIR [FORMAT ...]]
    python3 arm64_worker.py --features

Runs inside the emulated aarch64 root (and natively on the host, for the
x86 figures beside them). TensorFlow-free and NeiPalette-free on purpose:
NumPy plus `onnxruntime` / `ai_edge_litert`, nothing else, so the arm64
root needs only those wheels. `JOB_DIR` holds

- `job.json`: `{"batch_size": B, "threads": T, "formats": {fmt: {part: path}}}`
  where a part is "model", "encoder", "head" or "attention" (the FORMATs
  given on the command line, or all);
- `tops.npy`, `bottoms.npy`: the parity pairs, preprocessed uint8
  `[N, S, S, 3]` arrays (exactly what Keras was given on the host).

It writes `OUT_DIR/FMT.npz` (default OUT_DIR: `JOB_DIR/out`) per format (`p` of the model, `rating`
when the model has that output, `p_composed` = head(encoder, encoder),
`embedding` / `attention` of the attention graph on every top then every
bottom, `rating_composed` when the head has that output) and `OUT_DIR/worker.json` (machine, runtime versions, CPU
features, per-format errors). Inputs are fed the way
`neipalette_tf.predictors.runtime` feeds them: quantised LiteRT tensors
with the tensor's scale and zero point, ONNX inputs as float32.
"""

import json
import os
import platform
import sys
import traceback

import numpy as np

# aarch64 AT_HWCAP / AT_HWCAP2 bit names, in bit order (the kernel's arch/arm64/kernel/cpuinfo.c).
HWCAP_NAMES = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
               "dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
HWCAP2_NAMES = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm "
                "svebf16 i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme").split()
AT_HWCAP, AT_HWCAP2 = 16, 26
# The features that pick XNNPACK's and ONNX Runtime's kernels: fp16 arithmetic, int8 dot product and
# matrix multiply, SVE, bf16.
KERNEL_FEATURES = ("fphp", "asimdhp", "asimddp", "sve", "sve2", "i8mm", "bf16")


def hwcap_features():
    """Every aarch64 feature the (emulated) kernel reports in its hwcaps, or None off aarch64."""
    if platform.machine() != "aarch64":
        return None
    try:
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        hwcap, hwcap2 = getauxval(AT_HWCAP), getauxval(AT_HWCAP2)
    except (OSError, AttributeError):
        return None
    return ([name for bit, name in enumerate(HWCAP_NAMES) if hwcap >> bit & 1]
            + [name for bit, name in enumerate(HWCAP2_NAMES) if hwcap2 >> bit & 1])


def cpu_features():
    """The kernel-choosing features among `hwcap_features()`."""
    found = hwcap_features()
    return None if found is None else [name for name in KERNEL_FEATURES if name in found]


def quantize(x, dtype, scale, zero_point):
    """Float values -> the integer tensor type (as `neipalette_tf.predictors.runtime._quantize`)."""
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    if np.asarray(x).dtype == dtype and scale == 1 and zero_point == 0:
        return x
    x = np.asarray(x, dtype=np.float32)
    if scale:
        x = np.rint(x * np.float32(1.0 / scale) + np.float32(zero_point))
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def dequantize(y, dtype, scale, zero_point):
    if np.issubdtype(dtype, np.integer) and scale:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y


class LiteRT:
    """One `.tflite` file's signature in LiteRT (XNNPACK, its default CPU delegate)."""

    def __init__(self, path, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        runner = self.interpreter.get_signature_runner()
        self.inputs, self.outputs = runner.get_input_details(), runner.get_output_details()
        self.output_names = list(self.outputs)
        self._shapes = None

    def run(self, feeds):
        args = {name: np.ascontiguousarray(quantize(feeds[name], d["dtype"], *d["quantization"]))
                for name, d in self.inputs.items()}
        shapes = {name: a.shape for name, a in args.items()}
        if shapes != self._shapes:
            for name, shape in shapes.items():
                self.interpreter.resize_tensor_input(self.inputs[name]["index"], shape)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for name, a in args.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], a)
        self.interpreter.invoke()
        return {name: dequantize(self.interpreter.get_tensor(d["index"]), d["dtype"], *d["quantization"])
                for name, d in self.outputs.items()}


class Onnx:
    """One `.onnx` graph in ONNX Runtime's CPU provider."""

    def __init__(self, path, threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds):
        values = self.session.run(self.output_names,
                                  {k: np.ascontiguousarray(feeds[k], dtype=np.float32) for k in self.input_names})
        return dict(zip(self.output_names, values))


def load(path, threads=None):
    return (Onnx if path.endswith(".onnx") else LiteRT)(path, threads)


def batched(graph, feeds, batch_size):
    """`graph.run` over aligned arrays in batches: `{output: concatenated array}`."""
    n = len(next(iter(feeds.values())))
    chunks = [graph.run({k: v[i:i + batch_size] for k, v in feeds.items()}) for i in range(0, n, batch_size)]
    return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


def run_format(parts, tops, bottoms, batch_size, threads=None):
    """Every output `export.arm64` compares, for one format's files."""
    result = {}
    out = batched(load(parts["model"], threads), {"top": tops, "bottom": bottoms}, batch_size)
    result["p"] = np.asarray(out["harmony"], np.float64)
    if "rating" in out:
        result["rating"] = np.asarray(out["rating"], np.float64).reshape(len(tops), -1)[:, 0]
    if "encoder" in parts and "head" in parts:
        encoder = load(parts["encoder"], threads)
        e_tops = batched(encoder, {"image": tops}, batch_size)["embedding"].astype(np.float32)
        e_bottoms = batched(encoder, {"image": bottoms}, batch_size)["embedding"].astype(np.float32)
        feeds = {"top_embedding": e_tops, "bottom_embedding": e_bottoms}
        out = batched(load(parts["head"], threads), feeds, batch_size)
        result["p_composed"] = np.asarray(out["harmony"], np.float64)
        if "rating" in out:
            result["rating_composed"] = np.asarray(out["rating"], np.float64).reshape(len(tops), -1)[:, 0]
    if "attention" in parts:
        out = batched(load(parts["attention"], threads), {"image": np.concatenate([tops, bottoms])}, batch_size)
        result["embedding"] = np.asarray(out["embedding"], np.float64)
        result["attention"] = np.asarray(out["attention"], np.float64)
    return result


def versions():
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for module, name in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai-edge-litert")):
        try:
            from importlib.metadata import version

            found[name] = version(name)
        except Exception:  # noqa: BLE001 - not installed: reported as absent
            found[name] = None
    return found


def main(job_dir, out_dir=None, *only):
    if job_dir == "--features":  # one line: what /proc/cpuinfo's Features line would say
        print(" ".join(hwcap_features() or []))
        return 0
    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    tops = np.load(os.path.join(job_dir, "tops.npy"))
    bottoms = np.load(os.path.join(job_dir, "bottoms.npy"))
    out_dir = out_dir or os.path.join(job_dir, "out")
    os.makedirs(out_dir, exist_ok=True)
    errors = {}
    for fmt, parts in job["formats"].items():
        if only and fmt not in only:
            continue
        try:
            result = run_format(parts, tops, bottoms, int(job.get("batch_size", 32)), job.get("threads"))
        except Exception as e:  # noqa: BLE001 - a runtime that fails is a failed format, reported
            text = str(e).strip()
            errors[fmt] = f"{type(e).__name__}: {text.splitlines()[-1] if text else ''}"
            traceback.print_exc()
            continue
        np.savez(os.path.join(out_dir, f"{fmt}.npz"), **result)
        print(f"{fmt}: done", flush=True)
    info = {"machine": platform.machine(), "cpu_features": cpu_features(), "versions": versions(), "errors": errors}
    with open(os.path.join(out_dir, "worker.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
