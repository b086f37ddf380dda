"""The CPU a figure was measured on: printed by every benchmark and report that prints a speed.

TensorFlow's CPU kernels differ by processor: its oneDNN kernels are on by
default only on CPUs with AVX-512 VNNI, AVX-512 BF16, AVX-VNNI or AMX
(`TF_ENABLE_ONEDNN_OPTS=0` / `=1` overrides that), Eigen's run elsewhere;
XNNPACK and ONNX Runtime pick AVX2 or AVX-512 code paths at run time. A
speed figure is only comparable with one from the same kind of CPU.

Example:

>>> info = cpu_info()
>>> sorted(info)
['avx2', 'avx512', 'cores', 'model', 'onednn', 'onednn_max_isa', 'onednn_reason']
>>> cpu_summary().startswith("CPU: ")
True
"""

import os
import platform
import sys

# CPU flags (as /proc/cpuinfo spells them) with which TensorFlow turns oneDNN on by default.
ONEDNN_DEFAULT_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
# Set beside TF_ENABLE_ONEDNN_OPTS=1 when a training command chose oneDNN (`prefer_onednn_for_training`).
CHOSEN_BY = "NEIPALETTE_ONEDNN_CHOSEN_BY"
# Set by tools/avx2/emulate.py, which hides these flags from the CPU-dispatching libraries' `cpuid`.
CPUID_MASK = "NEIPALETTE_CPUID_MASK"
MASKED_BY_AVX2 = ("avx512", "avx_vnni", "amx", "avx_ifma", "avx_ne_convert")


def _proc_cpuinfo():
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def onednn_state(flags, environ=None):
    """(on, reason): whether TensorFlow runs its oneDNN CPU kernels here."""
    value = (os.environ if environ is None else environ).get("TF_ENABLE_ONEDNN_OPTS")
    if value is not None and value.strip().lower() in ("0", "false"):
        return False, "TF_ENABLE_ONEDNN_OPTS=0"
    if value is not None and value.strip().lower() in ("1", "true"):
        chosen = (os.environ if environ is None else environ).get(CHOSEN_BY)
        return True, f"TF_ENABLE_ONEDNN_OPTS=1, {chosen}'s default" if chosen else "TF_ENABLE_ONEDNN_OPTS=1"
    found = [f for f in ONEDNN_DEFAULT_FLAGS if f in flags]
    if found:
        return True, f"default: the CPU has {', '.join(found)}"
    return False, "default: no AVX-512 VNNI/BF16, AVX-VNNI or AMX"


def prefer_onednn_for_training(command, environ=None):
    """Turn TensorFlow's oneDNN kernels on for a training command unless the user chose; True if it did.

    On a CPU without AVX-512 VNNI / BF16 or AMX, TensorFlow trains on its
    portable Eigen kernels, whose convolution gradients are ~3x slower than
    oneDNN's at NeiPalette's sizes (`python -m neipalette_tf.peer_bench` with
    and without `TF_ENABLE_ONEDNN_OPTS=1`, docs/benchmarks.md). oneDNN runs
    on any x86-64 CPU, so training commands ask for it; an explicit
    `TF_ENABLE_ONEDNN_OPTS` (0 or 1) always wins. Only takes effect before
    TensorFlow is imported, and only on x86-64.

    >>> env = {}
    >>> prefer_onednn_for_training("train", env) == (platform.machine().lower() in ("x86_64", "amd64")
    ...                                               and "tensorflow" not in sys.modules)
    True
    >>> prefer_onednn_for_training("train", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    False
    """
    env = os.environ if environ is None else environ
    if "TF_ENABLE_ONEDNN_OPTS" in env or "tensorflow" in sys.modules:
        return False
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    env[CHOSEN_BY] = command
    return True


def cpu_info(environ=None):
    """A dict: model, cores, avx2, avx512 (AVX-512F), onednn (bool) and why."""
    model, flags = _proc_cpuinfo()
    env = os.environ if environ is None else environ
    model = model or platform.processor() or platform.machine()
    if env.get(CPUID_MASK) == "avx2" and any(f.startswith(MASKED_BY_AVX2) for f in flags):
        flags = {f for f in flags if not f.startswith(MASKED_BY_AVX2)}
        model += " with AVX-512, AVX-VNNI and AMX hidden (tools/avx2/emulate.py)"
    on, reason = onednn_state(flags, environ)
    return {"model": model, "cores": os.cpu_count(),
            "avx2": "avx2" in flags, "avx512": "avx512f" in flags, "onednn": on, "onednn_reason": reason,
            # oneDNN's instruction-set cap (e.g. AVX2 on an AVX-512 CPU): what its kernels may use
            "onednn_max_isa": env.get("ONEDNN_MAX_CPU_ISA") or None}


def cpu_summary(as_dict=False, environ=None):
    """One line, e.g. `CPU: AMD EPYC, 2 cores, AVX2 yes, AVX-512 no, oneDNN off (default: ...)`."""
    info = cpu_info(environ)
    if as_dict:
        return info
    yes = {True: "yes", False: "no"}
    return (f"CPU: {info['model']}, {info['cores']} cores, AVX2 {yes[info['avx2']]}, "
            f"AVX-512 {yes[info['avx512']]}, oneDNN {'on' if info['onednn'] else 'off'} ({info['onednn_reason']}"
            + (f", ONEDNN_MAX_CPU_ISA={info['onednn_max_isa']})" if info["onednn_max_isa"] and info["onednn"] else ")"))
