"""ARM64 parity: run an export's `.tflite` and `.onnx` files on aarch64 kernels, under emulation.

    python -m export.arm64 --artifacts artifacts/X [--cpu auto | cortex-a53,cortex-a76,max-nosme,max]
                           [--pairs 64] [--formats tflite_int8,...] [--model runs/X/model.keras]
                           [--parity-data pairs.csv] [--cache DIR] [--jobs N] [--timeout S]

Every parity figure of `python -m export` comes from x86 kernels; phones
run the ARM kernels of XNNPACK and ONNX Runtime (NEON, int8 dot products,
int8 matrix multiply), which round differently. This command runs each
TFLite and ONNX format of an export folder in an aarch64 Python under
QEMU's user-mode emulator (`qemu-aarch64-static`, which executes the real
aarch64 machine code of the runtimes) and judges it against Keras with the
rules of `parity.json` (`neipalette_tf.export.parity.RULES` /
`ATTENTION_RULES`):

- the pairs are the export's parity pairs (`parity.json`'s `data`: the same
  manifest, split and seeded sample), `--pairs` of them (a seeded sample;
  default 64, parity's minimum, since emulated float kernels are slow),
  decoded here on the host with `load_image` and handed to the aarch64 side
  as `.npy` files, so both sides see the same uint8 arrays;
- the Keras reference (p, and the attention graph's colours and maps) is
  computed here on the host from the model the card names (its SHA-256
  checked against the card);
- each format's files are checked against the card's SHA-256 and run on
  CPU profiles (`CPU_PROFILES`: QEMU's CPU models set the hwcaps the
  runtimes choose kernels by; `cortex-a53` is ARMv8.0 NEON only,
  `cortex-a76` adds fp16 arithmetic and the int8 dot product (most phones
  since 2019), `max-nosme` adds int8 matrix multiply, bf16 and SVE2, `max`
  adds SME); `--cpu auto` runs the float formats on cortex-a76 and the int8
  ones on cortex-a53, cortex-a76 and max-nosme, one worker process per
  format and profile, `--jobs` at a time; a format passes when every graph
  passes on every profile;
- the same files also run natively here (x86), so the report says how far
  the ARM kernels are from the x86 ones (`x86_max_abs_diff`);
- people-trained models' `rating` output (people's predicted 1-5 rating)
  is judged like parity.json's, with `parity.RATING_RULES`, on the model
  graph and on encoder + head; models without one are not asked for it.

Writes `arm64.json` beside `parity.json` (atomically) and prints one line
per file. Exit status 1 when any format fails on any CPU, 2 for bad input
(missing folder, no model card, not an export). Emulated timings mean
nothing, so none are measured or reported.

The aarch64 root: Debian bookworm (its python3 is 3.11, the Python the
wheels are built for) from `debootstrap --foreign --arch arm64
--variant=minbase --include=python3`, its packages unpacked with
`dpkg-deb -x` (no maintainer scripts run: nothing is executed in the root
while it is built, no chroot and no binfmt_misc registration are needed),
plus the aarch64 manylinux wheels of the versions installed here (numpy,
onnxruntime, ai-edge-litert, so the ARM side runs the same runtime releases
as the x86 parity check), installed by this machine's pip with
`--platform`. It is built once per key (suite, packages, versions) into
`~/.cache/neipalette/arm64-root-KEY` (or `$NEIPALETTE_CACHE`, `--cache`):
in a temporary folder beside it, renamed into place only when complete,
so an interrupted build (even `kill -9`) never leaves a half root in use.
Building needs root (debootstrap), `debootstrap` and `qemu-user-static`
(Debian: `apt-get install -y qemu-user-static debootstrap`) and the
network; running needs neither root nor network: the worker runs as
`qemu-aarch64-static -cpu CPU -L PREFIX ROOT/usr/bin/python3 arm64_worker.py JOB`,
where PREFIX is the root's entries as symlinks plus an aarch64 /proc/cpuinfo
for the CPU (`make_sysroot`).
"""

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from neipalette_tf.core.errors import ArtifactError, Failure, UserError
from neipalette_tf.core.formats import PARTS, list_formats
from neipalette_tf.core.vocabulary import ARM64_OUTPUT_NAME as OUTPUT_NAME  # noqa: F401 - what the command writes
from neipalette_tf.core.vocabulary import PARITY_NAME
from neipalette_tf.core.io_utils import read_json_object, sha256_file
from neipalette_tf.core.staging import pid_alive
from neipalette_tf.export import parity
from neipalette_tf.predictors.runtime import CARD_NAME

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arm64_worker.py")
FORMATS = list_formats(tf_free=True)  # core.formats: the files the TF-free runtime reads
INT8_FORMATS = list_formats(tf_free=True, precision="int8")
# CPU profiles -> QEMU's -cpu: which aarch64 features, so which kernels, the runtimes pick.
CPU_PROFILES = {
    "cortex-a53": "cortex-a53",  # ARMv8.0 NEON only: no fp16 arithmetic, no int8 dot product (older budget phones)
    "cortex-a76": "cortex-a76",  # + fp16 arithmetic and the int8 dot product (sdot): most phones since 2019
    "neoverse-n1": "neoverse-n1",  # the same features as cortex-a76 (ARM servers)
    "max-nosme": "max,sme=off",  # + int8 matrix multiply (i8mm), bf16, SVE2: ARMv9 phones' big cores
    "max": "max",  # + SME (QEMU 7.2's: the int8 graphs' results were wrong on it, see docs/deployment.md)
}
FLOAT_CPUS = ("cortex-a76",)  # float kernels: one profile by default (emulated float math is slow)
INT8_CPUS = ("cortex-a53", "cortex-a76", "max-nosme")  # the three int8 kernel families: NEON, sdot, i8mm
SUITE = "bookworm"  # Debian 12: python3 is 3.11, the Python of the wheels (cp311)
PYTHON = "3.11"
MIRROR = "http://deb.debian.org/debian"
RUNTIMES = ("numpy", "onnxruntime", "ai-edge-litert")  # the worker's imports, at the versions installed here
# glibc of bookworm is 2.36: every manylinux tag up to it (pip's --platform takes no ranges)
WHEEL_PLATFORMS = tuple(f"manylinux_2_{v}_aarch64" for v in (17, 24, 26, 27, 28, 31, 34, 35, 36)) + ("linux_aarch64",)
SITE_PACKAGES = "opt/neipalette/site-packages"  # inside the root
BUILD_INFO = "neipalette-arm64-root.json"  # inside the root: written last, before the rename
BUILDER_VERSION = 1  # bump when the way the root is built changes: a new key, a new root
KEY_LENGTH = 16


