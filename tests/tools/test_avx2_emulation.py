"""tools/avx2/emulate.py: `cpuid` seen through the mask, on a library the test builds and patches itself."""

import importlib.util
import os
import platform
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64")
    or not (shutil.which("gcc") and shutil.which("objdump")),
    reason="needs Linux on x86-64 with gcc and objdump")

AVX2 = 1 << 5
AVX512_EBX = sum(1 << b for b in (16, 17, 21, 26, 27, 28, 30, 31))
CALL = "import ctypes, sys; f = ctypes.CDLL(sys.argv[1]).leaf7_ebx; f.restype = ctypes.c_uint32; print(f())"


def _tool():
    spec = importlib.util.spec_from_file_location("avx2_emulate", os.path.join(ROOT, "tools", "avx2", "emulate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _leaf7(probe, env=None):
    done = subprocess.run([sys.executable, "-c", CALL, probe], capture_output=True, text=True, env=env)
    return done.returncode, done.stdout.strip()


def test_patched_cpuid_reports_no_avx512_and_keeps_the_rest(tmp_path):
    tool = _tool()
    site = tmp_path / "site"
    site.mkdir()
    mask, plain, probe = str(tmp_path / "libmask.so"), str(tmp_path / "plain.so"), str(site / "probe.so")
    tool.compile_mask(mask)
    tool.compile_probe(plain)
    shutil.copy(plain, probe)
    assert len(tool.cpuid_offsets(plain)) == 1
    assert tool.patch(probe) == 1 and tool.cpuid_offsets(probe) == []
    with open(plain, "rb") as a, open(probe, "rb") as b:
        before, after = a.read(), b.read()
    assert len(before) == len(after) and sum(x != y for x, y in zip(before, after)) == 1  # a2 -> 0b

    rc, host = _leaf7(plain)
    assert rc == 0
    env = dict(os.environ, LD_PRELOAD=mask, NEIPALETTE_CPUID_SITE=str(site) + os.sep)
    rc, seen = _leaf7(probe, env)
    assert rc == 0, seen
    assert int(seen) == int(host) & ~AVX512_EBX  # the AVX-512 bits go, every other bit stays
    assert int(seen) & AVX2 == int(host) & AVX2

    # the patched library without the handler, and a real ud2 outside the site, still die of SIGILL
    rc, _ = _leaf7(probe)
    assert rc == -4
    outside = tmp_path / "outside.so"
    shutil.copy(probe, outside)
    rc, _ = _leaf7(str(outside), env)
    assert rc == -4


def test_cpu_line_reports_the_mask():
    from neipalette_tf.core.cpu_info import cpu_info

    info = cpu_info({"NEIPALETTE_CPUID_MASK": "avx2", "TF_ENABLE_ONEDNN_OPTS": "0"})
    assert info["avx2"] == cpu_info({})["avx2"]
    assert info["avx512"] is False
