"""The page's port of `palette.read_palette` (serving/static/on_device.js `readPalette`) reads raw
palettes exactly as Python does: on the device, the page shows the dominant colour the service shows.

Runs the page's module in Node (skipped where Node is not installed); the browser tests
(test_serve_browser_on_device.py) check the colours end to end against the service."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import ROOT

from neipalette_tf.colour import palette

IMPORT = 'import { loadImage } from "./letterbox.js";'


def _raws(n=600, seed=0):
    """Raw palettes [K, 4] that exercise every rule: near pairs (merge), a blend on the segment, a small share."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        labs = rng.uniform([0.2, -0.2, -0.2], [0.95, 0.2, 0.2], (palette.K, 3))
        if i % 3 == 0:
            labs[1] = labs[0] + rng.normal(0, 0.04, 3)
        if i % 5 == 0:
            labs[2] = 0.5 * (labs[0] + labs[1]) + rng.normal(0, 0.015, 3)
        shares = rng.dirichlet(np.ones(palette.K))
        if i % 7 == 0:
            shares[2] = rng.uniform(0, 0.08)
        out.append(np.concatenate([labs, shares[:, None]], axis=1).astype(np.float32))
    return out


def test_the_pages_read_palette_is_pythons(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    source = (ROOT / "neipalette_tf" / "serving" / "static" / "on_device.js").read_text(encoding="utf-8")
    assert IMPORT in source
    (tmp_path / "on_device.mjs").write_text(source.replace(IMPORT, "const loadImage = null;"), encoding="utf-8")
    raws = _raws()
    (tmp_path / "raws.json").write_text(json.dumps([r.ravel().tolist() for r in raws]))
    (tmp_path / "run.mjs").write_text(
        'import { readPalette } from "./on_device.mjs"; import fs from "fs";\n'
        'const raws = JSON.parse(fs.readFileSync(process.argv[2]));\n'
        'console.log(JSON.stringify(raws.map((r) => readPalette(Float32Array.from(r)).map((e) => [e.lab, e.share]))));\n')
    done = subprocess.run([node, str(tmp_path / "run.mjs"), str(tmp_path / "raws.json")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    sizes = set()
    for raw, page in zip(raws, got, strict=True):
        want = palette.read_palette(raw)
        sizes.add(len(want))
        assert len(page) == len(want), (raw.tolist(), page)
        for (lab, share), (page_lab, page_share) in zip(want, page):
            assert np.allclose(page_lab, lab, atol=1e-9) and page_share == pytest.approx(share, abs=1e-9)
    assert sizes == {1, 2, 3}  # merged, blended, dropped and kept palettes were all compared
