"""Explanations: read colours, attention, the rule in words, suggestions checked on pixels, every format.

The suggestion machinery is tested on a NumPy stand-in whose "head" is the
harmony rule itself (`explain_stand_ins.RuleBackend`: the right answer is known); the formats on
the tiny exported model of `conftest.explain_export`. The modules explain composes have their own
tests: test_readings, test_fixes, test_recolour, test_figure.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from explain_stand_ins import GREEN, NAVY, PURPLE, RED, SIZE, MeanBackend, PeopleBackend, RuleBackend, garment, striped
from PIL import Image

from neipalette_tf.commands import explain as explain_cli
from neipalette_tf.colour import harmony, people, space
from neipalette_tf.colour.estimate import estimate_main_colour
from neipalette_tf.core import cli
from neipalette_tf.explanation import explain, palette_fixes
from neipalette_tf.explanation.fixes import candidate_colours, nearest_fixes


def test_a_clashing_pair_gets_the_nearest_fixes_checked_on_pixels():
    backend = RuleBackend()
    top, bottom = garment(RED), garment(GREEN, kind="bottom")
    r = explain.explain_images(backend, top, bottom)
    assert r["label"] == "clashing" and not r["rule"]["harmonious"]
    assert r["rule"]["reading"].startswith("clashing: the red top and the green bottom are")
    assert r["colours"]["top"]["name"] == "red" and r["colours"]["top"]["hex"] == "#c81e28"
    assert set(r["fixes"]) == {"top", "bottom"} and all(r["fixes"].values())
    for role, fixes in r["fixes"].items():
        assert all(f["p_head"] >= explain.TARGET_P for f in fixes)
        assert [f["delta_e"] for f in fixes] == sorted(f["delta_e"] for f in fixes)
        # the first fix is the nearest candidate that reaches the target
        i = explain.ROLES.index(role)
        current = np.array(r["colours"][role]["oklab"])
        other = np.array(r["colours"][explain.ROLES[1 - i]]["oklab"])
        labs = candidate_colours(current)
        lch = space.oklab_to_oklch(labs)
        ok = harmony.harmonious(lch, space.oklab_to_oklch(other)[None])
        assert fixes[0]["delta_e"] == pytest.approx(np.linalg.norm(labs[ok] - current, axis=-1).min(), abs=1e-3)
    assert 1 <= len(r["suggestions"]) <= explain.SUGGESTIONS
    assert [s["delta_e"] for s in r["suggestions"]] == sorted(s["delta_e"] for s in r["suggestions"])
    for s, preview in zip(r["suggestions"], r["_previews"]):
        assert s["rule_harmonious"] and s["p_pixels"] >= 0.5 and s["label_pixels"] == "harmonious"
        original = top if s["role"] == "top" else bottom
        # lightness kept (to 8-bit rounding), the background untouched, the garment moved to the colour
        lab_before, lab_after = space.srgb_to_oklab(original), space.srgb_to_oklab(preview)
        assert np.abs(lab_after[..., 0] - lab_before[..., 0]).max() < 0.01
        assert (preview[0] == original[0]).all()
        moved = space.srgb_to_oklab(estimate_main_colour(preview))
        assert np.linalg.norm(moved - np.array(s["colour"]["oklab"])) < 0.02


@pytest.mark.parametrize("k", [1, 3])
def test_stopping_once_found_gives_the_same_suggestions_with_fewer_photos(k):
    tops, bottoms = (RED, (200, 120, 30)), (GREEN, (60, 60, 200))
    for top, bottom in zip(tops, bottoms):
        full, quick = RuleBackend(), RuleBackend()
        args = (garment(top), garment(bottom, kind="bottom"))
        a = explain.explain_images(full, *args, k=k)
        b = explain.explain_images(quick, *args, k=k, check_all=False)
        assert a["label"] == "clashing" and a["suggestions"]
        assert b["suggestions"] == a["suggestions"]
        assert all((x == y).all() for x, y in zip(b["_previews"], a["_previews"]))
        assert quick.embedded < full.embedded
        # every fix is listed either way; those not checked on pixels say so
        assert [f["colour"] for f in b["fixes"]["top"]] == [f["colour"] for f in a["fixes"]["top"]]
        assert all(f["p_pixels"] is not None for f in a["fixes"]["top"] + a["fixes"]["bottom"])
        assert any(f["p_pixels"] is None and f["label_pixels"] is None
                   for f in b["fixes"]["top"] + b["fixes"]["bottom"])


def test_a_harmonious_pair_gets_no_suggestions_unless_asked():
    backend = RuleBackend()
    top, bottom = garment(RED), garment((30, 40, 70), kind="bottom")  # navy: a neutral
    r = explain.explain_images(backend, top, bottom)
    assert r["label"] == "harmonious" and r["rule"]["harmonious"] and not r["suggestions"] and not r["fixes"]
    assert "navy / denim neutral" in r["rule"]["reading"]
    r = explain.explain_images(backend, top, bottom, always_suggest=True)
    assert r["fixes"]["top"]


def test_the_readings_name_the_dominant_colour_and_the_model_keeps_the_mean():
    backend = MeanBackend()
    top, bottom = striped(NAVY, RED), garment(GREEN, kind="bottom")  # 2/3 navy, 1/3 red stripes
    r = explain.explain_images(backend, top, bottom, always_suggest=True)
    c = r["colours"]["top"]
    assert c["read_as"] == "dominant" and c["palette"][0]["hex"] == c["hex"] == "#1f2d54" and c["name"] == "navy"
    assert [e["hex"] for e in c["palette"]] == ["#1f2d54", "#c81e28"]
    assert c["mean"]["hex"] != c["hex"]  # the mean: a blend of the stripes nobody wears
    assert np.linalg.norm(np.subtract(c["mean"]["oklab"], c["oklab"])) > 0.1
    # the rule reads the dominant colour: the navy top is a neutral
    assert r["rule"]["reading"].startswith("harmonious: the navy top is a navy / denim neutral")
    lch = [space.oklab_to_oklch(np.array(r["colours"][role]["oklab"])) for role in explain.ROLES]
    assert r["rule"]["harmonious"] == bool(harmony.harmonious(*lch))
    # the head and the suggestion search keep the model's colour (the mean in the embedding)
    e = backend.embed_batch(np.stack([top, bottom]))
    want = nearest_fixes(backend, e[0], e[1])
    assert [f["colour"]["oklab"] for f in r["fixes"]["top"]] == [
        [round(float(v), 4) for v in f["oklab"]] for f in want["top"]]
    assert all(s["from"]["hex"] == c["hex"] for s in r["suggestions"] if s["role"] == "top")
    plain = r["colours"]["bottom"]  # a plain garment: dominant and mean agree
    assert plain["read_as"] == "dominant" and np.linalg.norm(np.subtract(plain["mean"]["oklab"], plain["oklab"])) < 0.02


def test_a_multi_colour_garment_gets_suggestions_that_recolour_one_palette_entry():
    top, bottom = striped(NAVY, RED), garment(PURPLE, kind="bottom")  # 2/3 navy, 1/3 red stripes
    r = explain.explain_images(PeopleBackend(), top, bottom)
    assert r["label"] == "clashing"
    found = r["palette_suggestions"]
    assert found and len(found) <= explain.SUGGESTIONS and len(r["_palette_previews"]) == len(found)
    assert r["palette_rating"] == pytest.approx(palette_fixes.outfit_rating(
        [[(np.array(space.srgb_to_oklab(np.array(c, float))), s) for c, s in ((NAVY, 2 / 3), (RED, 1 / 3))],
         [(space.srgb_to_oklab(np.array(PURPLE, float)), 1.0)]], people.default()), abs=0.05)
    line = people.RATING_THRESHOLD + palette_fixes.PEOPLE_MARGIN
    stripes = {0: np.array([(y - 4) % 6 < 4 for y in range(4, 28)])}
    stripes[1] = ~stripes[0]
    for s, preview in zip(found, r["_palette_previews"]):
        assert s["role"] == "top" and s["rating_pixels"] >= line and 0.0 <= s["p_pixels"] <= 1.0
        entry = r["colours"]["top"]["palette"][s["entry"]]
        assert s["from"]["hex"] == entry["hex"] and s["share"] == entry["share"]
        assert s["text"] == (f"make the {palette_fixes.ENTRY_WORDS[s['entry']]} of the top ({s['from']['name']}, "
                             f"{round(100 * s['share'])} % of it) {s['colour']['name']} ({s['colour']['hex']}) instead")
        # only that entry's pixels moved, to the suggested colour; the other stripes and the background stay
        rows = np.arange(4, 28)
        assert (preview[rows[~stripes[s['entry']]]] == top[rows[~stripes[s['entry']]]]).all()
        assert (preview[:4] == top[:4]).all() and (preview[:, :8] == top[:, :8]).all()
        moved = space.srgb_to_oklab(preview[rows[stripes[s['entry']]], 8:24].reshape(-1, 3)).mean(axis=0)
        assert np.linalg.norm(moved - np.array(s["colour"]["oklab"])) < 0.02
    assert "_palette_previews" not in explain.public(r)
    json.dumps(explain.public(r))


def test_the_text_output_lists_the_palette_and_its_suggestions(capsys):
    r = explain.explain_images(PeopleBackend(), striped(NAVY, RED), garment(PURPLE, kind="bottom"))
    explain_cli._print_text(r, None)
    text = capsys.readouterr().out
    assert "        palette: #1f2d54 67%, #c81e28 33%" in text
    assert f"outfit palette: people would rate it {r['palette_rating']:.2f} / 5\n" in text
    assert f"palette suggestion 1: {r['palette_suggestions'][0]['text']} (ΔE " in text


def test_plain_garments_and_rule_models_get_no_palette_suggestions_and_do_no_palette_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("palette suggestions searched")

    striped_pair = (striped(NAVY, RED), garment(PURPLE, kind="bottom"))
    assert explain.explain_images(PeopleBackend(), *striped_pair, always_suggest=True)["palette_suggestions"]
    monkeypatch.setattr(palette_fixes, "palette_suggestions", refuse)
    plain = explain.explain_images(PeopleBackend(), garment(RED), garment(GREEN, kind="bottom"), always_suggest=True)
    assert "palette_suggestions" not in plain and "palette_rating" not in plain and plain["suggestions"]
    # a rule-v1 model's explanation keeps clear of the people model: no palette suggestions either
    rule = explain.explain_images(MeanBackend(), *striped_pair, always_suggest=True)
    assert "palette_suggestions" not in rule and len(rule["colours"]["top"]["palette"]) == 2


# --------------------------------------------------------------------------
# Every format, on the tiny exported model
# --------------------------------------------------------------------------


def _formats(exported):
    run, out, _ = exported
    return {"keras": run / "model.keras", "savedmodel": out / "saved_model", "onnx": out / "model.onnx",
            "tflite_int8": out / "model_int8.tflite", "onnx_int8": out / "model_int8.onnx"}


@pytest.fixture(scope="module")
def pair(explain_export, tmp_path_factory):
    from neipalette_tf.data.manifest import read_manifest

    test = read_manifest(explain_export[2]).subset("test")
    return test.rows[0]["top"], test.rows[0]["bottom"]


def test_every_format_reads_the_same_colours_and_attention(explain_export, pair, tmp_path):
    results = {}
    for fmt, path in _formats(explain_export).items():
        backend = explain.load_backend(path)
        assert backend.format == fmt
        results[fmt] = explain.explain_pair(backend, *pair, always_suggest=True, target=0.5)
    keras = results["keras"]
    assert keras["attention_available"] and keras["colours"]["top"]["attention_map"]["shape"] == [SIZE // 2] * 2
    for fmt, r in results.items():
        assert r["attention_available"], fmt
        bound = 0.02 if fmt.endswith("_int8") else 1e-4
        for role in explain.ROLES:
            d = np.linalg.norm(np.subtract(r["colours"][role]["oklab"], keras["colours"][role]["oklab"]))
            assert d <= bound, (fmt, role, d)
            a, b = r["_attention"][explain.ROLES.index(role)], keras["_attention"][explain.ROLES.index(role)]
            assert np.abs(a - b).sum() <= (0.5 if fmt.endswith("_int8") else 1e-3), fmt
        assert abs(r["p_harmonious"] - keras["p_harmonious"]) <= (0.05 if fmt.endswith("_int8") else 1e-4), fmt
        assert abs(r["p_head"] - r["p_harmonious"]) <= (0.05 if fmt.endswith("_int8") else 1e-4), fmt
        for s in r["suggestions"]:  # always checked on pixels through this format's full model
            assert 0.0 <= s["p_pixels"] <= 1.0 and s["p_head"] >= 0.5
        json.dumps(explain.public(r))


def test_cli_writes_the_figure_and_json_without_tensorflow(explain_export, pair, tmp_path):
    out = tmp_path / "out"
    code = ("import sys, json; from neipalette_tf.commands import explain; from neipalette_tf.core import cli; "
            f"rc = cli.run(explain.main, ['--model', {str(_formats(explain_export)['onnx'])!r}, {pair[0]!r}, "
            f"{pair[1]!r}, '--out', {str(out)!r}, '--json', '--suggest', '--target', '0.5']); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'; sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    assert printed == json.loads((out / "explain.json").read_text())
    assert printed["model"]["format"] == "onnx" and printed["colours"]["top"]["file"] == pair[0]
    with Image.open(out / "explain.png") as im:
        assert im.format == "PNG" and im.size[0] > 400


def test_cli_text_output(explain_export, pair, capsys):
    assert cli.run(explain_cli.main, ["--model", str(_formats(explain_export)["tflite_int8"]), *pair]) == 0
    text = capsys.readouterr().out
    assert "(tflite_int8, 32 px)" in text and "verdict: p(harmonious) = " in text and "rule v1: " in text


@pytest.mark.parametrize("args,message", [
    (["--model", "MODEL", "missing.jpg", "TOP"], "missing.jpg: file not found"),
    (["--model", "nowhere/model.onnx", "TOP", "TOP"], "nowhere/model.onnx: model not found"),
    (["--model", "MODEL", "TOP", "TOP", "--target", "1.5"], "--target must be between 0 and 1"),
    (["--model", "MODEL", "TOP", "TOP", "--out", "PAIRS"], "exists and is not a folder"),
])
def test_cli_bad_input_is_one_line(explain_export, pair, capsys, args, message):
    values = {"MODEL": str(_formats(explain_export)["onnx"]), "TOP": pair[0], "PAIRS": str(explain_export[2])}
    with pytest.raises(SystemExit) as e:
        cli.run(explain_cli.main, [values.get(a, a) for a in args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error: ") and message in err and "\n" not in err


def test_old_exports_without_attention_still_explain(explain_export, pair, tmp_path):
    import shutil

    _, out, _ = explain_export
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.onnx", "encoder.onnx", "head.onnx"):
        shutil.copy(out / name, old / name)
    card = json.loads((out / "model_card.json").read_text())
    card["artifacts"] = {"onnx": {k: v for k, v in card["artifacts"]["onnx"].items() if k != "attention"}}
    (old / "model_card.json").write_text(json.dumps(card))
    r = explain.explain_pair(explain.load_backend(old / "model.onnx"), *pair)
    assert not r["attention_available"] and r["colours"]["top"]["attention_map"] is None
    assert r["colours"]["top"]["hex"].startswith("#")


def test_explain_eval_reports_both_figures(explain_export, tiny_synth, capsys):
    from neipalette_tf.commands import explain_eval

    model = str(_formats(explain_export)["onnx"])
    assert cli.run(explain_eval.main, ["--model", model, "--data", str(tiny_synth), "--real",
                                       str(explain_export[2]), "--limit", "6", "--target", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    synthetic, real = report["synthetic"], report["real"]
    assert synthetic["pairs"] == 6 and synthetic["read_colour_vs_recorded"]["n"] == 12
    assert "read_colour_vs_heuristic_estimate" in real and "read_colour_vs_recorded" not in real
    for s in (synthetic, real):
        f = s["suggestions"]
        assert 0 <= f["both"] <= f["with_suggestion"] <= f["pairs"] and 0 <= f["share_flips_model_and_rule"] <= 1
    assert report["cpu"] and report["format"] == "onnx"
