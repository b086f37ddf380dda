"""`neipalette_tf.evaluation.calibration_embeddings`: what an evaluation folder gains (reliability diagram,
calibration section and keys, embedding view), on hand-made logits and a stand-in model.

The stand-in model has what the module reads of a HarmonyClassifier
(`temperature`, `calibration_shift`, `pairing`, `encoder()`,
`logits_model()`); the data is a stand-in `PairData` (labels and decoded
images). A trained model's evaluation folder is checked end to end in
tests/training/test_train_e2e.py and test_multiworker.py.
"""

import json
import types

import numpy as np
import pytest

from neipalette_tf.evaluation import calibration
from neipalette_tf.evaluation import calibration_embeddings as ce

N = 40
TEMPERATURE, SHIFT = 2.0, 0.3


@pytest.fixture(autouse=True)
def _one_openmp_thread():
    """t-SNE on one OpenMP thread: on a busy 2-core machine its spin-waits cost seconds (test_embedding_view)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


class Encoder:
    def predict(self, x, batch_size, verbose):
        hue = x[:, 0, 0, 0].astype(np.float64)  # the test images carry their garment's hue / 2 in one pixel
        return np.stack([np.cos(np.radians(hue * 2)), np.sin(np.radians(hue * 2))], 1)


class LogitsModel:
    def __init__(self, logits):
        self.logits = logits

    def predict(self, dataset, verbose):
        return self.logits.astype(np.float32)


def model(pairing="siamese", logits=None):
    return types.SimpleNamespace(temperature=TEMPERATURE, calibration_shift=SHIFT, pairing=pairing,
                                 encoder=lambda: Encoder(), logits_model=lambda: LogitsModel(logits))


def logits_and_labels(seed=0):
    """Over-confident logits: right 75 % of the time with margins far larger than that."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, N)
    right = rng.random(N) < 0.75
    sign = np.where(labels == 1, 1.0, -1.0) * np.where(right, 1.0, -1.0)
    margin = sign * rng.uniform(2.0, 5.0, N)
    return np.stack([-margin / 2, margin / 2], 1), labels


def split(colours=True):
    """(data, manifest) of N pairs: top i has hue 9 i, bottom i hue 9 i + 180; images carry hue / 2."""
    rows, tops, bottoms = [], np.zeros((N, 4, 4, 3), np.uint8), np.zeros((N, 4, 4, 3), np.uint8)
    _, labels = logits_and_labels()
    for i in range(N):
        hues = (9.0 * i, (9.0 * i + 180) % 360)
        row = {"top": f"t{i}.png", "bottom": f"b{i}.png", "label": str(labels[i])}
        if colours:
            for kind, h in zip(("top", "bottom"), hues):
                row.update({f"{kind}_L": 0.6, f"{kind}_C": 0.15, f"{kind}_h": h})
        rows.append(row)
        tops[i, 0, 0, 0], bottoms[i, 0, 0, 0] = hues[0] / 2, hues[1] / 2
    data = types.SimpleNamespace(labels=labels, cache=True, top=tops, bottom=bottoms)
    return data, types.SimpleNamespace(rows=rows)


@pytest.fixture
def drawn(monkeypatch):
    """The reliability diagrams asked for, (curve names, file name, title), instead of drawing them (~0.3 s each;
    the first siamese test draws a real one)."""
    calls = []

    def record(curves, path, title):
        calls.append((list(curves), path.rsplit("/", 1)[-1], title))
        open(path, "wb").close()

    monkeypatch.setattr(ce.calibration, "plot_reliability", record)
    return calls


