"""`recommend --diverse` and `recommend --explain` (neipalette_tf.ranking.diverse_explain) on the tiny export."""

import json

import numpy as np
from PIL import Image

from neipalette_tf.commands import recommend
from neipalette_tf.core import cli
from neipalette_tf.ranking.diversity import mmr


def _wardrobe(folder):
    folder.mkdir()
    colours = {"green_a": (40, 150, 60), "green_b": (42, 152, 58), "green_c": (38, 148, 62),
               "navy": (30, 40, 70), "beige": (210, 190, 160), "red": (200, 30, 40)}
    for name, colour in colours.items():
        img = Image.new("RGB", (40, 52), (236, 236, 232))
        img.paste(colour, (8, 6, 32, 46))
        img.save(folder / f"{name}.png")
    query = folder.parent / "query.png"
    Image.new("RGB", (40, 52), (120, 60, 160)).save(query)
    return query


def test_diverse_and_explained_ranking(explain_export, tmp_path, capsys):
    query = _wardrobe(tmp_path / "wardrobe")
    model = str(explain_export[1] / "model.onnx")
    base = ["--model", model, "--top", str(query), "--wardrobe", str(tmp_path / "wardrobe"), "--json", "--k", "3"]
    assert cli.run(recommend.main, base) == 0
    plain = json.loads(capsys.readouterr().out)
    assert cli.run(recommend.main, base + ["--diverse", "--explain"]) == 0
    fancy = json.loads(capsys.readouterr().out)
    assert fancy["diverse"] and fancy["query_colour"]["hex"].startswith("#")
    # the diverse top 3 is MMR over the read colours of the plain ranking
    by_file = {r["file"]: r for r in fancy["ranking"]}
    files = [r["file"] for r in plain["ranking"]]
    labs = np.array([by_file[f]["colour"]["oklab"] for f in files])
    expected = [files[i] for i in mmr([r["p_harmonious"] for r in plain["ranking"]], labs, 3)]
    assert [r["file"] for r in fancy["ranking"][:3]] == expected
    assert sorted(r["file"] for r in fancy["ranking"]) == sorted(files)  # nobody lost
    for r in fancy["ranking"]:
        assert r["rule"]["reading"].split(":")[0] == ("harmonious" if r["rule"]["harmonious"] else "clashing")
    assert cli.run(recommend.main, base[:-3] + ["--explain", "--k", "2"]) == 0
    text = capsys.readouterr().out
    assert "rule: " in text and text.count("rule: ") == 2
