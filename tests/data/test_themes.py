"""Reading rated themes (neipalette_tf.data.themes)."""

import numpy as np
import pytest

from neipalette_tf.core.errors import ManifestError
from neipalette_tf.data.themes import FOLDS, HELDOUT_FOLD, fold_of, read_themes

GOOD = "theme_id,rating,rating_user_normalised,c1,c2,c3\n1,3.5,0.1,#ff0000,#00ff00,#0000ff\n2,2.0,0,#000000,#ffffff,#808080\n"


def test_reads_ids_ratings_and_colours(tmp_path):
    path = tmp_path / "themes.csv"
    path.write_text(GOOD)
    t = read_themes(tmp_path)  # a folder means its themes.csv
    assert t.ids.tolist() == [1, 2] and t.ratings.tolist() == [3.5, 2.0]
    assert t.rgb.shape == (2, 3, 3) and t.rgb[0, 0].tolist() == [255, 0, 0]
    assert t.lab.shape == (2, 3, 3)


@pytest.mark.parametrize("text, where", [
    ("id,rating,c1,c2\n1,3,#000000,#ffffff\n", "theme_id"),
    ("theme_id,rating,c1,c2\n1,6,#000000,#ffffff\n", "row 2: rating"),
    ("theme_id,rating,c1,c2\n1,3,#000000,#fffff\n", "row 2: c2"),
    ("theme_id,rating,c1,c2\nx,3,#000000,#ffffff\n", "row 2: theme_id"),
    ("theme_id,rating,c1,c2\n", "no themes"),
])
def test_bad_files_name_the_file_and_row(tmp_path, text, where):
    path = tmp_path / "themes.csv"
    path.write_text(text)
    with pytest.raises(ManifestError, match=where) as e:
        read_themes(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        read_themes(tmp_path / "nope.csv")


def test_folds_come_from_the_id_alone():
    ids = np.arange(10_000)
    folds = fold_of(ids)
    assert set(folds.tolist()) == set(range(FOLDS))
    assert 0.17 < np.mean(folds == HELDOUT_FOLD) < 0.23
    assert (fold_of(ids[::-1]) == folds[::-1]).all()