# --------------------------------------------------------------------------
# Judging (no emulation needed: unit-tested on their own)
# --------------------------------------------------------------------------


def root_spec(versions, suite=SUITE, mirror=MIRROR):
    """What the root is built from; its hash is the cache key."""
    return {"builder": BUILDER_VERSION, "suite": suite, "arch": "arm64", "python": PYTHON, "mirror": mirror,
            "debian_packages": ["python3"], "wheels": {name: versions[name] for name in sorted(versions)}}


def cache_key(spec):
    """A short stable hash of `root_spec(...)`: the same inputs, the same root."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def x86_diff(got, x86):
    """max |got - x86|: how far the ARM kernels are from this machine's on the same file."""
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(x86, np.float64))))


def judge(fmt, outputs, reference, x86=None):
    """One format's aarch64 `outputs` (the worker's arrays) against the Keras `reference`.

    Args:
        fmt: the format, whose `parity.RULES` / `ATTENTION_RULES` / `RATING_RULES` apply.
        outputs: `{"p", "p_composed"?, "embedding"?, "attention"?, "rating"?, "rating_composed"?}`
            from the worker.
        reference: `{"p", "labels", "attention"?: (colours, maps), "rating"?}` from Keras.
        x86: the same files' outputs on this machine's kernels, or None.

    Returns `{"rule", "passed", graph: comparison, ...}` like a `parity.json`
    format entry; each graph gains `x86_max_abs_diff` when `x86` has it. The
    rating (people-trained models) is judged against Keras with `RATING_RULES`
    (a graph that lost its rating output fails); a rating with no Keras one
    to compare with is reported against x86 only.
    """
    rule = parity.RULES[fmt]
    result = {"rule": rule}
    for graph, key in (("model", "p"), ("encoder+head", "p_composed")):
        if key in outputs:
            result[graph] = parity.compare(reference["p"], outputs[key], reference["labels"], rule)
            if x86 is not None and key in x86:
                result[graph]["x86_max_abs_diff"] = x86_diff(outputs[key], x86[key])
    if "attention" in outputs and reference.get("attention") is not None:
        got = (parity.read_colours(outputs["embedding"]), np.asarray(outputs["attention"], np.float64))
        result["attention"] = parity.compare_attention(reference["attention"], got, parity.ATTENTION_RULES[fmt])
    for graph, key, present in (("rating", "rating", True), ("encoder+head rating", "rating_composed",
                                                             "p_composed" in outputs)):
        if not present or (key not in outputs and reference.get("rating") is None):
            continue
        if reference.get("rating") is not None:
            result[graph] = parity.compare_rating(reference["rating"], outputs.get(key), parity.RATING_RULES[fmt])
        else:
            finite = bool(np.isfinite(outputs[key]).all())
            result[graph] = {"rule": None, "passed": finite, "failures": [] if finite else ["non-finite ratings"],
                             "note": "no Keras rating to compare with: reported against x86 only"}
        if x86 is not None and key in outputs and key in x86:
            result[graph]["x86_max_abs_diff"] = x86_diff(outputs[key], x86[key])
    graphs_judged = [v for v in result.values() if isinstance(v, dict) and "passed" in v]
    result["passed"] = bool(graphs_judged) and all(g["passed"] for g in graphs_judged)
    return result


