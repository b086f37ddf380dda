"""`python -m export.arm64`: ARM64 parity under QEMU user-mode emulation.

Fast tests (no emulation, no TensorFlow): bad input is one line and exit
status 2, the bounds of parity.json decide, the cache key, the CPU plan,
the fake /proc/cpuinfo, stale builds, arm64.json written atomically and
the exit status. The worker runs natively on the tiny export (slow: the
export fixture) and must give HarmonyRuntime's p to the bit. The
emulated run itself needs the arm64 root (built once, minutes, network):
it runs when that root is already cached or `NEIPALETTE_ARM64=1` is set,
and is skipped otherwise (CI builds no root).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from neipalette_tf.commands import export_arm64
from neipalette_tf.core import cli
from neipalette_tf.export import arm64, arm64_worker, exporter, parity


def _error(capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.run(export_arm64.main, [str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _fake_export(folder, card=None, report=None):
    folder.mkdir(parents=True, exist_ok=True)
    card = card if card is not None else {"image_size": 32, "artifacts": {"tflite_int8": {"model": {
        "file": "model_int8.tflite"}}}, "source": {"model": str(folder / "missing.keras")}}
    report = report if report is not None else {"pairs": 64, "data": {"manifest": str(folder / "pairs.csv"),
                                                                      "split": "test"}}
    (folder / "model_card.json").write_text(json.dumps(card))
    (folder / "parity.json").write_text(json.dumps(report))
    (folder / "model_int8.tflite").write_bytes(b"TFL3")
    return folder


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert "missing: no such folder" in _error(capsys, ["--artifacts", tmp_path / "missing"])
    (tmp_path / "file").write_text("x")
    assert "file: not a folder" in _error(capsys, ["--artifacts", tmp_path / "file"])
    (tmp_path / "empty").mkdir()
    err = _error(capsys, ["--artifacts", tmp_path / "empty"])
    assert "model_card.json: not found" in err and "not an export folder" in err
    (tmp_path / "card-only").mkdir()
    (tmp_path / "card-only" / "model_card.json").write_text("{}")
    assert "parity.json: not found" in _error(capsys, ["--artifacts", tmp_path / "card-only"])
    (tmp_path / "bad-card").mkdir()
    (tmp_path / "bad-card" / "model_card.json").write_text("[1")
    (tmp_path / "bad-card" / "parity.json").write_text("{}")
    assert "model_card.json: unreadable" in _error(capsys, ["--artifacts", tmp_path / "bad-card"])
    folder = _fake_export(tmp_path / "x")
    assert "--cpu nope: choose auto or from" in _error(capsys, ["--artifacts", folder, "--cpu", "nope"])
    assert "--pairs 10: parity needs at least 64" in _error(capsys, ["--artifacts", folder, "--pairs", 10])
    assert "--formats onnx: not in" in _error(capsys, ["--artifacts", folder, "--formats", "onnx"])
    assert "missing.keras: the Keras model" in _error(capsys, ["--artifacts", folder])
    card = json.loads((folder / "model_card.json").read_text())
    card["artifacts"] = {"savedmodel": {"model": {"file": "saved_model/1"}}}
    _fake_export(tmp_path / "y", card)
    assert "no TFLite or ONNX format" in _error(capsys, ["--artifacts", tmp_path / "y"])
    card["artifacts"] = {"tflite_int8": {"model": {"file": "model_int8.tflite", "sha256": "0" * 64}}}
    _fake_export(tmp_path / "z", card)
    assert "model_int8.tflite: SHA-256 differs" in _error(capsys, ["--artifacts", tmp_path / "z"])


def test_the_checkout_spelling_runs_the_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "export.arm64", "--artifacts", str(tmp_path / "nope")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2 and done.stderr.strip() == \
        f"error: {tmp_path / 'nope'}: no such folder (--artifacts names an export folder of `python -m export`)"


def _reference(n=100, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    p = np.clip(0.5 + (labels - 0.5) * rng.uniform(0.05, 0.9, n), 0, 1)
    return {"p": p, "labels": labels}


def test_the_parity_bounds_decide():
    ref = _reference()
    assert arm64.judge("tflite", {"p": ref["p"] + 5e-5}, ref)["passed"]
    failed = arm64.judge("tflite", {"p": ref["p"] + 2e-4}, ref)
    assert not failed["passed"] and "max |dp|" in failed["model"]["failures"][0]
    assert arm64.judge("tflite_fp16", {"p": ref["p"] + 9e-3}, ref)["passed"]
    assert not arm64.judge("tflite_fp16", {"p": ref["p"] + 2e-2}, ref)["passed"]
    flipped = ref["p"].copy()
    near = np.argsort(np.abs(ref["p"] - 0.5))
    flipped[near[:2]] = 1 - flipped[near[:2]]  # 2 % of decisions change: within int8's 97 %
    assert arm64.judge("tflite_int8", {"p": flipped}, ref)["passed"]
    flipped[near[:5]] = 1 - ref["p"][near[:5]]  # 5 %: not
    result = arm64.judge("onnx_int8", {"p": flipped, "p_composed": ref["p"]}, ref)
    assert not result["passed"] and result["model"]["decision_agreement"] == 0.95 and result["encoder+head"]["passed"]
    assert arm64.judge("onnx", {"p": ref["p"]}, ref)["rule"] == parity.RULES["onnx"]
    nan = ref["p"].copy()
    nan[0] = np.nan
    assert not arm64.judge("tflite", {"p": nan}, ref)["passed"]


def test_x86_difference_attention_and_rating():
    ref = _reference(64)
    colours = np.random.default_rng(1).normal(size=(128, 3))
    maps = np.full((128, 16), 1 / 16)
    ref["attention"] = (colours, maps)
    embedding = np.concatenate([np.zeros((128, 5)), colours * np.asarray(parity.OKLAB_SCALE)], axis=1)
    outputs = {"p": ref["p"], "embedding": embedding, "attention": maps, "rating": np.full(64, 3.0)}
    x86 = {"p": ref["p"] + 1e-6, "rating": np.full(64, 3.25)}
    result = arm64.judge("tflite", outputs, ref, x86)  # no Keras rating: reported against x86, not judged
    assert result["passed"] and result["model"]["x86_max_abs_diff"] == pytest.approx(1e-6)
    assert result["attention"]["passed"] and result["attention"]["max_colour_delta_e"] < 1e-9
    assert result["rating"]["x86_max_abs_diff"] == pytest.approx(0.25) and result["rating"]["rule"] is None
    lines = arm64.summary_lines("tflite", {"model": "model.tflite", "attention": "attention.tflite"}, result)
    assert lines[0].startswith("model.tflite: max |dp| 0") and "-> pass" in lines[0]
    assert "model.tflite rating: no Keras rating, vs x86 0.25 -> pass" in lines
    no_rating = arm64.judge("tflite", {"p": ref["p"]}, ref)
    assert "rating" not in no_rating and no_rating["passed"]
    maps_off = maps.copy()
    maps_off[:, 0] += 0.01
    assert not arm64.judge("tflite", {**outputs, "attention": maps_off}, ref)["attention"]["passed"]


def test_the_rating_is_judged_with_paritys_rating_rules():
    ref = _reference(64)
    ref["rating"] = np.full(64, 3.0)
    outputs = {"p": ref["p"], "p_composed": ref["p"], "rating": np.full(64, 3.0005),
               "rating_composed": np.full(64, 3.0005)}
    result = arm64.judge("tflite", outputs, ref)
    assert result["passed"] and result["rating"]["rule"] == parity.RATING_RULES["tflite"]
    assert result["encoder+head rating"]["passed"]
    failed = arm64.judge("tflite", {**outputs, "rating": np.full(64, 3.01)}, ref)
    assert not failed["passed"] and failed["rating"]["failures"] == ["rating max_abs_diff 0.01 > 0.001"]
    assert arm64.judge("tflite_int8", {**outputs, "rating": np.full(64, 3.05)}, ref)["passed"]
    lost = arm64.judge("tflite", {"p": ref["p"]}, ref)  # Keras rates, the graph does not: as parity.json
    assert not lost["passed"] and lost["rating"]["failures"] == ["the graph has no rating output"]


def test_cache_key_follows_what_the_root_is_built_from():
    versions = {"numpy": "2.4.6", "onnxruntime": "1.32.0", "ai-edge-litert": "2.3.0"}
    key = arm64.cache_key(arm64.root_spec(versions))
    assert key == arm64.cache_key(arm64.root_spec(dict(reversed(versions.items()))))
    assert len(key) == arm64.KEY_LENGTH and int(key, 16) >= 0
    assert key != arm64.cache_key(arm64.root_spec({**versions, "onnxruntime": "1.31.0"}))
    assert key != arm64.cache_key(arm64.root_spec(versions, suite="trixie"))
    assert arm64.root_path("/c", arm64.root_spec(versions)) == f"/c/arm64-root-{key}"


def test_cpu_plan_and_cpuinfo():
    runs = arm64.plan(["tflite", "tflite_int8", "onnx_int8"], "auto")
    assert runs == {"tflite": ["cortex-a76"], "tflite_int8": ["cortex-a53", "cortex-a76", "max-nosme"],
                    "onnx_int8": ["cortex-a53", "cortex-a76", "max-nosme"]}
    assert arm64.plan(["tflite"], "max, cortex-a53,max") == {"tflite": ["max", "cortex-a53"]}
    text = arm64.cpuinfo_text("cortex-a76", ["fp", "asimd", "asimddp"], 3)
    assert text.count("processor\t:") == 3 and "CPU part\t: 0xd0b\n" in text and "CPU implementer\t: 0x41" in text
    assert "Features\t: fp asimd asimddp\n" in text
    assert "CPU part\t: 0x051\n" in arm64.cpuinfo_text("max-nosme", [], 1)  # QEMU's max: part 'Q'


def test_sysroot_overlays_cpuinfo_on_the_root(tmp_path):
    root = tmp_path / "root"
    for sub in ("usr/bin", "proc", "etc"):
        (root / sub).mkdir(parents=True)
    sysroot = arm64.make_sysroot(str(root), str(tmp_path / "sys"), "cortex-a53", ["fp"])
    assert sorted(os.listdir(sysroot)) == ["etc", "proc", "usr"]
    assert os.path.realpath(os.path.join(sysroot, "usr")) == str(root / "usr")
    assert "CPU part\t: 0xd03" in open(os.path.join(sysroot, "proc", "cpuinfo")).read()


def test_a_cached_root_is_reused_and_killed_builds_are_removed(tmp_path):
    spec = arm64.root_spec({"numpy": "1", "onnxruntime": "2", "ai-edge-litert": "3"})
    root = arm64.root_path(str(tmp_path), spec)
    name = os.path.basename(root)
    dead = tmp_path / f".{name}.building-999999999-abc"
    alive = tmp_path / f".{name}.building-{os.getpid()}-def"
    dead.mkdir()
    alive.mkdir()
    arm64.remove_stale_builds(str(tmp_path), name, log=lambda *_: None)
    assert not dead.exists() and alive.exists()
    os.makedirs(os.path.join(root, "usr", "bin"))
    open(os.path.join(root, "usr", "bin", "python3"), "w").close()
    assert not arm64.root_complete(root)  # no build info: a half root is never used
    with open(os.path.join(root, arm64.BUILD_INFO), "w") as f:
        json.dump(spec, f)
    assert arm64.build_root(str(tmp_path), spec) == (root, None)  # reused: no tools, no network


def test_main_writes_arm64_json_and_exits_1_on_a_failure(tmp_path, monkeypatch, capsys):
    folder = _fake_export(tmp_path / "x")
    report = {"formats": {"tflite_int8": {"passed": True}, "onnx_int8": {"passed": False}}, "passed": False,
              "value": float("nan")}
    monkeypatch.setattr(export_arm64, "run_arm64", lambda args, log=print: report)
    assert export_arm64.main(["--artifacts", str(folder)]) == 1
    assert "onnx_int8 failed on ARM64" in capsys.readouterr().err
    written = json.loads((folder / "arm64.json").read_text())
    assert written["value"] is None and written["formats"]["onnx_int8"]["passed"] is False
    assert [n for n in os.listdir(folder) if n.startswith(".")] == []  # no temporary file left
    report["formats"]["onnx_int8"]["passed"] = True
    assert export_arm64.main(["--artifacts", str(folder)]) == 0


def test_arm64_json_belongs_to_the_export_folder(tmp_path):
    folder = _fake_export(tmp_path / "x")
    (folder / "arm64.json").write_text("{}")
    assert exporter.export_owned(str(folder)) is None  # a re-export may replace it


def test_worker_feeds_like_the_runtime():
    from neipalette_tf.predictors import runtime

    x = np.random.default_rng(0).uniform(-3, 300, (4, 5)).astype(np.float32)
    for dtype, scale, zero in ((np.int8, 0.05, -3), (np.uint8, 1.0, 0), (np.int8, 0.0, 0), (np.float32, 0.0, 0)):
        np.testing.assert_array_equal(arm64_worker.quantize(x, dtype, scale, zero),
                                      runtime._quantize(x, dtype, scale, zero))
        q = runtime._quantize(x, dtype, scale, zero)
        np.testing.assert_array_equal(arm64_worker.dequantize(q, dtype, scale, zero),
                                      runtime._dequantize(q, dtype, scale, zero))
    assert arm64_worker.cpu_features() is None or isinstance(arm64_worker.cpu_features(), list)


def test_the_worker_imports_nothing_but_numpy_and_the_runtimes():
    import ast

    tree = ast.parse(open(arm64.WORKER, encoding="utf-8").read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"json", "os", "platform", "sys", "traceback", "ctypes", "importlib", "numpy", "onnxruntime",
               "ai_edge_litert"}
    assert imported <= allowed, imported - allowed


# --------------------------------------------------------------------------
# On the tiny export (slow: the export fixture)
# --------------------------------------------------------------------------


def _job(tmp_path, export_dir, formats, n=8):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import load_images

    card, report = arm64.read_export(str(export_dir))
    files = arm64.runtime_files(card, str(export_dir), formats)
    manifest = read_manifest(report["data"]["manifest"])
    rows = manifest.subset("test")
    tops = load_images(rows.column("top")[:n], card["image_size"])
    bottoms = load_images(rows.column("bottom")[:n], card["image_size"])
    job = tmp_path / "job"
    job.mkdir()
    arm64.write_job(str(job), files, parity.PairSet(tops, bottoms, rows.labels[:n], {}), batch_size=3)
    return job, files, tops, bottoms


def test_worker_natively_gives_the_runtimes_p(tiny_export, tmp_path):
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    export_dir = tiny_export[0]
    job, files, tops, bottoms = _job(tmp_path, export_dir, ["tflite_int8", "onnx"])
    done = subprocess.run([sys.executable, str(job / "arm64_worker.py"), str(job), str(job / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for fmt in files:
        with np.load(job / "out" / f"{fmt}.npz") as out:
            runtime = HarmonyRuntime(files[fmt]["model"])
            np.testing.assert_array_equal(out["p"], runtime.predict_batch(tops, bottoms))
            composed = runtime.score_batch(runtime.embed_batch(tops), runtime.embed_batch(bottoms))
            np.testing.assert_allclose(out["p_composed"], composed, atol=1e-6)
            assert out["embedding"].shape[0] == out["attention"].shape[0] == 2 * len(tops)


def _arm64_ready():
    if os.environ.get("NEIPALETTE_ARM64") == "1":
        return True
    if shutil.which("qemu-aarch64-static") is None:
        return False
    try:
        spec = arm64.root_spec(arm64.runtime_versions())
    except Exception:  # noqa: BLE001 - a runtime not installed: no root to look for
        return False
    return arm64.root_complete(arm64.root_path(arm64.cache_folder(), spec))


@pytest.mark.skipif(not _arm64_ready(), reason="no cached arm64 root (~/.cache/neipalette/arm64-root-*); "
                                               "NEIPALETTE_ARM64=1 builds one (minutes, network, root)")
def test_int8_tflite_on_emulated_arm64(tiny_export, tmp_path):
    """The int8 TFLite file on the sdot kernels (cortex-a76): the quick emulated check (about a minute)."""
    folder = tmp_path / "X"
    shutil.copytree(tiny_export[0], folder)
    done = subprocess.run([sys.executable, "-m", "export.arm64", "--artifacts", str(folder), "--formats",
                           "tflite_int8", "--cpu", "cortex-a76"], capture_output=True, text=True, cwd=ROOT,
                          timeout=1800, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((folder / "arm64.json").read_text())
    result = report["formats"]["tflite_int8"]
    assert report["passed"] and result["passed"] and list(result["cpus"]) == ["cortex-a76"]
    run = result["cpus"]["cortex-a76"]
    assert run["model"]["decision_agreement"] >= 0.97 and "encoder+head" in run and "attention" in run
    assert report["emulator"]["cpus"]["cortex-a76"]["cpu_features"][:3] == ["fphp", "asimdhp", "asimddp"]
    assert report["pairs"] == parity.MIN_PAIRS and "model_int8.tflite: max |dp|" in done.stdout
