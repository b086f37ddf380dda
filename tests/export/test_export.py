"""Export to SavedModel / TFLite (fp32, fp16, int8) / ONNX, parity, model card, predict CLI, runtime.

The model is the session's `tiny_run` (conftest.py): a small siamese
ResNet18 (32 px, no pretrained weights) trained for a few epochs on
generated solid-colour garment photos (`helpers.make_pairs`) so its outputs
are spread, not saturated; `tiny_export` exports it once for every test
that needs the files.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from helpers import SIZE, SPLITS

from neipalette_tf.models.backbones import BACKBONES

pytestmark = pytest.mark.slow  # trains or exports a model: the full suite, not the fast tier

TFLITE_FILES = ("model.tflite", "model_fp16.tflite", "model_int8.tflite")
RUNTIME_FILES = ("model.onnx", *TFLITE_FILES)


def _cli(module, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def pairs_csv(tiny_pairs):
    return tiny_pairs


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export


@pytest.fixture(scope="module")
def keras_model(run):
    from neipalette_tf.models import load_model

    return load_model(run / "model.keras")


@pytest.fixture(scope="module")
def sample_pairs(pairs_csv):
    from neipalette_tf.data.manifest import read_manifest
    from neipalette_tf.data.pipeline import load_images

    test = read_manifest(pairs_csv).subset("test")
    return load_images(test.column("top")[:8], SIZE), load_images(test.column("bottom")[:8], SIZE), test


def _keras_p(model, tops, bottoms):
    x = {"top": tops.astype("float32"), "bottom": bottoms.astype("float32")}
    return model.predict(x, verbose=0)[:, 1]


# --------------------------------------------------------------------------
# The export folder
# --------------------------------------------------------------------------


def test_export_publishes_every_format_after_parity(exported):
    out, report = exported
    names = set(os.listdir(out))
    for part in ("model", "encoder", "head", "attention"):
        assert {f"{part}.onnx", f"{part}_int8.onnx", f"{part}.tflite", f"{part}_fp16.tflite",
                f"{part}_int8.tflite"} <= names
    assert (out / "saved_model" / "1" / "saved_model.pb").is_file()  # TF Serving layout
    assert {"parity.json", "model_card.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]  # no staging left
    parity = json.loads((out / "parity.json").read_text())
    assert parity == json.loads(json.dumps(report)) and parity["passed"]
    assert parity["pairs"] >= 64 and parity["data"]["split"] == "test"
    assert set(parity["formats"]) == {"savedmodel", "tflite", "tflite_fp16", "tflite_int8", "onnx", "onnx_int8"}
    keras = parity["keras"]
    # a fair comparison: well above parity's own warning bound (25 %); the 5-epoch tiny model has ~40 %
    assert keras["unsaturated_fraction"] >= 0.35 and "warning" not in keras
    for fmt in ("savedmodel", "onnx", "tflite"):
        for graph in ("model", "encoder+head"):
            r = parity["formats"][fmt][graph]
            assert r["max_abs_diff"] <= 1e-4 and r["decision_agreement"] == 1.0, (fmt, graph)
    assert parity["formats"]["tflite_fp16"]["model"]["max_abs_diff"] <= 1e-2
    for fmt, r in parity["formats"].items():  # the read colours and attention maps (neipalette_tf.explain)
        assert r["attention"]["passed"] and r["attention"]["images"] == 2 * parity["pairs"], fmt
    assert parity["formats"]["onnx"]["attention"]["max_colour_delta_e"] <= 1e-4
    for fmt in ("tflite_int8", "onnx_int8"):
        for graph in ("model", "encoder+head"):
            int8 = parity["formats"][fmt][graph]
            assert int8["roc_auc_diff"] <= 0.01 and int8["decision_agreement"] >= 0.97, (fmt, graph)
            assert int8["max_abs_diff"] > 0, (fmt, graph)  # really quantised: not the float graph again
    # The int8 files are about a quarter of the float32 files.
    assert (out / "model_int8.tflite").stat().st_size * 3.5 <= (out / "model.tflite").stat().st_size
    assert (out / "model_int8.onnx").stat().st_size * 3.5 <= (out / "model.onnx").stat().st_size


def test_savedmodel_serving_signature(exported, keras_model, sample_pairs):
    import tensorflow as tf

    out, _ = exported
    loaded = tf.saved_model.load(str(out / "saved_model" / "1"))
    assert set(loaded.signatures) == {"serving_default", "encoder", "head", "attention"}
    serve = loaded.signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert sorted(inputs) == ["bottom", "top"]
    assert all(s.dtype == tf.float32 and s.shape.as_list() == [None, SIZE, SIZE, 3] for s in inputs.values())
    assert {k: v.shape.as_list() for k, v in serve.structured_outputs.items()} == {
        "probabilities": [None, 2], "harmony": [None]}
    tops, bottoms, _ = sample_pairs
    result = serve(top=tf.constant(tops, tf.float32), bottom=tf.constant(bottoms, tf.float32))
    np.testing.assert_allclose(result["harmony"].numpy(), result["probabilities"].numpy()[:, 1])
    np.testing.assert_allclose(result["harmony"].numpy(), _keras_p(keras_model, tops, bottoms), atol=1e-5)


def test_tflite_files_take_float_or_camera_pixels(exported):
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    for name in TFLITE_FILES:
        runner = Interpreter(model_path=str(out / name)).get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        assert sorted(inputs) == ["bottom", "top"] and sorted(outputs) == ["harmony", "probabilities"]
        assert list(inputs["top"]["shape_signature"]) == [-1, SIZE, SIZE, 3]  # dynamic batch
        if name == "model_int8.tflite":
            for d in inputs.values():  # uint8 RGB 0..255 goes in as it is
                assert d["dtype"] == np.uint8 and d["quantization"] == (1.0, 0)
            for d in outputs.values():  # the colour path and head stay float (export.tflite)
                assert d["dtype"] == np.float32
        else:
            assert all(d["dtype"] == np.float32 for d in (*inputs.values(), *outputs.values()))


def test_onnx_graphs_have_exactly_the_declared_inputs(exported, keras_model, sample_pairs):
    import onnx
    import onnxruntime as ort

    from neipalette_tf.export.onnx_optimize import METADATA_KEY

    out, _ = exported
    expected = {"model": (["top", "bottom"], {"probabilities", "harmony"}),
                "encoder": (["image"], {"embedding"}),
                "head": (["top_embedding", "bottom_embedding"], {"probabilities", "harmony"})}
    for part, (inputs, outputs) in expected.items():
        proto = onnx.load(str(out / f"{part}.onnx"))
        onnx.checker.check_model(proto)
        assert [i.name for i in proto.graph.input] == inputs
        assert {o.name for o in proto.graph.output} == outputs
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
        # at 32 px ResNet18's last two stages run on 2 x 2 and 1 x 1 maps: rewritten as GEMMs
        rewrites = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
        assert (rewrites["small_convs_as_gemm"] > 0) == (part != "head"), (part, rewrites)
        # one backbone pass per graph: `model` runs both towers as one batch (export.savedmodel)
        assert rewrites["fold_zero_pad_into_maxpool"] == (part != "head"), (part, rewrites)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    tops, bottoms, _ = sample_pairs
    p = session.run(["harmony"], {"top": tops.astype("float32"), "bottom": bottoms.astype("float32")})[0]
    np.testing.assert_allclose(p, _keras_p(keras_model, tops, bottoms), atol=1e-4)


def test_model_card(exported, run):
    out, report = exported
    card = json.loads((out / "model_card.json").read_text())
    assert card["labels"] == ["clashing", "harmonious"]
    assert (card["image_size"], card["pairing"], card["backbone"]) == (SIZE, "siamese", "resnet18")
    assert "pad" in card["preprocessing"]["resize"] and "border" in card["preprocessing"]["resize"]
    assert card["preprocessing"]["value_range"] == [0, 255]
    assert card["source"]["model"] == str(run / "model.keras") and card["source"]["metrics"]["n"] == 160
    assert card["parity"] == json.loads(json.dumps(report))
    assert set(card["artifacts"]) == {"savedmodel", "tflite", "tflite_fp16", "tflite_int8", "onnx", "onnx_int8"}
    int8 = card["artifacts"]["tflite_int8"]
    assert {p: e["file"] for p, e in int8.items()} == {
        "model": "model_int8.tflite", "encoder": "encoder_int8.tflite", "head": "head_int8.tflite",
        "attention": "attention_int8.tflite"}
    top = next(t for t in int8["model"]["inputs"] if t["name"] == "top")
    assert top["dtype"] == "uint8" and top["shape"] == [-1, SIZE, SIZE, 3] and top["value_range"] == [0, 255]
    assert top["quantization"]["scale"] == 1.0 and top["quantization"]["zero_point"] == 0
    onnx_outputs = {t["name"]: t for t in card["artifacts"]["onnx"]["model"]["outputs"]}
    assert onnx_outputs["probabilities"]["shape"] == ["batch", 2] and onnx_outputs["harmony"]["meaning"]
    assert card["artifacts"]["savedmodel"]["head"]["signature"] == "head"
    assert card["artifacts"]["onnx"]["model"]["graph_rewrites"]["small_convs_as_gemm"] > 0
    onnx_int8 = card["artifacts"]["onnx_int8"]
    assert {p: e["file"] for p, e in onnx_int8.items()} == {
        "model": "model_int8.onnx", "encoder": "encoder_int8.onnx", "head": "head_int8.onnx",
        "attention": "attention_int8.onnx"}
    assert [t["dtype"] for t in onnx_int8["model"]["inputs"]] == ["float32", "float32"]  # quantised inside
    assert onnx_int8["model"]["int8"]["int8_nodes"] > 0 and onnx_int8["model"]["graph_rewrites"]


# --------------------------------------------------------------------------
# Encoder + head, predict CLI, TF-free runtime
# --------------------------------------------------------------------------


def test_int8_files_keep_the_colours_float(exported, keras_model):
    """No 8-bit tensor in `model_int8.tflite` or `head_int8.tflite` carries a garment's main
    colour or whole embedding.

    TF's quantiser propagates one 8-bit scale through slices even where they are
    deny-listed; a slice of the embedding once gave the colours the step of the
    backbone features (`head._columns`, the `embedding` scope in `export.savedmodel`).
    """
    from ai_edge_litert.interpreter import Interpreter

    out, _ = exported
    dim = keras_model.encoder().output_shape[-1]

    def eight_bit(name):
        return [(t["name"], list(t["shape"])) for t in Interpreter(model_path=str(out / name)).get_tensor_details()
                if t["dtype"] in (np.int8, np.uint8)]

    model, head = eight_bit("model_int8.tflite"), eight_bit("head_int8.tflite")
    assert any("resnet" in name for name, _ in model)  # the backbone is int8 ...
    assert any("key1" in name for name, _ in model)  # ... and so are the attention's key convolutions
    assert any("hidden" in name for name, _ in head)  # and the head's embedding MLP
    # the attention graph (what explanations draw) keeps its key convolutions float32
    attention = eight_bit("attention_int8.tflite")
    assert any("resnet" in name for name, _ in attention) and not any("key1" in name for name, _ in attention)
    for tensors in (model, head):  # nor the probabilities or p(harmonious)
        assert not [(name, shape) for name, shape in tensors if len(shape) == 2 and shape[-1] in (1, 2, 3, dim)]
    # the head's inputs are the encoders' float32 embeddings
    inputs = Interpreter(model_path=str(out / "head_int8.tflite")).get_input_details()
    assert [d["dtype"] for d in inputs] == [np.float32, np.float32]
    # the hidden layer's weights are int8 (a quarter of their float32 bytes); the projection
    # (`head/projection`, 515 x 64) and the colour MLP stay float32, so the file shrinks by ~45 %
    assert (out / "head_int8.tflite").stat().st_size * 1.5 < (out / "head.tflite").stat().st_size


def test_onnx_int8_files_keep_the_colours_float(exported):
    """`*_int8.onnx` quantise what the int8 TFLite files quantise: the backbone, the attention's
    key convolutions (not in the attention graph) and the head's hidden layer; the colour
    pooling's averaging, the projection, the colour MLP and the logits stay float32."""
    import onnx

    out, _ = exported

    def int8_weights(name):
        graph = onnx.load(str(out / name)).graph
        dequantized = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "DequantizeLinear"}
        int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
        quantised, floats = [], []
        for n in graph.node:
            if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1:
                weight = n.input[1]
                (quantised if dequantized.get(weight) in int8 else floats).append(n.name + " " + weight)
        return quantised, floats

    q, f = int8_weights("model_int8.onnx")
    assert any("resnet18" in n for n in q) and any("key1" in n for n in q)
    assert any("hidden" in n for n in q) and not any("resnet18" in n or "key" in n for n in f)
    assert any("colour_hidden" in n for n in f) and any("logits" in n for n in f) and any("projection" in n for n in f)
    assert not any(w in n for n in q for w in ("colour_hidden", "logits", "projection"))
    q, f = int8_weights("attention_int8.onnx")
    assert any("resnet18" in n for n in q) and any("key1" in n for n in f) and not any("key1" in n for n in q)