def summary_lines(fmt, files, result):
    """Printable lines, one per file (group), of one format's result on one CPU."""
    def verdict(r):
        return "pass" if r["passed"] else "FAIL (" + "; ".join(r["failures"]) + ")"

    lines = []
    if "error" in result:
        return [f"{fmt}: FAIL ({result['error']})"]
    for graph, names in (("model", [files.get("model")]), ("encoder+head", [files.get("encoder"), files.get("head")])):
        if graph in result:
            r = result[graph]
            x86 = f", vs x86 {r['x86_max_abs_diff']:.3g}" if "x86_max_abs_diff" in r else ""
            lines.append(f"{' + '.join(n for n in names if n)}: max |dp| {r['max_abs_diff']:.3g}, decision agreement "
                         f"{r['decision_agreement']:.2%}{x86} -> {verdict(r)}")
    if "attention" in result:
        r = result["attention"]
        lines.append(f"{files.get('attention')}: max colour dE {r['max_colour_delta_e']:.3g}, max attention L1 "
                     f"{r['max_attention_l1']:.3g} -> {verdict(r)}")
    for graph, names in (("rating", [files.get("model")]), ("encoder+head rating", [files.get("encoder"),
                                                                                   files.get("head")])):
        if graph in result:
            r = result[graph]
            keras = f"max |drating| {r['max_abs_diff']:.3g}" if "max_abs_diff" in r else "no Keras rating"
            x86 = f", vs x86 {r['x86_max_abs_diff']:.3g}" if "x86_max_abs_diff" in r else ""
            lines.append(f"{' + '.join(n for n in names if n)} rating: {keras}{x86} -> {verdict(r)}")
    return lines


# --------------------------------------------------------------------------
# The export folder: card, parity report, pairs, Keras reference
# --------------------------------------------------------------------------


def read_export(folder):
    """(card, parity report) of an export folder; UserError / ArtifactError naming the path otherwise."""
    if not os.path.exists(folder):
        raise UserError(f"{folder}: no such folder (--artifacts names an export folder of `python -m export`)")
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: not a folder (--artifacts names an export folder of `python -m export`)")
    documents = []
    for name in (CARD_NAME, PARITY_NAME):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ArtifactError(f"{path}: not found ({folder} is not an export folder of `python -m export`)")
        try:
            documents.append(read_json_object(path))
        except ValueError as e:
            raise ArtifactError(f"{path}: unreadable ({e})") from None
        except TypeError as e:
            raise ArtifactError(f"{path}: expected a JSON object, got {e}") from None
    card, report = documents
    if not isinstance(card.get("artifacts"), dict) or not isinstance(card.get("image_size"), int):
        raise ArtifactError(f"{os.path.join(folder, CARD_NAME)}: no 'artifacts' / 'image_size' (not an export's card)")
    if not isinstance(report.get("data"), dict) or not report["data"].get("manifest"):
        raise ArtifactError(f"{os.path.join(folder, PARITY_NAME)}: no 'data' naming the parity pairs' manifest")
    return card, report


