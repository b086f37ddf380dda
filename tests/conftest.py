"""Shared test fixtures. Tests never touch the network."""

import os
import pathlib
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's portable CPU kernels (Eigen), what CPUs without AVX-512 VNNI / BF16 / AMX run by
# default: the suite tests where most users run, whichever CPU CI has (tests/test_portability.py
# runs the tiny end-to-end path on the other kernel set). Set before TensorFlow is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def shared_path(*parts):
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared holds the rule vectors and real pairs)")
    return path


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic data set rendered once per test session."""
    from neipalette_tf.data import synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate(out, pairs=80, seed=3, image_size=48, workers=1, progress=False)
    return out