def test_float16_files_keep_small_constants_float32(exported):
    """The float16 files store the big weights as float16 and every constant of <= 1,024 values
    (biases, the colour path's sRGB / OKLab constants, the normalisation) as exact float32: the
    float32 file's values, and no DEQUANTIZE left for them."""
    from ai_edge_litert import schema_py_generated as schema

    from neipalette_tf.export.flatbuffer import load, opcodes
    from neipalette_tf.export.tflite import SMALL_CONSTANT, keep_small_constants_float32

    out, _ = exported
    for part in ("model", "encoder", "head"):
        data = (out / f"{part}_fp16.tflite").read_bytes()
        model = load(data)
        graph = model.subgraphs[0]
        sizes = [int(np.prod(graph.tensors[op.inputs[0]].shape)) for op, code in zip(graph.operators, opcodes(model))
                 if code == schema.BuiltinOperator.DEQUANTIZE]
        assert sizes and min(sizes) > SMALL_CONSTANT, (part, sorted(sizes)[:5])  # big ones float16, small ones not
        assert len(data) < 0.55 * (out / f"{part}.tflite").stat().st_size
    # every small float32 constant of a float16 file is one of the float32 file's, bit for bit

    def small_constants(data):
        model = load(data)
        graph = model.subgraphs[0]
        read = {int(t) for op in graph.operators for t in op.inputs}
        return {bytes(model.buffers[t.buffer].data) for i, t in enumerate(graph.tensors)
                if i in read and t.type == schema.TensorType.FLOAT32 and model.buffers[t.buffer].data is not None
                and 0 < len(model.buffers[t.buffer].data) <= 4 * SMALL_CONSTANT}

    for part in ("model", "head"):
        half, full = (small_constants((out / f"{part}{s}.tflite").read_bytes()) for s in ("_fp16", ""))
        assert len(half) > 5 and half <= full, part
    # graphs that do not align op for op are left as they are
    fp16, other = (out / "model_fp16.tflite").read_bytes(), (out / "head.tflite").read_bytes()
    assert keep_small_constants_float32(fp16, other) == (fp16, 0)