def runtime_files(card, folder, formats=None):
    """`{format: {part: path}}` of the card's TFLite / ONNX formats (all of them, or `formats`)."""
    available = {fmt: parts for fmt, parts in card["artifacts"].items() if fmt in FORMATS}
    if formats is not None:
        unknown = [f for f in formats if f not in available]
        if unknown:
            raise UserError(f"--formats {','.join(unknown)}: not in {os.path.join(folder, CARD_NAME)} "
                            f"(it has {', '.join(available) or 'no TFLite or ONNX format'})")
        available = {f: available[f] for f in formats}
    if not available:
        raise ArtifactError(f"{os.path.join(folder, CARD_NAME)}: no TFLite or ONNX format to run")
    files = {}
    for fmt, parts in available.items():
        files[fmt] = {}
        for part in PARTS:
            if part in parts:
                entry = parts[part]
                if not isinstance(entry.get("file"), str):
                    raise ArtifactError(f"{os.path.join(folder, CARD_NAME)}: {fmt}.{part} has no file name")
                files[fmt][part] = os.path.join(folder, entry["file"])
        if "model" not in files[fmt]:
            raise ArtifactError(f"{os.path.join(folder, CARD_NAME)}: {fmt} has no model file")
    return files


def verify_files(card, folder, files):
    """Every file exists and has the card's SHA-256 (ArtifactError naming the file otherwise)."""
    for fmt, parts in files.items():
        for part, path in parts.items():
            if not os.path.isfile(path):
                raise ArtifactError(f"{path}: missing ({fmt}.{part} of {os.path.join(folder, CARD_NAME)})")
            expected = card["artifacts"][fmt][part].get("sha256")
            if isinstance(expected, str) and sha256_file(path) != expected:
                raise ArtifactError(f"{path}: SHA-256 differs from {os.path.join(folder, CARD_NAME)} "
                                    "(the file changed since the export)")


def parity_manifest(source, model_path, parity_data=None):
    """The manifest of the export's parity pairs, chosen as `python -m export` chose them.

    `source` is parity.json's `data` (`{"manifest", "split", "pairs", "sampled"?}`).
    """
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.export import exporter

    path = parity_data or source["manifest"]
    split = source.get("split", "all")
    from_run = None
    if parity_data is None and split != "all":
        try:  # the run's own splits (assigned by training's prepare step), as the export used them
            from_run = exporter.run_manifest(model_path)
        except Exception:  # noqa: BLE001 - no run folder: the manifest's own split column
            from_run = None
        if from_run is not None and os.path.abspath(from_run.path) != os.path.abspath(path):
            from_run = None
    if from_run is None and not os.path.isfile(path):
        raise UserError(f"{path}: the parity pairs' manifest (parity.json's data.manifest) not found from "
                        f"{os.getcwd()}; run where the export ran, or pass --parity-data")
    manifest = from_run if from_run is not None else read_manifest(path)
    if split != "all":
        manifest = manifest.subset(split)
    if source.get("sampled"):
        manifest = exporter.sample(manifest, int(source["sampled"]))
    return manifest


def keras_reference(model_path, card, pairs):
    """`{"p", "labels", "attention"?, "rating"?}` of the Keras model on `pairs` (as `python -m export`)."""
    from neipalette_tf.models import load_model
    from neipalette_tf.predictors.keras import KerasPredictor

    model = load_model(model_path)
    if model.image_size != card["image_size"]:
        raise ArtifactError(f"{model_path}: image size {model.image_size}, the card says {card['image_size']}")
    keras = KerasPredictor(model)
    reference = {"p": parity.predictions(keras, pairs, composed=False)["model"], "labels": pairs.labels}
    if model.pairing == "siamese":
        reference["attention"] = parity.attention(keras, pairs)
    if getattr(keras, "has_rating", False):  # people-trained models: people's predicted rating 1..5
        reference["rating"] = np.asarray(parity.ratings(keras, pairs), np.float64)
    return reference


# --------------------------------------------------------------------------
# The aarch64 root
# --------------------------------------------------------------------------


