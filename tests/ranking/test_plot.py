"""`neipalette_tf.ranking.plot.plot_grid`: `recommend --out grid.png`, the query and its top k in one row.

The figure is caught before it is saved (its panels, titles and colours
read back), and one grid is written as a real PNG. `recommend --out` through
a model is tests/ranking/test_recommend.py.
"""

import matplotlib.colors as mcolors
import numpy as np
import pytest
from PIL import Image

from neipalette_tf.core.vocabulary import THRESHOLD
from neipalette_tf.evaluation import plots
from neipalette_tf.ranking.plot import plot_grid

GREEN, RED = mcolors.to_rgba("#1a7f37"), mcolors.to_rgba("#cf222e")


@pytest.fixture
def garments(tmp_path):
    """A query and five garments, each a solid colour, with scores on both sides of the threshold."""
    def save(name, colour):
        path = tmp_path / name
        Image.fromarray(np.full((30, 20, 3), colour, np.uint8)).save(path)
        return str(path)

    query = save("query.png", (250, 0, 0))
    names = ["a_very_long_garment_file_name_indeed.png", "b.png", "c.png", "d.png", "e.png"]
    scores = [0.91, THRESHOLD, THRESHOLD - 0.001, 0.2, 0.1]
    ranking = [(save(n, (0, 40 * i, 200)), s) for i, (n, s) in enumerate(zip(names, scores))]
    return query, ranking


@pytest.fixture
def caught(monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append((fig, path)))
    return figures


def test_the_grid_shows_the_query_then_the_top_k_green_at_or_above_the_threshold(garments, caught, tmp_path):
    query, ranking = garments
    plot_grid(query, "top", ranking, 3, tmp_path / "grid.png")
    (fig, path), = caught
    assert path == tmp_path / "grid.png"
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 4  # the query and the top 3, in one row
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "query (top)"
    assert titles[1].startswith("#1  p = 0.910\n") and titles[1].endswith("a_very_long_garment_fi")  # name cut at 22
    assert titles[2].startswith(f"#2  p = {THRESHOLD:.3f}") and titles[3].startswith(f"#3  p = {THRESHOLD - 0.001:.3f}")
    colours = [mcolors.to_rgba(ax.title.get_color()) for ax in axes]
    assert colours == [mcolors.to_rgba("black"), GREEN, GREEN, RED]  # p >= threshold green, below red
    np.testing.assert_array_equal(axes[0].images[0].get_array()[0, 0], [250, 0, 0])  # the query's own pixels
    assert axes[0].images[0].get_array().shape == (160, 160, 3)  # drawn at the model-free display size
    assert all(not ax.axison for ax in axes)
    assert fig._suptitle.get_text() == f"Top 3 bottoms by p(harmonious) (green: >= {THRESHOLD:g})"


def test_a_bottom_query_ranks_tops_and_k_beyond_the_ranking_shows_what_there_is(garments, caught, tmp_path):
    query, ranking = garments
    plot_grid(query, "bottom", ranking[:2], 10, tmp_path / "grid.png")
    (fig, _), = caught
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert fig.axes[0].get_title() == "query (bottom)" and fig._suptitle.get_text().startswith("Top 2 tops ")


def test_the_grid_is_written_as_a_png_one_panel_wide_per_garment(garments, tmp_path):
    query, ranking = garments
    sizes = {}
    for k in (1, 4):
        path = tmp_path / f"grid{k}.png"
        plot_grid(query, "top", ranking, k, path)
        with Image.open(path) as img:
            assert img.format == "PNG"
            sizes[k] = img.size
    (w1, h1), (w4, h4) = sizes[1], sizes[4]
    assert w1 > h1 * 0.9 and 2 < w4 / w1 < 3  # 2 panels against 5: about 2.5 times as wide
    assert abs(h4 - h1) < 0.25 * h1
    assert not list(tmp_path.glob(".grid*"))  # written atomically: no temporary left behind