def test_tflite_graphs_run_in_one_xnnpack_partition(exported):
    """Every exported .tflite file runs in one XNNPACK subgraph: no op outside it but the int8
    files' uint8 input QUANTIZE and the last reshape to `harmony` (before, 47 ops of 193 split
    `model_int8.tflite` into 15 partitions; docs/deployment.md)."""
    from ai_edge_litert.interpreter import Interpreter

    from neipalette_tf.export.tflite import xnnpack_coverage

    out, _ = exported
    for path in sorted(out.glob("*.tflite")):
        partitions, outside, total = xnnpack_coverage(path)
        outputs = {d["name"] for d in Interpreter(model_path=str(path)).get_output_details()}
        stray = [(op, name) for op, name in outside
                 if not (op == "QUANTIZE" and path.stem.endswith("_int8")) and not (op == "RESHAPE" and name in outputs)]
        assert partitions == 1 and not stray and total > 20, (path.name, partitions, outside, total)


def _rejects_unreadable_tflite_files(main, tmp_path, capsys):
    """A CLI over .tflite files answers a bad or missing file with one line and exit status 2."""
    from neipalette_tf.core import cli

    (tmp_path / "bad.tflite").write_text("not a model")
    for bad in ("bad.tflite", "none.tflite"):
        with pytest.raises(SystemExit) as e:
            cli.run(main, [str(tmp_path / bad)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith(f"error: {tmp_path / bad}: not a readable") and "\n" not in err


def test_tflite_coverage_cli(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_tflite
    from neipalette_tf.core import cli

    out, _ = exported
    assert cli.run(export_tflite.main, [str(out / "model_int8.tflite")]) == 0
    assert re.search(r"1 XNNPACK partition\(s\); 3 of \d+ op\(s\) outside: QUANTIZE, QUANTIZE, RESHAPE$",
                     capsys.readouterr().out.strip())
    _rejects_unreadable_tflite_files(export_tflite.main, tmp_path, capsys)


@pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors")
def test_profile_cuts_keep_every_op_and_compute_what_the_full_graph_does(exported):
    """A cut of the graph outputs every tensor it produces and does not read (no dead op for the
    delegate to skip), and its values are the full graph's; the last cut has the graph's outputs."""
    from ai_edge_litert.interpreter import Interpreter

    from neipalette_tf.export.profile import _interpreter, cut, runs_of_ops

    out, _ = exported
    model_bytes = (out / "model_int8.tflite").read_bytes()
    runs = runs_of_ops(model_bytes)
    scopes = [s for s, _, _ in runs]
    assert runs[0][1] == 0 and all(a[2] + 1 == b[1] for a, b in zip(runs, runs[1:]))  # every op, in order
    assert {"encoder/colour_pooling", "encoder/preprocessor", "encoder/pooling"} <= set(scopes)
    assert any(s.startswith("encoder/") and s.split("/")[-1].startswith(("stack", "block")) for s in scopes)
    full = Interpreter(model_content=model_bytes, experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    part = _interpreter(cut(model_bytes, runs[len(runs) // 2][2]), 1)  # random inputs
    inputs = {d["name"]: d["index"] for d in full.get_input_details()}
    for d in part.get_input_details():
        full.set_tensor(inputs[d["name"]], part.get_tensor(d["index"]))
    full.invoke()
    part.invoke()
    by_name = {t["name"]: t["index"] for t in full.get_tensor_details()}
    assert len(part.get_output_details()) >= 1
    for d in part.get_output_details():
        np.testing.assert_array_equal(part.get_tensor(d["index"]), full.get_tensor(by_name[d["name"]]), d["name"])
    last = Interpreter(model_content=cut(model_bytes, runs[-1][2]))
    original = Interpreter(model_path=str(out / "model_int8.tflite"))
    assert {d["name"] for d in last.get_output_details()} == {d["name"] for d in original.get_output_details()}


def test_profile_cli_reports_every_scope(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_profile
    from neipalette_tf.core import cli

    out, _ = exported
    assert cli.run(export_profile.main, [str(out / "model_int8.tflite"), "--threads", "1", "--runs", "2"]) == 0
    text = capsys.readouterr().out
    total = float(re.search(r"whole graph ([\d.]+) ms", text).group(1))
    steps = [float(v) for v in re.findall(r"^ +\d+-\d+ +\S+ +[\d.]+ +([-+][\d.]+)$", text, re.M)]
    shares = re.findall(r"^  (\S+) +[-\d.]+ ms +[-\d.]+%$", text, re.M)
    assert total > 0 and steps and sum(steps) == pytest.approx(total, abs=1e-3 * len(steps))
    assert "encoder/colour_pooling" in shares and len(shares) == len(set(shares))
    _rejects_unreadable_tflite_files(export_profile.main, tmp_path, capsys)


def test_profile_of_onnx_files_by_op_type(exported, tmp_path, capsys):
    from neipalette_tf.commands import export_profile
    from neipalette_tf.core import cli
    from neipalette_tf.export import profile

    out, _ = exported
    int8 = profile.onnx_profile(str(out / "model_int8.onnx"), threads=1, runs=2, batch=3)
    fp32 = profile.onnx_profile(str(out / "model.onnx"), threads=1, runs=2, batch=3)
    assert "QLinearConv" in int8["by_op"] and not any(op.startswith("QLinear") or op == "QGemm" for op in fp32["by_op"])
    # the float32 graph runs its tiny maps as GEMMs (onnx_optimize), the int8 one as int8 convolutions
    assert "Gemm" in fp32["by_op"] and "Gather" not in int8["by_op"]
    assert all(ms > 0 for ms in fp32["by_op"].values())
    assert sum(int8["by_op"].values()) == pytest.approx(sum(int8["by_node"].values()))
    assert cli.run(export_profile.main, [str(out / "encoder_int8.onnx"), "--threads", "1", "--runs", "2", "--batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "batch 4" in text and "QLinearConv" in text and "slowest 10 nodes:" in text
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    for bad in ("bad.onnx", "none.onnx"):
        with pytest.raises(SystemExit) as e:
            cli.run(export_profile.main, [str(tmp_path / bad)])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and err.startswith(f"error: {tmp_path / bad}: not a readable .onnx") and "\n" not in err


def test_head_of_encoder_equals_the_full_model(exported, keras_model, sample_pairs):
    from neipalette_tf.predictors.runtime import HarmonyRuntime
    from neipalette_tf.predictors.saved_model import (
        SavedModelPredictor as SavedModelRunner,
    )

    out, _ = exported
    tops, bottoms, _ = sample_pairs
    reference = _keras_p(keras_model, tops, bottoms)
    runners = {"savedmodel": SavedModelRunner(str(out / "saved_model" / "1")),
               **{name: HarmonyRuntime(out / name) for name in ("model.onnx", "model.tflite")}}
    for name, r in runners.items():
        composed = r.score_batch(r.embed_batch(tops), r.embed_batch(bottoms))
        np.testing.assert_allclose(composed, reference, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(composed, r.predict_batch(tops, bottoms), atol=1e-5, err_msg=name)


def test_predict_cli_answers_alike_in_every_format(exported, run, sample_pairs, capsys):
    from neipalette_tf.commands import predict
    from neipalette_tf.core.preprocessing import load_image
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    out, _ = exported
    row = sample_pairs[2].rows[0]

    def answer(model):
        assert predict.main(["--model", str(model), row["top"], row["bottom"], "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    reference = answer(run / "model.keras")
    for name, bound in {"saved_model": 1e-4, "saved_model/1": 1e-4, "model.onnx": 1e-4, "model.tflite": 1e-4,
                        "model_fp16.tflite": 1e-2}.items():
        got = answer(out / name)
        assert set(got) == set(reference) and got["p_harmonious"] == pytest.approx(reference["p_harmonious"], abs=bound)
        if bound <= 1e-4:
            assert got["label"] == reference["label"], name
    # int8 parity is judged on the whole test set (parity.json); here: the CLI reads the uint8 model right.
    got = answer(out / "model_int8.tflite")
    top, bottom = (load_image(row[k], SIZE)[None] for k in ("top", "bottom"))
    expected = HarmonyRuntime(out / "model_int8.tflite").predict_batch(top, bottom)[0]
    assert got["p_harmonious"] == pytest.approx(expected, abs=1e-6)


def test_predict_cli_bad_model_is_one_line(tmp_path, sample_pairs):
    row = sample_pairs[2].rows[0]
    (tmp_path / "folder").mkdir()
    for model, message in ((tmp_path / "none.onnx", "model not found"),
                           (tmp_path / "folder", "not a SavedModel folder")):
        done = _cli("neipalette_tf.predict", "--model", model, row["top"], row["bottom"])
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_runtime_answers_alike_for_any_batch_and_pixel_type(exported, sample_pairs):
    """The LiteRT runtime resizes its inputs only when a batch's shape changes: every batch
    size in any order, and uint8 or float pixels, give each pair the same p."""
    from neipalette_tf.predictors.runtime import HarmonyRuntime

    out, _ = exported
    tops, bottoms, _ = sample_pairs
    for name in ("model.tflite", "model_int8.tflite"):
        rt = HarmonyRuntime(out / name)
        one = np.array([rt.predict_batch(tops[i:i + 1], bottoms[i:i + 1])[0] for i in range(len(tops))])
        for sizes in ((5, 3), (1, 7), (8,)):
            edges = np.cumsum((0,) + sizes)
            got = np.concatenate([rt.predict_batch(tops[a:b], bottoms[a:b]) for a, b in zip(edges, edges[1:])])
            np.testing.assert_allclose(got, one, atol=1e-5, err_msg=f"{name} {sizes}")
        floats = rt.predict_batch(tops.astype(np.float32), bottoms.astype(np.float32))
        np.testing.assert_allclose(floats, one, atol=1e-5, err_msg=name)


RUNTIME_SCRIPT = """
import json, sys
import numpy as np
from neipalette_tf.predictors.runtime import HarmonyRuntime

out = {}
for name in sys.argv[3:]:
    rt = HarmonyRuntime(sys.argv[1] + "/" + name)
    top, bottom = sys.argv[2].split(",")
    e_top, e_bottom = rt.embed(top), rt.embed(bottom)
    out[name] = {"p": rt.predict(top, bottom), "score": rt.score(e_top, np.stack([e_bottom] * 3)).tolist(),
                 "dim": int(e_top.shape[0]), "size": rt.image_size}
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tf2onnx")]
print(json.dumps({"results": out, "heavy": heavy}))
"""


def test_runtime_runs_without_tensorflow(exported, keras_model, sample_pairs):
    from neipalette_tf.core.preprocessing import load_image

    out, _ = exported
    row = sample_pairs[2].rows[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT, str(out), f"{row['top']},{row['bottom']}",
                           *RUNTIME_FILES], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    reference = float(_keras_p(keras_model, load_image(row["top"], SIZE)[None], load_image(row["bottom"], SIZE)[None])[0])
    for name, bound in {"model.onnx": 1e-4, "model.tflite": 1e-4, "model_fp16.tflite": 1e-2,
                        "model_int8.tflite": 0.15}.items():
        r = answer["results"][name]
        assert r["size"] == SIZE and r["dim"] == keras_model.encoder().output.shape[-1]
        assert r["p"] == pytest.approx(reference, abs=bound), name
        assert r["score"] == pytest.approx([r["p"]] * 3, abs=max(bound, 1e-5)), name


def test_bench_measures_every_row_and_judges_the_goals(exported, capsys, monkeypatch):
    from neipalette_tf.commands import export_bench
    from neipalette_tf.export import bench, bench_workers

    out, _ = exported
    spawn = bench.spawn  # the FLOP count in this process (TensorFlow is loaded here already): ~10 s less
    monkeypatch.setattr(bench, "spawn", lambda job, **kw: bench_workers.work_flops(job) if job["kind"] == "flops"
                        else spawn(job, **kw))
    assert export_bench.main(["--artifacts", str(out), "--formats", "tflite,tflite_int8,onnx_int8",
                              "--rounds", "1", "--min-seconds", "0.05"]) == 0
    report = json.loads((out / "bench.json").read_text())
    assert set(report["rows"]) == {"tflite", "tflite_int8", "onnx_int8"} and report["rounds"] == 1
    assert report["flops_per_pair"] > 0 and report["pairs"] == dict(SPLITS)["test"]
    for t in ("1", "2"):
        assert report["matmul_peak"][t]["peak_gflops"] > 0 and report["matmul_peak"][t]["int8_gops"] > 0
    for fmt, row in report["rows"].items():
        for t in ("1", "2"):
            assert len(row["rounds"][t]) == 1 and row["threads"][t]["score_1000_p50_ms"] > 0
            assert row["threads"][t]["p50_ms"] == row["rounds"][t][0]["p50_ms"]
        assert row["pairs_per_s_b32"] > 0
        assert 0.5 < row["roc_auc"] <= 1 and row["parity"]["passed"], fmt
        assert report["startup"][fmt]["imported"] == []  # the TF-free runtime
    goals = report["goals"]
    best = goals["best_fp32_runtime"]
    assert best["format"] == "tflite"  # the only float32 row measured
    assert best["fraction_of_peak"] == pytest.approx(report["flops_per_pair"] * report["rows"]["tflite"][
        "pairs_per_s_b32"] / (report["matmul_peak"]["2"]["peak_gflops"] * 1e9))
    assert goals["int8_speedup"]["by_threads"]["1"] == pytest.approx(
        report["rows"]["tflite"]["threads"]["1"]["p50_ms"] / report["rows"]["tflite_int8"]["threads"]["1"]["p50_ms"])
    assert goals["int8_size"]["fraction_of_float32"] < 1 and "wardrobe_1000" in goals
    for fmt in ("tflite_int8", "onnx_int8"):  # issue 20's goal: each int8 file against float32 TFLite
        ratios = goals[f"{fmt}_vs_tflite"]["ratios"]
        assert ratios["batch 32"] == pytest.approx(report["rows"][fmt]["pairs_per_s_b32"]
                                                   / report["rows"]["tflite"]["pairs_per_s_b32"])
        assert goals[f"{fmt}_vs_tflite"]["met"] == (min(ratios.values()) >= 2.5)
        assert goals[f"{fmt}_vs_tflite"]["ceiling_batch_32"] == pytest.approx(
            report["matmul_peak"]["2"]["int8_gops"] * 1e9
            / (report["flops_per_pair"] * report["rows"]["tflite"]["pairs_per_s_b32"]))
    text = (out / "bench.md").read_text()
    assert "| goal |" in text and "median of 1 round(s)" in text and text in capsys.readouterr().out


def test_bench_rounds_give_medians_and_the_peak_is_the_best_round():
    from neipalette_tf.export.bench import _median_of_rounds, _peak_of_rounds

    rounds = [{"p50_ms": 3.0, "runs": 20, "started_at": 1.0}, {"p50_ms": 9.0, "runs": 20, "started_at": 2.0},
              {"p50_ms": 4.0, "runs": 30, "started_at": 3.0}]
    assert _median_of_rounds(rounds) == {"p50_ms": 4.0, "runs": 20.0}
    peak = _peak_of_rounds([{"peak_gflops": 250.0, "numpy_gflops": 250.0}, {"peak_gflops": 300.0, "numpy_gflops": 290.0}])
    assert peak == {"peak_gflops": 300.0, "numpy_gflops": 290.0, "rounds": [250.0, 300.0]}
    peak = _peak_of_rounds([{"peak_gflops": 250.0, "int8_gops": 600.0}, {"peak_gflops": 300.0, "int8_gops": 500.0}])
    assert peak["peak_gflops"] == 300.0 and peak["int8_gops"] == 600.0  # each peak its own best round


def test_bench_bad_arguments_are_one_line(exported):
    out, _ = exported
    written = {name: (out / name).read_bytes() if (out / name).exists() else None for name in ("bench.json", "bench.md")}
    done = _cli("export.bench", "--artifacts", str(out), "--formats", "onnx,nope")
    assert done.returncode != 0 and "no nope artifact" in done.stderr and "Traceback" not in done.stderr
    assert str(out) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = _cli("export.bench", "--artifacts", str(out), "--rounds", "0")
    assert done.returncode == 2 and "--rounds" in done.stderr
    assert written == {name: (out / name).read_bytes() if (out / name).exists() else None for name in written}


# --------------------------------------------------------------------------
# Failure paths, other models
# --------------------------------------------------------------------------


def test_failing_parity_publishes_nothing_and_exits_non_zero(run, monkeypatch, tmp_path, capsys):
    from neipalette_tf.commands import export as export_cli
    from neipalette_tf.export import tflite

    out = tmp_path / "X"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"stale file of an earlier export")
    (out / "model_card.json").write_text('{"artifacts": {"tflite": {"model": {"file": "model.tflite"}}}}')
    real = tflite.convert
    # A converter that quietly loses precision: float16 constants, all of them, where float32 was asked for.
    monkeypatch.setattr(tflite, "keep_small_constants_float32", lambda half, full: (half, 0))
    monkeypatch.setattr(tflite, "convert", lambda src, key, precision, data=None, **kw: real(src, key, "float16", data))
    status = export_cli.main(["--model", str(run / "model.keras"), "--out", str(out), "--formats", "tflite"])
    assert status == 1
    assert "parity failed for tflite" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["model_card.json", "parity.json"]  # no artifact, no staging
    parity = json.loads((out / "parity.json").read_text())
    assert not parity["passed"] and not parity["formats"]["tflite"]["passed"]
    assert "max |dp|" in parity["formats"]["tflite"]["model"]["failures"][0]
    assert json.loads((out / "model_card.json").read_text())["artifacts"] == {}


def test_parity_fails_on_nan_outputs():
    from neipalette_tf.export.parity import RULES, compare

    reference = np.linspace(0.1, 0.9, 8)
    labels = np.array([0, 1] * 4)
    result = compare(reference, np.full(8, np.nan), labels, RULES["tflite"])
    assert not result["passed"] and "8 non-finite outputs" in result["failures"]
    result = compare(reference, np.full(8, np.nan), labels, RULES["tflite_int8"])
    assert not result["passed"]
    assert compare(reference, reference + 5e-5, labels, RULES["onnx"])["passed"]


def test_export_bad_input_is_one_line(tmp_path):
    done = _cli("export", "--model", tmp_path / "missing.keras", "--out", tmp_path / "out")
    assert done.returncode == 2 and "missing.keras: model not found" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # one tf2onnx conversion per registered backbone
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_every_backbone_exports_to_onnx_without_leaked_inputs(backbone):
    """A backbone's captured constants stay constants (EfficientNetB0's Normalization layer captures its
    mean / variance as eager tensors, which once leaked out as graph inputs), and ONNX gives Keras' p."""
    import onnxruntime as ort

    from neipalette_tf.export import onnx as onnx_export
    from neipalette_tf.export.savedmodel import endpoints
    from neipalette_tf.models import build_classifier

    model, _ = build_classifier(backbone, SIZE, weights="none")
    proto = onnx_export.convert(*endpoints(model)["serving_default"])
    assert [i.name for i in proto.graph.input] == ["top", "bottom"]
    x = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3)).astype("float32")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    p = session.run(["probabilities"], {"top": x, "bottom": x[::-1].copy()})[0]
    np.testing.assert_allclose(p, model.predict({"top": x, "bottom": x[::-1].copy()}, verbose=0), atol=1e-4)


def test_stacked_model_exports_without_encoder_and_head(pairs_csv, tmp_path):
    import tensorflow as tf

    from neipalette_tf.export.exporter import export_model
    from neipalette_tf.models import build_classifier

    model, _ = build_classifier("resnet18", SIZE, "stacked", weights="none")
    model.save(tmp_path / "model.keras")
    out = tmp_path / "out"
    report = export_model(str(tmp_path / "model.keras"), str(out), formats=["savedmodel"],
                          parity_data=str(pairs_csv), log=lambda *_: None)
    assert report["passed"] and list(report["formats"]["savedmodel"]) == ["rule", "passed", "model"]
    card = json.loads((out / "model_card.json").read_text())
    assert list(card["artifacts"]["savedmodel"]) == ["model"] and "stacked" in card["notes"]["encoder"]
    assert sorted(os.listdir(out)) == ["model_card.json", "parity.json", "saved_model"]
    assert list(tf.saved_model.load(str(out / "saved_model" / "1")).signatures) == ["serving_default"]


def test_the_exporter_clears_what_the_bench_writes():
    from neipalette_tf.export import bench, exporter

    names, _ = exporter.export_names()  # what an export folder may hold, and a re-export clears
    assert set(bench.OUTPUT_NAMES) <= names