def runtime_versions():
    """Versions of the worker's packages installed here: the aarch64 root gets the same."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in RUNTIMES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            raise UserError(f"{name} is not installed here; the aarch64 root installs the version found "
                            "here (pip install -r requirements.txt)") from None
    return found


def cache_folder(cache=None):
    return os.path.abspath(cache or os.environ.get("NEIPALETTE_CACHE")
                           or os.path.join(os.path.expanduser("~"), ".cache", "neipalette"))


def root_path(cache, spec):
    return os.path.join(cache, f"arm64-root-{cache_key(spec)}")


def root_complete(root):
    return all(os.path.isfile(os.path.join(root, *p)) for p in ((BUILD_INFO,), ("usr", "bin", "python3")))



def remove_stale_builds(cache, name, log=print):
    """Remove `.NAME.building-PID-*` folders whose builder process is gone (a killed build)."""
    prefix = f".{name}.building-"
    for entry in os.listdir(cache) if os.path.isdir(cache) else ():
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            path = os.path.join(cache, entry)
            if any(os.path.ismount(os.path.join(path, sub)) for sub in ("proc", "sys", "dev")):
                log(f"warning: {path} has a mount inside; left in place")
                continue
            log(f"removing an interrupted build: {path}")
            shutil.rmtree(path, ignore_errors=True)


def _tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name}: not found; building the arm64 root needs it (Debian: apt-get install -y {package})")
    return path


def _run_logged(cmd, log_file, what, env=None):
    with open(log_file, "a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        raise Failure(f"{what} failed (exit {done.returncode}); see {log_file}")


def build_root(cache, spec, log=print):
    """The complete aarch64 root for `spec` in `cache`: reused when there, else built (minutes).

    Built in `.arm64-root-KEY.building-PID-*` beside its final name and renamed
    into place when complete; a build killed midway is removed by the next one.
    """
    root = root_path(cache, spec)
    if root_complete(root):
        return root, None
    debootstrap = _tool("debootstrap", "debootstrap")
    dpkg_deb = _tool("dpkg-deb", "dpkg")
    qemu = _tool("qemu-aarch64-static", "qemu-user-static")
    if os.geteuid() != 0:
        raise UserError(f"{root}: not built yet, and building it needs root (debootstrap); run once as root "
                        "or point --cache at a folder holding a built root")
    os.makedirs(cache, exist_ok=True)
    name = os.path.basename(root)
    remove_stale_builds(cache, name, log)
    build = tempfile.mkdtemp(prefix=f".{name}.building-{os.getpid()}-", dir=cache)
    os.chmod(build, 0o755)
    log_file = f"{root}.build.log"
    start = time.perf_counter()
    log(f"building the arm64 root {root} (once; several minutes, see {log_file})")
    try:
        with open(log_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(spec, indent=2) + "\n")
        # First stage only: download and unpack; nothing of the root is executed (no chroot, no binfmt).
        _run_logged([debootstrap, "--foreign", "--arch=arm64", "--variant=minbase",
                     f"--include={','.join(spec['debian_packages'])}", spec["suite"], build, spec["mirror"]],
                    log_file, "debootstrap")
        archives = os.path.join(build, "var", "cache", "apt", "archives")
        debs = sorted(d for d in os.listdir(archives) if d.endswith(".deb"))
        for deb in debs:  # the base set is unpacked already; python3 and its libraries are not
            _run_logged([dpkg_deb, "-x", os.path.join(archives, deb), build], log_file, f"dpkg-deb -x {deb}")
        for deb in debs:
            os.remove(os.path.join(archives, deb))
        site = os.path.join(build, SITE_PACKAGES)
        os.makedirs(site)
        platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
        wheels = [f"{n}=={v}" for n, v in spec["wheels"].items()]
        _run_logged([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     "--no-compile", "--only-binary=:all:", *platforms, "--python-version", spec["python"],
                     "--implementation", "cp", "--abi", f"cp{spec['python'].replace('.', '')}",
                     "--target", site, *wheels], log_file, "pip install (aarch64 wheels)")
        probe = subprocess.run(_emulated(qemu, build, "cortex-a76", ["-c", "import sys, platform; "
                                                               "print(platform.machine(), sys.version.split()[0])"]),
                               capture_output=True, text=True, env=_worker_env(build), timeout=600)
        if probe.returncode != 0 or not probe.stdout.startswith("aarch64 " + spec["python"]):
            raise Failure(f"the new root's python3 does not run under {qemu}: "
                          f"{(probe.stderr or probe.stdout).strip().splitlines()[-1:] or probe.returncode}")
        info = {**spec, "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.perf_counter() - start),
                "python": probe.stdout.split()[1], "debs": len(debs)}
        with open(os.path.join(build, BUILD_INFO), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        try:
            os.rename(build, root)
        except OSError:  # another process finished the same root first: use theirs
            if not root_complete(root):
                raise
            shutil.rmtree(build, ignore_errors=True)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    size = folder_bytes(root)
    log(f"built {root} in {seconds / 60:.1f} min, {size / 2**20:.0f} MiB")
    return root, {"seconds": round(seconds), "bytes": size}


def folder_bytes(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


# MIDR_EL1 of QEMU's CPU models (target/arm/cpu64.c); `max` has implementer 0 ("software") and part 'Q'.
MIDR = {"cortex-a35": 0x411FD040, "cortex-a53": 0x410FD034, "cortex-a57": 0x411FD070, "cortex-a72": 0x410FD083,
        "cortex-a76": 0x414FD0B1, "neoverse-n1": 0x414FD0C1, "a64fx": 0x461F0010, "max": 0x000F0510}


def cpuinfo_text(cpu, features, processors):
    """An aarch64 `/proc/cpuinfo` for QEMU CPU model `cpu` with `processors` CPUs.

    QEMU's user mode passes the host's x86 /proc/cpuinfo through, and the
    `cpuinfo` library of ONNX Runtime and XNNPACK finds no ARM core in it and
    crashes (SIGSEGV on `import onnxruntime`); the runtimes read their kernel
    features from the hwcaps (`getauxval`), which QEMU emulates for the model.
    """
    midr = MIDR[CPU_PROFILES[cpu].split(",")[0]]
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(features)}\nCPU implementer\t: 0x{midr >> 24:02x}\n"
             f"CPU architecture: 8\nCPU variant\t: 0x{midr >> 20 & 0xF:x}\nCPU part\t: 0x{midr >> 4 & 0xFFF:03x}\n"
             f"CPU revision\t: {midr & 0xF}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(processors))


def host_processors():
    """How many CPUs the host's sysfs lists as possible (what the emulated side sees there)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/sys/devices/system/cpu/possible", encoding="ascii") as f:
            return int(f.read().strip().split(",")[-1].split("-")[-1]) + 1
    return os.cpu_count() or 1


