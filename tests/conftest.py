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


def snapshot(folder):
    """{relative path: bytes} of every file under `folder` (to check that nothing changed)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """A small synthetic data set rendered once per test session."""
    from neipalette_tf.data import synth

    out = tmp_path_factory.mktemp("synth")
    synth.generate(out, pairs=80, seed=3, image_size=48, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def explain_export(tmp_path_factory):
    """A tiny siamese model and its export with the attention graphs, for the explain and serve tests.

    Trained like test_export's (32 px, 3 epochs on its solid-colour pairs), exported to
    SavedModel, ONNX and int8 TFLite. Returns (run folder, export folder, pairs.csv).
    """
    import keras
    from test_export import SIZE, make_pairs

    from neipalette_tf.core.io_utils import write_json, write_text
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import PairData
    from neipalette_tf.export.exporter import export_model
    from neipalette_tf.models import build_classifier
    from neipalette_tf.training import config
    from neipalette_tf.training.loop import compile_model, supervised_training_model

    pairs_csv = make_pairs(tmp_path_factory.mktemp("explain-pairs"))
    keras.utils.set_random_seed(0)
    run = tmp_path_factory.mktemp("explain-run")
    train = PairData(read_manifest(pairs_csv).subset("train"), SIZE)
    model, _ = build_classifier("resnet18", SIZE, weights="none", log=lambda *_: None)
    trainee = supervised_training_model(model, colour=False, all_pairs=False)
    compile_model(trainee, 3e-4, 3 * -(-len(train) // 32))
    trainee.fit({"top": train.top.astype("float32"), "bottom": train.bottom.astype("float32")}, train.labels,
                batch_size=32, epochs=3, verbose=0)
    model.save(run / "model.keras")
    write_text(run / "config.yaml", config.dump(config.resolve(None, {"data.path": str(pairs_csv)})))
    write_json(run / "metrics.json", {"roc_auc": 0.5, "accuracy": 0.5, "n": 160})
    out = tmp_path_factory.mktemp("explain-artifacts") / "X"
    report = export_model(str(run / "model.keras"), str(out), ["savedmodel", "onnx", "tflite_int8"], log=lambda *_: None)
    assert report["passed"], report
    return run, out, pairs_csv
