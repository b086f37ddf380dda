"""`load_image` (neipalette_tf/core/preprocessing.py) on hostile files: bounded memory on big 16-bit and
grey-alpha PNGs, no silent wrong decodes (moved from tests/test_robustness.py, issue 17's classes 7 and 8;
more image input tests: tests/core/test_image_input.py)."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from /proc (Linux)")
@pytest.mark.parametrize("mode", ["I;16", "LA"])
def test_big_16_bit_and_grey_alpha_pngs_decode_in_bounded_memory(tmp_path, mode):
    """A 6000 x 6000 PNG (36 Mpx): the decoded image plus one 8-bit copy, not float64 copies of it."""
    side = 6000
    if mode == "I;16":
        arr = np.full((side, side), 40000, np.uint16)
        arr[side // 2:] = 1000
        image, per_pixel = Image.fromarray(arr), 2
    else:
        arr = np.empty((side, side, 2), np.uint8)
        arr[..., 0], arr[..., 1] = 100, 200
        image, per_pixel = Image.fromarray(arr, "LA"), 4  # Pillow keeps LA in 4 bytes per pixel
    image.save(tmp_path / "big.png", compress_level=1)
    del arr, image
    script = textwrap.dedent("""
        import json, resource, sys
        from neipalette_tf.core.preprocessing import load_image
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        x = load_image(sys.argv[1], 96)
        peak = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]
        print(json.dumps([x[5, 48].tolist(), x[90, 48].tolist(), peak, base]))
    """)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(tmp_path / "big.png")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr
    top, bottom, peak_kb, base_kb = json.loads(done.stdout.strip().splitlines()[-1])
    bound_kb = base_kb + side * side * (per_pixel + 3) // 1024 + 64_000
    assert peak_kb < bound_kb, f"peak {peak_kb // 1024} MB, bound {bound_kb // 1024} MB"
    if mode == "I;16":
        assert top == [156] * 3 and bottom == [4] * 3  # 40000 / 65535 * 255, 1000 / 65535 * 255
    else:
        assert top == bottom == [133] * 3  # 100 at alpha 200 on white


def test_cut_jpeg_with_an_end_marker_is_an_error_not_grey(tmp_path):
    from neipalette_tf.core.preprocessing import ImageLoadError, load_image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray((rng.random((120, 160, 3)) * 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[:int(len(data) * 0.4)] + b"\xff\xd9")
    with pytest.raises(ImageLoadError, match="cut.jpg: truncated JPEG data"):
        load_image(tmp_path / "cut.jpg", 32)
    (tmp_path / "whole.jpg").write_bytes(data)
    load_image(tmp_path / "whole.jpg", 32)
    Image.new("RGB", (40, 40), (128, 128, 128)).save(tmp_path / "grey.jpg")  # a flat mid-grey photo is fine
    assert (load_image(tmp_path / "grey.jpg", 16) == 128).all()


def test_float_tiff_in_0_to_1_is_scaled_not_black(tmp_path):
    from neipalette_tf.core.preprocessing import load_image

    arr = np.full((10, 10), 0.5, np.float32)
    Image.fromarray(arr, "F").save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    assert load_image(tmp_path / "f.tif", 8)[4, 4].tolist() == [128, 128, 128]