def make_sysroot(root, folder, cpu, features):
    """`folder`: the root's entries as symlinks, plus a `proc/cpuinfo` of `cpu` (QEMU's -L prefix).

    `qemu -L PREFIX` opens `PREFIX/PATH` when it exists and `PATH` otherwise,
    so the emulated program sees this cpuinfo and the host's other /proc files.
    """
    os.makedirs(os.path.join(folder, "proc"))
    for name in os.listdir(root):
        if name not in ("proc", "sys"):
            os.symlink(os.path.join(root, name), os.path.join(folder, name))
    with open(os.path.join(folder, "proc", "cpuinfo"), "w", encoding="ascii") as f:
        f.write(cpuinfo_text(cpu, features, host_processors()))
    return folder


def _worker_env(root):
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1",
            "PYTHONPATH": os.path.join(root, SITE_PACKAGES), "HOME": os.path.join(root, "tmp")}


def _emulated(qemu, root, cpu, args):
    """The command line running the root's python3 on aarch64 code under `qemu` with CPU profile `cpu`."""
    return [qemu, "-cpu", CPU_PROFILES[cpu], "-L", root, os.path.join(root, "usr", "bin", "python3"), *args]


def qemu_version(qemu):
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=60).stdout.splitlines()[0]
    return None


# --------------------------------------------------------------------------
# Running the worker
# --------------------------------------------------------------------------


def write_job(job_dir, files, pairs, batch_size=32, threads=1):
    """Copy the model files and the pairs' uint8 arrays into `job_dir`; write job.json."""
    formats = {}
    for fmt, parts in files.items():
        formats[fmt] = {}
        for part, path in parts.items():
            target = os.path.join(job_dir, os.path.basename(path))
            if not os.path.exists(target):
                shutil.copyfile(path, target)
            formats[fmt][part] = target
    np.save(os.path.join(job_dir, "tops.npy"), np.ascontiguousarray(pairs.tops, dtype=np.uint8))
    np.save(os.path.join(job_dir, "bottoms.npy"), np.ascontiguousarray(pairs.bottoms, dtype=np.uint8))
    shutil.copyfile(WORKER, os.path.join(job_dir, "arm64_worker.py"))
    with open(os.path.join(job_dir, "job.json"), "w", encoding="utf-8") as f:
        json.dump({"batch_size": batch_size, "threads": threads, "formats": formats}, f, indent=2)


