"""Property-based: any manifest or config file gives a result or one line, never a traceback.

For every generated input: either it is read (a Manifest / a resolved
config), or the command ends with exit status 2 and one line `error: ...`
that names the file (and the row or key); and nothing outside the output
folder changes. Inputs are built by hypothesis from the pieces real files
are made of (headers, image names, labels, splits, numbers as YAML writes
them, sections, lists, binary junk).
"""

import contextlib
import io
import os
import tempfile

import pytest
import yaml
from conftest import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from neipalette_tf.commands import train
from neipalette_tf.core import cli
from neipalette_tf.data import bad_input
from neipalette_tf.data.manifest import Manifest
from neipalette_tf.training import config

SETTINGS = settings(max_examples=int(os.environ.get("NEIPALETTE_PROPERTY_EXAMPLES", 60)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

IMAGES = ("a.jpg", "b.png", "c.jpg", "missing.jpg", "sub/d.png", "", " a.jpg ", "../a.jpg", "a.jpg\x00", "é.png")
FIELDS = st.one_of(st.sampled_from(IMAGES), st.sampled_from(("harmonious", "clashing", "1", "0", "2", "perhaps",
                                                             "train", "val", "test", "TRAIN", "", '"', "a,b")),
                   st.text(max_size=12))
HEADERS = st.one_of(st.just("top,bottom,label,split"), st.just("top,bottom,label"), st.just("\ufefftop,bottom,label"),
                    st.lists(st.sampled_from(("top", "bottom", "label", "split", "x", "top")), max_size=5).map(",".join),
                    st.text(max_size=20))


def _folder():
    d = tempfile.mkdtemp(prefix="prop-")
    for name, colour in (("a.jpg", (200, 20, 20)), ("b.png", (20, 20, 200)), ("c.jpg", (30, 160, 60))):
        Image.new("RGB", (12, 16), colour).save(os.path.join(d, name))
    os.mkdir(os.path.join(d, "sub"))
    Image.new("RGB", (12, 16), (90, 90, 90)).save(os.path.join(d, "sub", "d.png"))
    Image.new("RGB", (12, 16), (250, 240, 10)).save(os.path.join(d, "é.png"))
    return d



def _run(main, argv):
    """(exit status, stderr) of `main` through cli.run; a traceback fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = cli.run(main, argv)
        except SystemExit as e:
            status = e.code
    return status, err.getvalue()


def _assert_one_line(status, err, *names):
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert any(n in lines[0] for n in names), (lines[0], names)


@SETTINGS
@given(header=HEADERS, rows=st.lists(st.lists(FIELDS, max_size=6), max_size=8),
       junk=st.one_of(st.just(b""), st.binary(max_size=12)), crlf=st.booleans())
def test_any_manifest_is_read_or_one_line_naming_the_file(header, rows, junk, crlf):
    folder = _folder()
    text = "\n".join([header, *(",".join(r) for r in rows)]) + "\n"
    data = (text.replace("\n", "\r\n") if crlf else text).encode("utf-8", "surrogatepass") + junk
    path = os.path.join(folder, "pairs.csv")
    with open(path, "wb") as f:
        f.write(data)
    before = snapshot(folder)
    for mode in ("error", "skip"):
        result = {}

        def main(argv):
            result["m"] = bad_input.read(argv[0], mode)
            return 0

        status, err = _run(main, [path])
        if status == 0:
            assert isinstance(result["m"], Manifest)
            for s in result["m"].skipped:  # every skipped row names its line and a reason
                assert s["line"] >= 1 and s["reason"]
        else:
            _assert_one_line(status, err, "pairs.csv")
    assert snapshot(folder) == before  # reading never writes


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10_000), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(("1e-3", "abc", "", "0.5", "inf", "nan", "-1", "1_000", "resnet18", "siamese",
                                     "skip", "auto", "mirrored", "1.5")),
                    st.lists(st.floats(-1, 2), max_size=4))
KEYS = ("seed", "name", "mode", "data.path", "data.split_fractions", "data.cache", "data.on_bad_input",
        "data.synth.pairs", "model.backbone", "model.pairing", "model.image_size", "model.dropout",
        "model.head_units", "train.epochs", "train.batch_size", "train.learning_rate", "train.weight_decay",
        "train.augment.crop_scale", "train.augment.rotation_deg", "train.jit_compile", "train.strategy",
        "classic.palette_C", "data", "train", "nonsense", "train.nonsense")


def _nest(pairs):
    cfg = {}
    for dotted, value in pairs:
        node = cfg
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[leaf] = value
    return cfg


@SETTINGS
@given(pairs=st.lists(st.tuples(st.sampled_from(KEYS), SCALARS), max_size=6),
       raw=st.one_of(st.none(), st.text(max_size=40)))
def test_any_config_file_resolves_or_one_line_naming_the_file(pairs, raw):
    folder = tempfile.mkdtemp(prefix="prop-cfg-")
    path = os.path.join(folder, "c.yaml")
    text = raw if raw is not None else yaml.safe_dump(_nest(pairs), allow_unicode=True)
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(text)
    result = {}

    def main(argv):
        result["cfg"] = config.resolve(argv[0])
        return 0

    status, err = _run(main, [path])
    if status == 0:
        cfg = result["cfg"]
        assert isinstance(cfg["train"]["learning_rate"], float) and cfg["train"]["learning_rate"] > 0
        assert isinstance(cfg["seed"], int) and cfg["seed"] >= 0
        assert abs(sum(cfg["data"]["split_fractions"]) - 1) < 1e-6 and len(cfg["data"]["split_fractions"]) == 3
        assert 0 <= cfg["model"]["dropout"] < 1
    else:
        _assert_one_line(status, err, "c.yaml")

    # The whole train CLI with that config: it stops before any work (the data is missing), in one line.
    out = os.path.join(folder, "run")
    before = snapshot(folder)
    status, err = _run(train.main, ["--config", path, "--data", os.path.join(folder, "nowhere", "pairs.csv"),
                                    "--out", out])
    _assert_one_line(status, err, "c.yaml", "nowhere")
    assert snapshot(folder) == before and not os.path.exists(out)


@pytest.mark.parametrize("flag,value", [("--seed", "-1"), ("--learning-rate", "inf"), ("--learning-rate", "nan"),
                                        ("--epochs", "0"), ("--batch-size", "-4"), ("--image-size", "8")])
def test_bad_flag_values_are_one_line(tmp_path, flag, value):
    status, err = _run(train.main, [flag, value, "--data", str(tmp_path / "x" / "pairs.csv"), "--out",
                                    str(tmp_path / "run")])
    _assert_one_line(status, err, flag.lstrip("-").replace("-", "_"))
    assert os.listdir(tmp_path) == []
