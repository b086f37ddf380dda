"""photo-shift: each photo condition changes a render the way it says, and the figures are the model's."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.evaluation import photo_shift


def _render(colour=(200, 60, 50), size=96):
    """A garment block on a light background, as JPEG bytes."""
    x = np.full((size, size, 3), 225, np.uint8)
    x[20:76, 24:72] = colour
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _mean_lightness(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float64).mean()


@pytest.mark.parametrize("name", [n for n, (_, f) in photo_shift.CONDITIONS.items() if f is not None])
def test_every_condition_gives_a_photo_the_loader_reads(name):
    out = photo_shift.CONDITIONS[name][1](_render(), np.random.default_rng(0))
    assert load_image(out, 32).shape == (32, 32, 3)


def test_conditions_do_what_they_say():
    rng = np.random.default_rng(0)
    render = _render()
    w, h = Image.open(io.BytesIO(photo_shift.CONDITIONS["portrait"][1](render, rng))).size
    assert abs(w / h - 0.75) < 0.02  # a 3:4 frame: the letterbox pads it
    assert Image.open(io.BytesIO(photo_shift.CONDITIONS["large"][1](render, rng))).size == (400, 400)
    assert _mean_lightness(photo_shift.CONDITIONS["dim"][1](render, rng)) < 0.85 * _mean_lightness(render)
    shadow = np.asarray(Image.open(io.BytesIO(photo_shift.CONDITIONS["shadow"][1](render, rng))).convert("L"), float)
    assert shadow[5, :30].mean() < 0.8 * shadow[5, 70:].mean()  # the background's left 40 % in shadow
    warm = np.asarray(Image.open(io.BytesIO(photo_shift.CONDITIONS["warm"][1](render, rng))), float)
    assert warm[0, 0, 0] > warm[0, 0, 2] + 20  # the white background turns warm
    small = np.asarray(Image.open(io.BytesIO(photo_shift.CONDITIONS["small"][1](render, rng))), float)
    garment = np.abs(small - 225).sum(-1) > 60
    assert 0.1 < garment.mean() / (56 * 48 / 96 ** 2) < 0.4  # a quarter of the area (half the side)


class _ByRedness:
    """A stand-in model: p(harmonious) from how red the top is (the figures must be its own)."""

    image_size = 32

    def predict_batch(self, tops, bottoms):
        red = tops[..., 0].mean(axis=(1, 2)) - tops[..., 2].mean(axis=(1, 2))
        return 1 / (1 + np.exp(-red / 20.0))


def test_measure_reports_the_models_figures_per_condition(tiny_synth):
    manifest = read_manifest(tiny_synth).subset("test")
    out = photo_shift.measure(_ByRedness(), manifest, manifest, conditions=["rendered", "dim"], log=lambda *_: None)
    assert set(out["conditions"]) == {"rendered", "dim"}
    for f in list(out["conditions"].values()) + [out["real"]]:
        assert f["n"] == len(manifest) and 0 <= f["accuracy"] <= 1 and 0 <= f["ece"] <= 1
    tops, bottoms = photo_shift.load_pairs(manifest, 32)
    p = _ByRedness().predict_batch(tops, bottoms)
    expected = photo_shift.figures(manifest.labels, p)
    assert out["conditions"]["rendered"] == expected
    assert "| rendered |" in photo_shift.markdown(out, "CPU: test")


def test_photo_like_mixes_every_condition_and_is_seeded(tiny_synth):
    manifest = read_manifest(tiny_synth).subset("train")
    a, b = photo_shift.PhotoLike(manifest, 32, seed=1), photo_shift.PhotoLike(manifest, 32, seed=1)
    assert a.conditions == b.conditions and np.array_equal(a.top, b.top)
    if len(manifest) >= len(photo_shift.PHOTO_MIX):
        assert set(a.conditions) == set(photo_shift.PHOTO_MIX)
    assert a.top.shape == (len(manifest), 32, 32, 3) and list(a.labels) == list(manifest.labels)


def test_cli_refuses_unknown_conditions_in_one_line(tiny_synth, capsys):
    from neipalette_tf.commands import photo_shift as command

    with pytest.raises(command.cli.UserError, match="unknown bogus"):
        command.main(["--model", "nowhere.onnx", "--data", str(tiny_synth), "--conditions", "dim,bogus"])


def test_cli_writes_its_folder_whole(tiny_synth, tmp_path, monkeypatch, capsys):
    from neipalette_tf.commands import photo_shift as command

    monkeypatch.setattr(command, "load_predictor", lambda path: _ByRedness())
    out = tmp_path / "shift"
    assert command.main(["--model", "m.onnx", "--data", str(tiny_synth), "--real", "none", "--conditions",
                         "rendered,jpeg60", "--out", str(out)]) == 0
    result = json.loads((out / "photo_shift.json").read_text())
    assert set(result["conditions"]) == {"rendered", "jpeg60"} and result["real"] is None
    assert sorted(p.name for p in out.iterdir()) == ["photo_shift.json", "photo_shift.md"]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    with pytest.raises(command.cli.UserError):
        command.main(["--model", "m.onnx", "--data", str(tiny_synth), "--real", "none", "--conditions", "rendered",
                      "--out", str(tmp_path / "theirs")])
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "mine"