def start_worker(cmd, job_dir, out_dir, env, formats):
    """Start the worker on `formats`; its output goes to `out_dir/worker.log`."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "worker.log"), "w", encoding="utf-8") as log:
        return subprocess.Popen([*cmd, job_dir, out_dir, *formats], stdout=log, stderr=subprocess.STDOUT, env=env)


def read_worker(out_dir, returncode, what):
    """(`{fmt: {name: array}}`, worker.json) of a finished worker; Failure when it did not finish."""
    info_path = os.path.join(out_dir, "worker.json")
    if returncode != 0 or not os.path.isfile(info_path):
        with open(os.path.join(out_dir, "worker.log"), encoding="utf-8", errors="replace") as f:
            tail = [line for line in f.read().strip().splitlines() if line.strip()][-1:] or [f"exit {returncode}"]
        raise Failure(f"{what}: the worker failed (exit {returncode}): {tail[0]}")
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    outputs = {}
    for name in os.listdir(out_dir):
        if name.endswith(".npz"):
            with np.load(os.path.join(out_dir, name)) as data:
                outputs[name[:-4]] = {k: data[k] for k in data.files}
    return outputs, info


def run_jobs(jobs, parallel, timeout):
    """Run `jobs` (`{key: (cmd, job_dir, out_dir, env, formats, what)}`), `parallel` at a time.

    Returns `{key: (outputs, info)}`; the first failure (or --timeout) stops them all.
    """
    pending, running, done = list(jobs), {}, {}
    deadline = time.monotonic() + timeout
    try:
        while pending or running:
            while pending and len(running) < parallel:
                key = pending.pop(0)
                cmd, job_dir, out_dir, env, formats, _ = jobs[key]
                running[key] = start_worker(cmd, job_dir, out_dir, env, formats)
            for key, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[key]
                    done[key] = read_worker(jobs[key][2], proc.returncode, jobs[key][5])
            if time.monotonic() > deadline:
                raise Failure(f"the emulated runs took longer than --timeout {timeout:g} s")
            time.sleep(0.2)
    finally:
        for proc in running.values():
            proc.kill()
            proc.wait()
    return done


def _csv(text):
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def plan(formats, cpu_arg):
    """`{format: [CPU profile, ...]}`: which CPUs each format runs on."""
    if cpu_arg.strip() == "auto":
        return {fmt: list(INT8_CPUS if fmt in INT8_FORMATS else FLOAT_CPUS) for fmt in formats}
    cpus = _csv(cpu_arg)
    bad = [c for c in cpus if c not in CPU_PROFILES]
    if not cpus or bad:
        raise UserError(f"--cpu {cpu_arg}: choose auto or from {', '.join(CPU_PROFILES)}")
    return {fmt: list(dict.fromkeys(cpus)) for fmt in formats}


def subsample(pairs, n):
    """`n` of `pairs` (a seeded sample in their order), or all when n is 0 or not smaller."""
    if not n or n >= len(pairs):
        return pairs
    keep = np.sort(np.random.default_rng(0).choice(len(pairs), n, replace=False))
    source = {**pairs.source, "arm64_sample": n}
    return parity.PairSet(pairs.tops[keep], pairs.bottoms[keep], pairs.labels[keep], source)


def run_arm64(args, log=print):
    """The whole check; returns the content of arm64.json."""
    folder = args.artifacts
    card, report = read_export(folder)
    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout:g}: must be positive")
    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: must be at least 1")
    if args.pairs != 0 and args.pairs < parity.MIN_PAIRS:
        raise UserError(f"--pairs {args.pairs}: parity needs at least {parity.MIN_PAIRS} (0: all)")
    files = runtime_files(card, folder, _csv(args.formats) if args.formats else None)
    runs = plan(files, args.cpu)
    verify_files(card, folder, files)
    model_path = args.model or (card.get("source") or {}).get("model")
    if not model_path or not os.path.isfile(model_path):
        raise UserError(f"{model_path or os.path.join(folder, CARD_NAME)}: the Keras model (the card's source.model) "
                        "not found; pass --model")
    expected = (card.get("source") or {}).get("sha256")
    if expected and sha256_file(model_path) != expected:
        raise ArtifactError(f"{model_path}: SHA-256 differs from the model this export came from "
                            f"({os.path.join(folder, CARD_NAME)} source.sha256)")
    spec = root_spec(runtime_versions())
    cache = cache_folder(args.cache)
    qemu = _tool("qemu-aarch64-static", "qemu-user-static")

    from neipalette_tf.data.pipeline import load_images

    manifest = parity_manifest(report["data"], model_path, args.parity_data)
    if len(manifest) != report.get("pairs"):
        raise ArtifactError(f"{manifest.path}: {len(manifest)} parity pairs, {os.path.join(folder, PARITY_NAME)} "
                            f"says {report.get('pairs')} (the manifest changed since the export)")
    size = card["image_size"]
    pairs = subsample(parity.PairSet(load_images(manifest.column("top"), size),
                                     load_images(manifest.column("bottom"), size), manifest.labels, report["data"]),
                      args.pairs)
    log(f"{card.get('name', folder)}: {len(pairs)} of the export's {len(manifest)} parity pairs; "
        "Keras reference on this machine")
    reference = keras_reference(model_path, card, pairs)

    root, built = build_root(cache, spec, log)
    job_dir = tempfile.mkdtemp(prefix="neipalette-arm64-", dir=os.path.join(root, "tmp"))
    try:
        write_job(job_dir, files, pairs)
        worker = os.path.join(job_dir, "arm64_worker.py")
        jobs = {("x86", fmt): ([sys.executable, worker], job_dir, os.path.join(job_dir, f"out-x86-{fmt}"), None,
                               [fmt], f"x86 ({fmt})") for fmt in files}
        features = {}
        for cpu in dict.fromkeys(c for cpus in runs.values() for c in cpus):
            probe = subprocess.run(_emulated(qemu, root, cpu, [worker, "--features"]), capture_output=True,
                                   text=True, env=_worker_env(root), timeout=600)
            if probe.returncode != 0:
                raise Failure(f"aarch64 ({cpu}): python3 in {root} does not run: "
                              f"{(probe.stderr.strip().splitlines() or [probe.returncode])[-1]}")
            features[cpu] = probe.stdout.split()
            make_sysroot(root, os.path.join(job_dir, f"sysroot-{cpu}"), cpu, features[cpu])
        for fmt, cpus in runs.items():
            for cpu in cpus:
                sysroot = os.path.join(job_dir, f"sysroot-{cpu}")
                jobs[(cpu, fmt)] = (_emulated(qemu, sysroot, cpu, [worker]), job_dir,
                                    os.path.join(job_dir, f"out-{cpu}-{fmt}"), _worker_env(root), [fmt],
                                    f"aarch64 {cpu} ({fmt})")
        where = ", ".join(f"{fmt} on {'/'.join(cpus)}" for fmt, cpus in runs.items())
        log(f"{len(jobs) - len(files)} emulated runs ({where}), {args.jobs} at a time")
        done = run_jobs(jobs, args.jobs, args.timeout)
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
    results, platforms = {}, {}
    for fmt, cpus in runs.items():
        x86_outputs, x86_info = done[("x86", fmt)]
        results[fmt] = {}
        names = {part: os.path.basename(p) for part, p in files[fmt].items()}
        for cpu in cpus:
            outputs, info = done[(cpu, fmt)]
            if info.get("machine") != "aarch64":
                raise Failure(f"the emulated worker reports machine {info.get('machine')!r}, not aarch64")
            platforms[cpu] = {"qemu_cpu": CPU_PROFILES[cpu], "cpu_features": info.get("cpu_features"),
                              "hwcaps": features[cpu], "versions": info.get("versions")}
            if fmt in outputs:
                result = judge(fmt, outputs[fmt], reference, x86_outputs.get(fmt))
            else:
                result = {"rule": parity.RULES[fmt], "passed": False,
                          "error": info.get("errors", {}).get(fmt, "no output")}
            results[fmt][cpu] = result
            for line in summary_lines(fmt, names, result):
                log(f"  [{cpu}] {line}")
    formats = {fmt: {"files": {part: os.path.basename(p) for part, p in files[fmt].items()},
                     "passed": all(r["passed"] for r in by_cpu.values()), "cpus": by_cpu}
               for fmt, by_cpu in results.items()}
    with open(os.path.join(root, BUILD_INFO), encoding="utf-8") as f:
        root_info = json.load(f)
    return {
        "what": "each TFLite / ONNX format of this export run on aarch64 kernels (QEMU user-mode emulation) "
                "and judged against Keras with parity.json's rules; emulated, so no timings",
        "pairs": len(pairs),
        "parity_pairs": len(manifest),
        "data": pairs.source,
        "threshold": parity.THRESHOLD,
        "keras": {"model": os.path.abspath(model_path), "roc_auc": parity._auc(pairs.labels, reference["p"])},
        "emulator": {"qemu": qemu_version(qemu), "cpus": platforms},
        "root": {"path": root, "suite": root_info.get("suite"), "python": root_info.get("python"),
                 "wheels": root_info.get("wheels"), "key": cache_key(spec),
                 "built_now": built is not None, **({"build": built} if built else {})},
        "x86": {"machine": platform.machine(), "versions": x86_info.get("versions")},
        "formats": formats,
        "passed": all(f["passed"] for f in formats.values()),
    }


if __name__ == "__main__":  # `python -m neipalette_tf.export.arm64`: the `export-arm64` command
    import runpy

    runpy.run_module("neipalette_tf.commands.export_arm64", run_name="__main__", alter_sys=True)
