"""`recommend --out grid.png`: the query and its top k garments with p(harmonious), one row."""

import os

from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import THRESHOLD


def plot_grid(query, role, ranking, k, path):
    """The query and its top k garments with p(harmonious), one row."""
    from matplotlib.figure import Figure

    from neipalette_tf.evaluation.plots import save_figure  # deferred: matplotlib, only for --out

    shown = ranking[:k]
    fig = Figure(figsize=(2.2 * (len(shown) + 1), 2.9), layout="constrained")
    axes = fig.subplots(1, len(shown) + 1, squeeze=False)[0]
    for ax, (image, title, colour) in zip(axes, [(query, f"query ({role})", "black")] + [
            (p_, f"#{i + 1}  p = {s:.3f}\n{os.path.basename(p_)[:22]}", "#1a7f37" if s >= THRESHOLD else "#cf222e")
            for i, (p_, s) in enumerate(shown)]):
        ax.imshow(load_image(image, 160))
        ax.set_title(title, fontsize=8, color=colour)
        ax.axis("off")
    other = "bottoms" if role == "top" else "tops"
    fig.suptitle(f"Top {len(shown)} {other} by p(harmonious) (green: >= {THRESHOLD:g})", fontsize=10)
    save_figure(fig, path)
