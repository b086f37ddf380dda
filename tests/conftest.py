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
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout, before any install

from helpers import ROOT, SHARED, SIZE, make_pairs, shared_path, snapshot  # noqa: E402,F401 - re-exported


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic data set rendered once per test session."""
    from neipalette_tf.data import synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate(out, pairs=80, seed=3, image_size=48, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory):
    """The solid-colour pairs of `helpers.make_pairs` (train 200, val 16, test 160)."""
    return make_pairs(tmp_path_factory.mktemp("tiny-pairs"))


@pytest.fixture(scope="session")
def tiny_run(tiny_pairs, tmp_path_factory):
    """A run folder like training writes (model.keras, config.yaml, metrics.json), built once per session.

    A siamese ResNet18 (32 px, no pretrained weights) trained for 5 epochs on
    `tiny_pairs`: enough to spread its outputs, too little to saturate them,
    so parity checks mean something. Tests must not change it.
    """
    import keras

    from neipalette_tf.core.io_utils import write_json, write_text
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import config
    from neipalette_tf.training.loop import compile_model, supervised_training_model

    keras.utils.set_random_seed(0)
    out = tmp_path_factory.mktemp("tiny-run")
    train = PairData(read_manifest(tiny_pairs).subset("train"), SIZE)
    # rule v1: the export tests check the graphs' structure (XNNPACK partitions, float scopes) on the
    # model they were written for; people models' exports: tests/export/test_export_people.py
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *_: None, harmony="rule-v1")
    epochs, batch = 5, 32  # 3 left ~30 pairs near 0.5: int8 decision agreement sat on its 97 % bound
    trainee = supervised_training_model(model, colour=False, all_pairs=False)  # logits out
    compile_model(trainee, 3e-4, epochs * -(-len(train) // batch))
    trainee.fit({"top": train.top.astype("float32"), "bottom": train.bottom.astype("float32")}, train.labels,
                batch_size=batch, epochs=epochs, verbose=0)
    model.save(out / "model.keras")
    write_text(out / "config.yaml", config.dump(config.resolve(None, {"data.path": str(tiny_pairs),
                                                                       "harmony": "rule-v1"})))
    write_json(out / "metrics.json", {"roc_auc": 0.5, "accuracy": 0.5, "n": 160})
    return out


@pytest.fixture(scope="session")
def tiny_export(tiny_run, tmp_path_factory):
    """(export folder, parity report) of `tiny_run` in every format, built once per session.

    `python -m export` runs in a subprocess: the converters' peak memory
    (several GB for int8 calibration and tf2onnx) goes when it exits,
    instead of staying in the test process beside the rest of the suite.
    """
    import json
    import subprocess

    out = tmp_path_factory.mktemp("tiny-artifacts") / "X"
    done = subprocess.run([sys.executable, "-m", "export", "--model", str(tiny_run / "model.keras"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    report_path = out / "parity.json"
    assert report_path.is_file(), f"export failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    return out, json.loads(report_path.read_text())


@pytest.fixture(scope="session")
def explain_export(tiny_run, tiny_export, tiny_pairs):
    """(run folder, export folder, pairs.csv) for the explain, ranking and serve tests."""
    assert tiny_export[1]["passed"], tiny_export[1]
    return tiny_run, tiny_export[0], tiny_pairs


# The tiny model and its export under the names the export, predict and runtime tests use.
@pytest.fixture(scope="session")
def pairs_csv(tiny_pairs):
    return tiny_pairs


@pytest.fixture(scope="session")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="session")
def exported(tiny_export):
    return tiny_export


@pytest.fixture(scope="module")
def keras_model(run):
    from neipalette_tf.models import load_model

    return load_model(run / "model.keras")


@pytest.fixture(scope="module")
def sample_pairs(pairs_csv):
    """The first 8 test pairs of `tiny_pairs`: (tops, bottoms) uint8 at SIZE, and the test manifest."""
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import load_images

    test = read_manifest(pairs_csv).subset("test")
    return load_images(test.column("top")[:8], SIZE), load_images(test.column("bottom")[:8], SIZE), test


# Fixtures that train or export a model: a test using one belongs to the full suite, not the fast tier.
HEAVY_FIXTURES = {"tiny_run", "tiny_export", "explain_export"}


def _module_fixtures(item):
    """Names of the module-scoped fixtures `item` uses that its own test module defines."""
    module = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)
    return {name for name, defs in (info.name2fixturedefs.items() if info else ())
            if defs and defs[-1].scope in ("module", "class") and defs[-1].baseid == module}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the xdist_group markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
            # With pytest-xdist (`-n 2 --dist loadgroup`, the README's command) every test of the shared
            # trained model runs in one worker, so the session builds and exports it once.
            item.add_marker(pytest.mark.xdist_group("tiny_model"))
        elif item.get_closest_marker("xdist_group") is None and _module_fixtures(item):
            # likewise the tests of one module sharing a module fixture (a model, an export, a server):
            # split over two workers, each would build it (test_recommend's export: twice 48 s)
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.fixture(autouse=True, scope="module")
def _free_models_after_each_module():
    """Drop Keras' global state and collect after every test module.

    One pytest process runs every module; without this the models, traced
    functions and converter graphs of earlier modules stay reachable through
    Keras' global state and the process grew past 16 GB by the other-kernel
    portability test, whose subprocess was then OOM-killed beside it (2026-12-02,
    24 GB machine).
    """
    yield
    import gc

    from neipalette_tf.core import memory

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)
    memory.release()  # gc, then hand freed heap pages back to the system
    # What survived is long-lived (TensorFlow's and Keras' modules, session fixtures): the next
    # module's collections skip it. Without this each module's teardown scanned every object
    # TensorFlow had loaded: 2.6 s a module on average in a long worker, 395 s in one (loaded) suite run.
    gc.freeze()
