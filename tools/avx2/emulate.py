"""Run a command as on an AVX2 CPU without AVX-512 or VNNI, on an AVX-512 host.

    python tools/avx2/emulate.py --check
    python tools/avx2/emulate.py -- python -m neipalette_tf.export.bench --artifacts artifacts/default

XNNPACK (inside ai_edge_litert), ONNX Runtime's MLAS, NumPy's OpenBLAS and
TensorFlow's own CPU detection choose their kernels from the `cpuid`
instruction, and none of them has an instruction-set cap like oneDNN's
`ONEDNN_MAX_CPU_ISA`. This tool copies those packages into a cache folder
(hard links where it can; the libraries that execute `cpuid` are real
copies), replaces every `cpuid` instruction in those libraries (located by
`objdump -d`, so only real instructions, checked byte by byte) with `ud2`,
and runs the command with `cpuid_mask.c` preloaded: its SIGILL handler runs
the real `cpuid`, clears the AVX-512, AVX-VNNI and AMX bits, and resumes.
The libraries then run their AVX2 (+FMA) code paths on this CPU: the same
instructions an AVX2-only CPU runs, at this core's speed for them, which is
not the same as an AVX2 machine's clock, cache or core (figures from it are
labelled "AVX2 code paths on <host>").

The command also gets ONEDNN_MAX_CPU_ISA=AVX2 and ATEN_CPU_CAPABILITY=avx2
(oneDNN and PyTorch have their own caps) and NEIPALETTE_CPUID_MASK=avx2, with
which the project's `CPU:` line reports the masked flags. TensorFlow's
`libtensorflow_framework` and `libtensorflow_cc` are patched too, so its
oneDNN default is an AVX2 machine's (off, but for the training commands,
which ask for it).

Needs gcc and objdump (binutils); a development tool, not part of the package.
The cache is built once per set of package versions (≈ 2 min), complete or not
at all: it is assembled in a temporary folder and renamed into place.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "cpuid_mask.c")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "neipalette", "avx2-emulation")
CPUID, UD2 = b"\x0f\xa2", b"\x0f\x0b"
# a library patched like the others: what `cpuid` leaf 7 says inside the emulation (tools/avx2/emulate.py --check)
PROBE = r"""
#include <stdint.h>
uint32_t leaf7_ebx(void) { uint32_t a = 7, b, c = 0, d; __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)); return b; }
"""

# package (import name) -> a predicate over a file's path relative to site-packages: the shared
# objects of that package that may execute `cpuid` (and are worth an objdump).
PACKAGES = {
    "ai_edge_litert": lambda rel: ".so" in os.path.basename(rel),
    "onnxruntime": lambda rel: rel.startswith("onnxruntime/capi/") and ".so" in os.path.basename(rel),
    "numpy": lambda rel: rel.startswith("numpy.libs/") and "openblas" in rel,
    "tensorflow": lambda rel: rel in ("tensorflow/libtensorflow_framework.so.2", "tensorflow/libtensorflow_cc.so.2"),
}
# what each package folder drags along (NumPy's OpenBLAS sits beside it in numpy.libs)
COMPANIONS = {"numpy": ["numpy.libs"]}


class EmulationError(Exception):
    pass


def _which(tool):
    path = shutil.which(tool)
    if not path:
        raise EmulationError(f"{tool} not found: tools/avx2/emulate.py needs gcc and objdump (binutils)")
    return path


def cpuid_offsets(path):
    """File offsets of every `cpuid` instruction in the ELF file at `path`, from `objdump -d`."""
    with open(path, "rb") as f:
        data = f.read()
    if CPUID not in data:
        return []
    sections = {}  # the code sections: (VMA, size, file offset)
    headers = subprocess.run([_which("objdump"), "-h", path], capture_output=True, text=True, check=True).stdout
    for m in re.finditer(r"^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\n\s*(.*)$",
                         headers, re.M):
        if "CODE" in m.group(5):
            sections[m.group(1)] = (int(m.group(3), 16), int(m.group(2), 16), int(m.group(4), 16))
    # the listing of a large library runs to gigabytes: grep it on the way
    dump = subprocess.Popen([_which("objdump"), "-d", "--no-show-raw-insn", path], stdout=subprocess.PIPE)
    grep = subprocess.run(["grep", "-E", r"^\s*[0-9a-f]+:\s+cpuid\s*$"], stdin=dump.stdout, capture_output=True,
                          text=True)
    dump.stdout.close()
    if dump.wait() != 0 or grep.returncode > 1:
        raise EmulationError(f"{path}: objdump -d failed")
    listing = grep.stdout
    offsets = []
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+cpuid\s*$", listing, re.M):
        addr = int(m.group(1), 16)
        where = next((addr - vma + off for vma, size, off in sections.values() if vma <= addr < vma + size), None)
        if where is None or data[where:where + 2] != CPUID:  # a cpuid left unpatched would run unmasked
            raise EmulationError(f"{path}: objdump's cpuid at {addr:#x} is not 0f a2 in a code section of the file")
        offsets.append(where)
    return offsets


def patch(path):
    """Replace every `cpuid` of the ELF file at `path` with `ud2`, in place; how many. Breaks a hard link."""
    offsets = cpuid_offsets(path)
    if offsets:
        with open(path, "rb") as f:
            data = bytearray(f.read())
        for at in offsets:
            data[at:at + 2] = UD2
        mode = os.stat(path).st_mode
        os.unlink(path)  # a hard link to the installed file: that one stays as it was
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
    return len(offsets)


def compile_mask(out):
    """Build cpuid_mask.c into the shared library `out`."""
    subprocess.run([_which("gcc"), "-O2", "-shared", "-fPIC", "-o", out, SOURCE, "-ldl"], check=True)


def compile_probe(out):
    """Build PROBE (`leaf7_ebx()`) into the shared library `out`, unpatched."""
    subprocess.run([_which("gcc"), "-O2", "-shared", "-fPIC", "-x", "c", "-o", out, "-"], input=PROBE.encode(),
                   check=True)


def _link_tree(src, dst):
    def link(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _versions():
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in PACKAGES:
        dist = {"ai_edge_litert": "ai-edge-litert"}.get(name, name)
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = None
    return out


def build(cache=DEFAULT_CACHE, log=print):
    """The emulation folder for the installed packages: {"site", "library", "patched"}; built if missing."""
    source = b""
    for path in (SOURCE, os.path.abspath(__file__)):  # a change to the handler or to what is patched rebuilds
        with open(path, "rb") as f:
            source += f.read()
    versions = _versions()
    key = hashlib.sha256(source + json.dumps(versions, sort_keys=True).encode()).hexdigest()[:16]
    final = os.path.join(cache, key)
    manifest = os.path.join(final, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest, encoding="utf-8") as f:
            return json.load(f)
    _which("gcc")
    _which("objdump")
    os.makedirs(cache, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{key}-", dir=cache)
    try:
        site = os.path.join(work, "site")
        os.makedirs(site)
        library = os.path.join(work, "libcpuid_mask.so")
        compile_mask(library)
        probe = os.path.join(site, "cpuid_probe.so")
        compile_probe(probe)
        patch(probe)
        patched = {}
        for name, wanted in PACKAGES.items():
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.submodule_search_locations:
                log(f"avx2: {name} is not installed; skipped")
                continue
            folder = list(spec.submodule_search_locations)[0]
            parent = os.path.dirname(folder)
            for part in [name, *COMPANIONS.get(name, [])]:
                if os.path.isdir(os.path.join(parent, part)):
                    _link_tree(os.path.join(parent, part), os.path.join(site, part))
            for part in [name, *COMPANIONS.get(name, [])]:
                for root, _, files in os.walk(os.path.join(site, part)):
                    for file in files:
                        path = os.path.join(root, file)
                        rel = os.path.relpath(path, site)
                        if os.path.islink(path) or not wanted(rel):
                            continue
                        count = patch(path)
                        if count:
                            patched[rel] = count
                            log(f"avx2: {rel}: {count} cpuid instructions patched")
        info = {"site": os.path.join(final, "site"), "library": os.path.join(final, "libcpuid_mask.so"),
                "patched": patched, "versions": versions}
        with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return info


def environment(info, environ=None):
    """The environment a command runs in under the emulation."""
    env = dict(os.environ if environ is None else environ)
    env["LD_PRELOAD"] = os.pathsep.join(p for p in (info["library"], env.get("LD_PRELOAD")) if p)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (info["site"], env.get("PYTHONPATH")) if p)
    env["NEIPALETTE_CPUID_SITE"] = info["site"] + os.sep
    env["NEIPALETTE_CPUID_MASK"] = "avx2"
    env.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    env.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    return env


CHECK = r"""
import ctypes, json, os, sys
import numpy, onnxruntime, ai_edge_litert.interpreter, tensorflow
out = {m.__name__: m.__file__ for m in (numpy, onnxruntime, ai_edge_litert.interpreter, tensorflow)}
out["avx512f_in_cpuid"] = bool(ctypes.CDLL(sys.argv[1]).leaf7_ebx() & (1 << 16))
count = getattr(ctypes.CDLL(None), "neipalette_cpuid_emulated", None)
out["cpuid_emulated"] = count() if count is not None else None
print(json.dumps(out))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/avx2/emulate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=DEFAULT_CACHE, help="where the patched copies live (default %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="build, then show that NumPy, ONNX Runtime and LiteRT load from the copies and "
                             "that cpuid is emulated (OpenBLAS names the core it chose)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command and not args.check:
        parser.error("give a command after --, or --check")
    try:
        info = build(args.cache, log=lambda m: print(m, file=sys.stderr))
    except (EmulationError, subprocess.CalledProcessError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    env = environment(info)
    if args.check:
        probe = os.path.join(info["site"], "cpuid_probe.so")
        done = subprocess.run([sys.executable, "-c", CHECK, probe], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(f"error: the check failed under the emulation: {done.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)
            return 1
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["patched"] = info["patched"]
        print(json.dumps(result, indent=1))
        ok = result["cpuid_emulated"] and not result["avx512f_in_cpuid"] and all(
            f.startswith(info["site"]) for k, f in result.items() if k in ("numpy", "onnxruntime", "tensorflow"))
        return 0 if ok else 1
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