@pytest.fixture
def evaluated(tmp_path):
    """A folder as `write_evaluation` leaves it (metrics.json, report.md), hand-written."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text(json.dumps({"roc_auc": 0.75, "n": N, "split": "test"}))
    (out / "report.md").write_text("# Evaluation\n\nmetrics table\n\n\n")
    return out


def test_split_logits_are_the_models_raw_logits_and_p_at_its_calibration():
    logits, _ = logits_and_labels()
    got, p = ce.split_logits(model(logits=logits), data=types.SimpleNamespace(dataset=lambda b: None))
    assert got.dtype == np.float64 and got.shape == (N, 2)
    np.testing.assert_allclose(got, logits.astype(np.float32))
    np.testing.assert_allclose(p, calibration.probabilities(got, TEMPERATURE, SHIFT)[:, 1])
    assert np.abs(p - calibration.softmax(got)[:, 1]).max() > 0.05  # (T, s) really applied


def test_decoded_images_come_from_the_cache_or_from_one_pass_in_order():
    data, _ = split()
    tops, bottoms = ce.decoded_images(data)
    assert tops is data.top and bottoms is data.bottom  # cached: not decoded again

    def dataset(batch_size):
        for i in range(0, N, batch_size):
            x = {"top": data.top[i:i + batch_size].astype(np.float32),
                 "bottom": data.bottom[i:i + batch_size].astype(np.float32)}
            yield x, data.labels[i:i + batch_size]

    streamed = types.SimpleNamespace(cache=False, dataset=dataset)
    tops, bottoms = ce.decoded_images(streamed, batch_size=16)  # 16 + 16 + 8
    assert tops.dtype == np.uint8 and tops.shape == data.top.shape
    np.testing.assert_array_equal(tops, data.top) and np.testing.assert_array_equal(bottoms, data.bottom)


def test_a_siamese_evaluation_gains_calibration_and_the_embedding_view(evaluated):
    logits, labels = logits_and_labels()
    data, manifest = split()
    metrics = ce.add_calibration_and_embeddings(evaluated, model(), data, manifest, logits, "test")
    on_disk = json.loads((evaluated / "metrics.json").read_text())
    assert metrics == on_disk
    assert {k: on_disk[k] for k in ("roc_auc", "n", "split")} == {"roc_auc": 0.75, "n": N, "split": "test"}
    after = calibration.probabilities(logits, TEMPERATURE, SHIFT)
    assert on_disk["temperature"] == TEMPERATURE and on_disk["calibration_shift"] == SHIFT
    assert on_disk["ece_before"] == pytest.approx(calibration.expected_calibration_error(
        calibration.softmax(logits), labels))
    assert on_disk["ece_after"] == pytest.approx(calibration.expected_calibration_error(after, labels))
    assert on_disk["ece_after"] < on_disk["ece_before"]  # T = 2 tempers these over-confident logits
    assert on_disk["calibration"]["evaluated"]["n"] == N and on_disk["calibration"]["fitted"] is None
    assert "calibration_note" not in on_disk
    view = on_disk["embedding_view"]
    assert view["garments"] == 2 * N and view["hue_neighbour_agreement"]["agreement"] > 0.9  # a hue circle
    assert (evaluated / "reliability.png").stat().st_size > 5000
    assert (evaluated / "embedding_tsne.png").stat().st_size > 5000

    report = (evaluated / "report.md").read_text()
    assert report.startswith("# Evaluation\n\nmetrics table\n\n## Calibration\n")  # appended after one blank line
    assert f"T = {TEMPERATURE:.3f}, s = {SHIFT:+.3f}" in report and "stored calibration" in report
    assert f"| T = 1 (before) | {on_disk['calibration']['evaluated']['nll_before']:.4f} | " \
           f"{on_disk['ece_before']:.4f} |" in report
    assert f"| T = {TEMPERATURE:.3f} (after) |" in report and "![Reliability diagram](reliability.png)" in report
    assert "## Embedding view" in report and f"test split's {2 * N} garments" in report
    assert "![t-SNE of garment embeddings](embedding_tsne.png)" in report and report.endswith(")\n")
    assert report.index("## Calibration") < report.index("## Embedding view")


@pytest.mark.parametrize("case", ["joint pairing", "embeddings off", "no colours"])
def test_no_embedding_view_for_a_joint_model_when_off_or_without_colours(evaluated, case, drawn):
    logits, _ = logits_and_labels()
    data, manifest = split(colours=case != "no colours")
    never = model("joint" if case == "joint pairing" else "siamese")
    never.encoder = lambda: pytest.fail("the encoder was used")
    if case == "no colours":
        never.encoder = lambda: Encoder()  # built, but the split has nothing to colour the map with
    metrics = ce.add_calibration_and_embeddings(evaluated, never, data, manifest, logits, "val",
                                                embeddings=case != "embeddings off")
    assert "embedding_view" not in metrics and "ece_after" in metrics
    assert not (evaluated / "embedding_tsne.png").exists() and (evaluated / "reliability.png").exists()
    assert "## Embedding view" not in (evaluated / "report.md").read_text()
    assert drawn == [(["before (T = 1)", "after (T = 2.000, s = +0.30)"], "reliability.png",
                      "Reliability diagram, val split")]


def test_a_fit_done_now_or_skipped_is_described(evaluated, tmp_path, drawn):
    logits, _ = logits_and_labels()
    data, manifest = split()
    fitted = {"split": "val", "n": 24, "nll_before": 0.9, "nll_after": 0.61, "temperature": TEMPERATURE,
              "shift": SHIFT}
    m = ce.add_calibration_and_embeddings(evaluated, model(), data, manifest, logits, "test", fitted=fitted,
                                          embeddings=False)
    assert m["calibration"]["fitted"] == fitted and "calibration_note" not in m
    assert "T and s were fitted on the val split (24 pairs: NLL 0.9000 -> 0.6100)" in \
        (evaluated / "report.md").read_text()

    again = tmp_path / "again"
    again.mkdir()
    (again / "metrics.json").write_text("{}")
    (again / "report.md").write_text("# Evaluation\n")
    skipped = dict(fitted, fit_skipped="only 3 pairs of one label")
    m = ce.add_calibration_and_embeddings(again, model(), data, manifest, logits, "test", fitted=skipped,
                                          embeddings=False)
    assert m["calibration_note"] == ("temperature kept at 2: the val split cannot support a fit "
                                     "(only 3 pairs of one label)")
    report = (again / "report.md").read_text()
    assert "are the starting model's: the val split (24 pairs) cannot support a fit (only 3 pairs of one label)" \
        in report and "were fitted" not in report


def test_existing_metrics_keys_are_never_overwritten(evaluated, drawn):
    logits, _ = logits_and_labels()
    data, manifest = split()
    (evaluated / "metrics.json").write_text(json.dumps({"roc_auc": 0.75, "temperature": 1.0}))
    with pytest.raises(ValueError, match=r"keys \['temperature'\] exist already"):
        ce.add_calibration_and_embeddings(evaluated, model(), data, manifest, logits, "test", embeddings=False)
    assert json.loads((evaluated / "metrics.json").read_text()) == {"roc_auc": 0.75, "temperature": 1.0}
