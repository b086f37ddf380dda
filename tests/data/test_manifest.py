import numpy as np
import pytest
from conftest import shared_path
from PIL import Image

from neipalette_tf.data.manifest import ManifestError, read_manifest, stratified_split


@pytest.fixture
def images(tmp_path):
    for name in ("a.jpg", "b.png", "c d é.jpg"):
        Image.new("RGB", (10, 12), (10, 200, 30)).save(tmp_path / name)
    return tmp_path


def _write(path, text, **kw):
    path.write_bytes(text.encode("utf-8"), **kw)
    return path


def test_reads_labels_splits_and_relative_paths(images):
    m = read_manifest(_write(images / "pairs.csv",
                             "top,bottom,label,split\na.jpg,b.png,harmonious,train\nb.png,a.jpg,0,test\n"))
    assert m.labels.tolist() == [1, 0]
    assert m.column("split") == ["train", "test"]
    assert m.rows[0]["top"] == str(images / "a.jpg")
    assert len(m.subset("test")) == 1 and len(m.subset("all")) == 2


def test_folder_bom_crlf_spaces_and_absolute_paths(images):
    text = "\ufefftop,bottom,label\r\nc d é.jpg," + str(images / "a.jpg") + ",1\r\n"
    _write(images / "pairs.csv", text)
    m = read_manifest(images)  # a folder means its pairs.csv
    assert not m.has_split
    assert m.rows[0]["top"].endswith("c d é.jpg") and m.labels.tolist() == [1]


@pytest.mark.parametrize("text,message", [
    ("top,bottom\na.jpg,b.png\n", "missing column(s) label"),
    ("", "empty file"),
    ("top,bottom,label\n", "no pairs"),
    ("top,bottom,label\na.jpg,b.png,maybe\n", "line 2: unknown label 'maybe'"),
    ("top,bottom,label\na.jpg,missing.jpg,1\n", "line 2: bottom image not found"),
    ("top,bottom,label\na.jpg,a.jpg,1\n", "line 2: the same image is both top and bottom"),
    ("top,bottom,label\na.jpg,b.png,1\nb.png,a.jpg,0\na.jpg,b.png,1\n", "line 4: duplicate pair (same as line 2)"),
    ("top,bottom,label,split\na.jpg,b.png,1,dev\n", "line 2: unknown split 'dev'"),
])
def test_errors_name_the_row(images, text, message):
    with pytest.raises(ManifestError) as e:
        read_manifest(_write(images / "pairs.csv", text))
    assert message in str(e.value)
    assert "pairs.csv" in str(e.value) and "\n" not in str(e.value)


def test_stratified_split_is_balanced_and_seeded():
    labels = np.array([0, 1] * 50)
    splits = np.array(stratified_split(labels, (0.7, 0.15, 0.15), seed=1))
    for split, n in (("train", 70), ("val", 16), ("test", 14)):
        chosen = labels[splits == split]
        assert abs(len(chosen) - n) <= 2 and chosen.sum() * 2 == len(chosen)
    assert stratified_split(labels, seed=1) == splits.tolist()
    assert stratified_split(labels, seed=2) != splits.tolist()


def test_real_pairs_manifest_parses():
    m = read_manifest(shared_path("real-pairs-dev", "pairs.csv"))
    assert len(m) == 40 and m.labels.sum() == 20 and not m.has_split
