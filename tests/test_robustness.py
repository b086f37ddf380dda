"""Issue 17: nothing a user does loses their data or ends in a traceback.

Every test builds its own hostile input. The classes: data loss (synth),
interrupted runs (staging), output paths, config values, wardrobes, model
files, memory, silent wrong decodes, calibration on tiny data.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, snapshot
from PIL import Image

from neipalette_tf.core import cli, staging
from neipalette_tf.data import synth


def _cli(module, *args, cwd=ROOT, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def _one_line_error(done, status=2):
    err = done.stderr.strip().splitlines()
    err = [line for line in err if line.startswith("error:") or "error: " in line]
    assert done.returncode == status, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(err) == 1, done.stderr[-2000:]
    return err[0]


# --------------------------------------------------------------------------
# 1. Data loss: synth only replaces what it provably wrote
# --------------------------------------------------------------------------


def _user_photos(folder):
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (20, 30), (200, 10, 10)).save(folder / "images" / "my_shirt.jpg")
    (folder / "pairs.csv").write_text("top,bottom,label\nimages/my_shirt.jpg,images/my_shirt.jpg,harmonious\n")
    return snapshot(folder)


def test_synth_refuses_a_users_pairs_csv_and_images(tmp_path):
    before = _user_photos(tmp_path / "mine")
    done = _cli("neipalette_tf.data.synth", "--out", tmp_path / "mine", "--pairs", 20, "--image-size", 32,
                "--workers", 1, "--no-progress")
    line = _one_line_error(done)
    assert "refusing" in line and str(tmp_path / "mine") in line
    assert snapshot(tmp_path / "mine") == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_synth_refuses_its_own_data_set_with_a_users_photo_added(tmp_path):
    out = tmp_path / "d"
    synth.generate(out, pairs=20, image_size=32, workers=1, progress=False)
    Image.new("RGB", (20, 30), (0, 0, 200)).save(out / "images" / "holiday.jpg")
    with pytest.raises(ValueError, match="holiday.jpg"):
        synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False)
    assert (out / "images" / "holiday.jpg").is_file()


def test_synth_replaces_its_own_data_set(tmp_path):
    out = tmp_path / "d"
    synth.generate(out, pairs=20, image_size=32, workers=1, progress=False)
    synth.generate(out, pairs=20, seed=1, image_size=32, workers=1, progress=False)
    assert json.loads((out / "dataset.json").read_text())["parameters"]["seed"] == 1
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no staging or old folder left


def test_train_data_path_at_a_users_folder_is_refused(tmp_path):
    before = _user_photos(tmp_path / "mine")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  path: {tmp_path / 'photos'}\n")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"mine")
    done = _cli("neipalette_tf.train", "--config", config, "--out", tmp_path / "run")
    line = _one_line_error(done)
    assert "data.path" in line and "refusing" in line
    assert (tmp_path / "photos" / "a.jpg").read_bytes() == b"mine" and snapshot(tmp_path / "mine") == before
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------
# 3. Output paths: checked before the work, one line naming the path
# --------------------------------------------------------------------------


def test_output_path_checks_name_the_path(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(cli.UserError, match="afile: --out exists and is a file"):
        staging.check_output_folder(afile)
    with pytest.raises(cli.UserError, match="is a file, so --out"):
        staging.check_output_folder(afile / "sub" / "run")
    with pytest.raises(cli.UserError, match="--out is a folder"):
        staging.check_output_file(tmp_path, "--out")
    assert afile.read_text() == "mine"


@pytest.mark.parametrize("module,extra", [
    ("neipalette_tf.train", ["--epochs", "1"]),
    pytest.param("neipalette_tf.evaluate", ["--model", "m.keras"], marks=pytest.mark.slow),
    pytest.param("export", ["--model", "m.keras"], marks=pytest.mark.slow),
])
def test_out_that_is_a_file_is_one_line_before_any_work(tmp_path, module, extra):
    (tmp_path / "m.keras").write_bytes(b"not read")
    (tmp_path / "pairs.csv").write_text("top,bottom,label\n")
    (tmp_path / "out").write_text("mine")
    args = [*extra, "--out", tmp_path / "out"]
    if module != "export":
        args += ["--data", tmp_path / "pairs.csv"]
    done = _cli(module, *[a if not str(a).endswith("m.keras") else tmp_path / "m.keras" for a in args])
    line = _one_line_error(done)
    assert str(tmp_path / "out") in line and "is a file" in line
    assert (tmp_path / "out").read_text() == "mine"


def test_oserror_with_a_path_is_one_line(capsys):
    def main(argv):
        raise PermissionError(13, "Permission denied", "/some/where")

    with pytest.raises(SystemExit) as e:
        cli.run(main, [])
    assert e.value.code == 2 and capsys.readouterr().err.strip() == "error: /some/where: Permission denied"


# --------------------------------------------------------------------------
# 4. Config values: type and range of every key, before any work
# --------------------------------------------------------------------------


@pytest.mark.parametrize("module,args,message", [
    ("neipalette_tf.train", ["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    pytest.param("neipalette_tf.train", ["--learning-rate", "inf"], "train.learning_rate must be a finite number > 0",
                 marks=pytest.mark.slow),
    pytest.param("neipalette_tf.train", ["--seed", "1.5"], "invalid int value", marks=pytest.mark.slow),
    pytest.param("neipalette_tf.evaluate", ["--model", "m.keras", "--data", "d.csv", "--batch-size", "0"],
                 "--batch-size must be at least 1", marks=pytest.mark.slow),
])
def test_bad_flags_are_one_line_before_any_work(tmp_path, module, args, message):
    done = _cli(module, *args, "--out", tmp_path / "o", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# 5 + 6. recommend on real wardrobes; model files checked on load
# --------------------------------------------------------------------------

SIZE = 8


def _siamese_onnx(folder, size=SIZE, card=True, harmony_name="harmony"):
    """A hand-built siamese export: encoder (mean colour), head (sigmoid of the brightness difference), model."""
    import onnx
    from onnx import TensorProto, helper

    from neipalette_tf.export.exporter import artifact_sha256

    def image(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size, size, 3])

    def vector(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", 3])

    def save(name, nodes, inputs, outputs, init):
        model = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, init),
                                  opset_imports=[helper.make_opsetid("", 18)])
        onnx.save(model, str(folder / f"{name}.onnx"))

    axes = [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2]),
            helper.make_tensor("all", TensorProto.INT64, [1], [1]),
            helper.make_tensor("scale", TensorProto.FLOAT, [], [1 / 255.0])]
    head = [helper.make_node("Sub", ["a", "b"], ["d"]), helper.make_node("ReduceMean", ["d", "all"], ["m"], keepdims=0),
            helper.make_node("Mul", ["m", "scale"], ["l"]), helper.make_node("Sigmoid", ["l"], [harmony_name])]
    out = [helper.make_tensor_value_info(harmony_name, TensorProto.FLOAT, ["batch"])]
    save("encoder", [helper.make_node("ReduceMean", ["image", "axes"], ["embedding"], keepdims=0)],
         [image("image")], [vector("embedding")], axes[:1])
    save("head", [helper.make_node("Identity", ["top_embedding"], ["a"]),
                  helper.make_node("Identity", ["bottom_embedding"], ["b"]), *head],
         [vector("top_embedding"), vector("bottom_embedding")], out, axes[1:])
    save("model", [helper.make_node("ReduceMean", ["top", "axes"], ["a"], keepdims=0),
                   helper.make_node("ReduceMean", ["bottom", "axes"], ["b"], keepdims=0), *head],
         [image("top"), image("bottom")], out, axes)
    if card:
        entry = {part: {"file": f"{part}.onnx", "sha256": artifact_sha256(folder / f"{part}.onnx")}
                 for part in ("model", "encoder", "head")}
        (folder / "model_card.json").write_text(json.dumps({"image_size": size, "artifacts": {"onnx": entry}}))
    return folder / "model.onnx"


def _photo(path, colour, size=(12, 16)):
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture()
def wardrobe(tmp_path):
    w = tmp_path / "wardrobe"
    w.mkdir()
    for i, c in enumerate([(250, 250, 250), (10, 10, 10), (120, 60, 30)]):
        _photo(w / f"g{i}.png", c)
    query = _photo(tmp_path / "query.png", (200, 200, 200))
    model = tmp_path / "export"
    model.mkdir()
    return {"w": w, "query": query, "model": _siamese_onnx(model)}


def _recommend(wardrobe, *extra):
    return _cli("neipalette_tf.recommend", "--model", wardrobe["model"], "--top", wardrobe["query"],
                "--wardrobe", wardrobe["w"], "--json", *extra)


def test_recommend_skips_and_lists_bad_garments_and_ranks_the_rest(wardrobe):
    w = wardrobe["w"]
    (w / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    os.symlink(w / "loop_b.jpg", w / "loop_a.jpg")
    os.symlink(w / "loop_a.jpg", w / "loop_b.jpg")
    bad_name = os.fsdecode(b"bad\xff\xfename.png")
    _photo(os.path.join(os.fsencode(w), b"bad\xff\xfename.png"), (60, 60, 200))
    done = _recommend(wardrobe)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    ranked = [os.path.basename(r["file"]) for r in result["ranking"]]
    assert ranked[0] == "g1.png" and len(ranked) == 4 and "bad\\xff\\xfename.png" in ranked, ranked
    skipped = sorted(os.path.basename(s["file"]) for s in result["skipped"])
    assert skipped == ["cut.jpg", "loop_a.jpg", "loop_b.jpg"]
    assert "Traceback" not in done.stderr and bad_name


def test_recommend_survives_a_foreign_cache_index_and_a_read_only_cache(wardrobe, tmp_path):
    cache = wardrobe["w"] / ".neipalette-cache"
    cache.mkdir()
    (cache / "files.json").write_text("[1, 2, 3]")  # valid JSON, not an object
    done = _recommend(wardrobe)
    assert done.returncode == 0 and json.loads(done.stdout)["cache"]["written"], done.stderr
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder's parent should be")
    done = _recommend(wardrobe, "--cache", blocker / "cache")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("ranking without caching") == 1
    assert json.loads(done.stdout)["cache"]["written"] is False


@pytest.mark.parametrize("case,message", [
    ("out_folder", "--out is a folder"),
    ("cache_file", "--cache is a file"),
    ("card_corrupt", "unreadable model card"),
    ("card_list", "a model card is a JSON object"),
    ("encoder_empty", "encoder.onnx: empty file (0 bytes)"),
    ("encoder_changed", "SHA-256"),
])
def test_recommend_bad_outputs_and_model_files_are_one_line(wardrobe, tmp_path, case, message):
    folder = wardrobe["model"].parent
    extra = []
    if case == "out_folder":
        extra = ["--out", tmp_path]
    elif case == "cache_file":
        (tmp_path / "c").write_text("x")
        extra = ["--cache", tmp_path / "c"]
    elif case == "card_corrupt":
        (folder / "model_card.json").write_text("{ not json")
    elif case == "card_list":
        (folder / "model_card.json").write_text("[]")
    elif case == "encoder_empty":
        card = json.loads((folder / "model_card.json").read_text())
        del card["artifacts"]["onnx"]["encoder"]["sha256"]
        (folder / "model_card.json").write_text(json.dumps(card))
        (folder / "encoder.onnx").write_bytes(b"")
    elif case == "encoder_changed":
        data = bytearray((folder / "encoder.onnx").read_bytes())
        data[-5] ^= 0xFF
        (folder / "encoder.onnx").write_bytes(bytes(data))
    line = _one_line_error(_recommend(wardrobe, *extra))
    assert message in line, line
    if case == "encoder_changed":
        done = _recommend(wardrobe, "--no-verify")
        assert "SHA-256" not in done.stderr


def test_foreign_onnx_and_a_card_that_disagrees_with_the_graph(tmp_path):
    from neipalette_tf.predictors.runtime import ArtifactError, HarmonyRuntime

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    _siamese_onnx(foreign, card=False, harmony_name="score")
    with pytest.raises(ArtifactError, match="not a NeiPalette model graph.*'harmony'"):
        HarmonyRuntime(foreign / "model.onnx").model  # noqa: B018
    sized = tmp_path / "sized"
    sized.mkdir()
    _siamese_onnx(sized)
    card = json.loads((sized / "model_card.json").read_text())
    (sized / "model_card.json").write_text(json.dumps(dict(card, image_size=48)))
    with pytest.raises(ArtifactError, match="image_size 48"):
        HarmonyRuntime(sized / "model.onnx").model  # noqa: B018
    for bad in ("foreign", "sized"):
        folder = tmp_path / bad
        _photo(tmp_path / "a.png", (1, 2, 3))
        done = _cli("neipalette_tf.predict", "--model", folder / "model.onnx", tmp_path / "a.png", tmp_path / "a.png")
        _one_line_error(done)


def test_flipped_bytes_in_an_artifact_are_refused_unless_no_verify(tmp_path):
    folder = tmp_path / "e"
    folder.mkdir()
    _siamese_onnx(folder)
    _photo(tmp_path / "a.png", (1, 2, 3))
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-3] ^= 0x01  # a changed weight
    (folder / "model.onnx").write_bytes(bytes(data))
    line = _one_line_error(_cli("neipalette_tf.predict", "--model", folder / "model.onnx", tmp_path / "a.png",
                                tmp_path / "a.png"))
    assert "SHA-256" in line and "model.onnx" in line
    done = _cli("neipalette_tf.predict", "--model", folder / "model.onnx", tmp_path / "a.png", tmp_path / "a.png",
                "--no-verify")
    assert "SHA-256" not in done.stderr


def test_corrupt_backup_state_is_no_backup(tmp_path, capsys):
    from neipalette_tf.training.resume import read_state

    backup = tmp_path / "backup"
    backup.mkdir()
    for text in ("{ truncated", "[1, 2]", '{"epoch": "two"}', json.dumps(
            {"phase": 1, "phase_done": False, "epoch": 2, "weights": "gone.h5", "seeds": "s.npz", "epoch_logs": []})):
        (backup / "state.json").write_text(text)
        assert read_state(backup) is None
    assert "unusable backup" in capsys.readouterr().out


# --------------------------------------------------------------------------
# 9. Calibration on a validation split that cannot support a fit
# --------------------------------------------------------------------------


class _Model:
    def __init__(self, temperature, logits):
        self.temperature = temperature
        self._logits = logits

    def set_temperature(self, t):
        self.temperature = t

    def set_calibration(self, t, shift=0.0):
        self.temperature, self.calibration_shift = t, shift


class _Data:
    def __init__(self, labels):
        self.labels = np.asarray(labels)


@pytest.mark.parametrize("n,separated,reason", [(8, False, "8 pairs"), (40, True, None), (40, False, None)])
def test_calibration_keeps_the_starting_temperature_when_the_split_cannot_support_a_fit(monkeypatch, n, separated,
                                                                                        reason):
    from neipalette_tf.evaluation import calibration

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * (n // 2))
    margin = (labels * 2 - 1) * (3 + rng.random(n)) if separated else rng.normal(0, 3, n) + (labels - 0.5)
    logits = np.stack([np.zeros(n), margin], 1)
    monkeypatch.setattr(calibration, "predict_logits", lambda model, data, batch_size=64: logits)
    model = _Model(1.7, logits)
    s = calibration.calibrate(model, _Data(labels), keep=(1.7, 0.0))
    if reason:
        assert model.temperature == 1.7 and reason in s["fit_skipped"]
    else:  # perfectly separated pairs too: Platt's targets keep the fit finite
        assert "fit_skipped" not in s and model.temperature != 1.7 and 0.05 < model.temperature < 20
        assert 0 <= s["ece_after_leave_one_out"] <= 1


# --------------------------------------------------------------------------
# 2b. A crash inside training (issue 16): one line with a hint, nothing that looks finished
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_kernel_error_in_training_is_one_line_and_leaves_no_run(tiny_synth, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    from neipalette_tf.commands import train
    from neipalette_tf.training import run as training  # `fit` as the training run calls it

    def failing_fit(*args, **kwargs):
        raise tf.errors.InvalidArgumentError(None, None, "Incompatible shapes: [4] vs. [3]\n\t [[{{node add}}]]")

    monkeypatch.setattr(training, "fit", failing_fit)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.run(train.main, ["--data", str(tiny_synth), "--out", str(out), "--image-size", "32", "--epochs", "1",
                             "--batch-size", "16", "--weights", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and len(err) == 1, err
    assert err[0].startswith("error: training failed in epoch 1: InvalidArgumentError: Incompatible shapes")
    assert "hint: " in err[0] and "Traceback" not in err[0]
    assert os.listdir(tmp_path) == []  # no run folder, no staging left (nothing useful was backed up)
