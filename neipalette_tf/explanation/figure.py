"""Pictures of an explanation: the attention heat overlay (also the service's) and `explain.png`."""

import textwrap

import numpy as np

from neipalette_tf.explanation.fixes import TARGET_P
from neipalette_tf.explanation.readings import ROLES
from neipalette_tf.explanation.recolour import _blur, upsample


def heat_overlay(image, attention, alpha=0.55):
    """The photo with its attention map as a heat overlay (uint8 `[S, S, 3]`), or the photo without one."""
    if attention is None:
        return np.asarray(image)
    size = image.shape[0]
    a = _blur(upsample(attention, size), max(size / 48.0, 0.5))
    # square root: a softmax map is peaked; its tail still shows where the model looked
    a = np.sqrt(np.clip(a / max(a.max(), 1e-12), 0.0, 1.0))[..., None]
    heat = np.concatenate([np.ones_like(a), np.clip(2.0 * a - 0.4, 0, 1), np.zeros_like(a)], axis=-1) * 255.0
    grey = np.asarray(image, np.float64).mean(axis=-1, keepdims=True) * np.ones(3)
    base = 0.5 * np.asarray(image, np.float64) + 0.5 * grey
    return np.clip(base * (1 - alpha * a) + heat * alpha * a, 0, 255).astype(np.uint8)


def save_figure(result, top, bottom, path):
    """`explain.png`: photos with attention, swatches, verdict and the suggestions with previews."""
    # Deferred: only the figure needs matplotlib; the web service draws with Pillow.
    from matplotlib.figure import Figure

    from neipalette_tf.evaluation.plots import save_figure as save_png  # matplotlib too: the runtime extra has none

    suggestions = result["suggestions"]
    on_palettes = result.get("palette_suggestions") or []  # a multi-colour garment's, after the others
    attention = result.get("_attention") or [None, None]
    columns = 2 + max(1, len(suggestions)) + len(on_palettes)
    fig = Figure(figsize=(2.6 * columns, 3.9), layout="constrained")
    axes = fig.subplots(1, columns, squeeze=False)[0]
    for ax, role, image, att in zip(axes, ROLES, (top, bottom), attention):
        c = result["colours"][role]
        ax.imshow(heat_overlay(np.asarray(image), att))
        ax.set_title(f"{role}: {c['name']}\n{c['hex']}  L {c['oklch'][0]:.2f} C {c['oklch'][1]:.2f} "
                     f"h {c['oklch'][2]:.0f}°", fontsize=8)
        ax.add_patch(_swatch(ax, c["hex"]))
        ax.axis("off")
    for j in range(max(1, len(suggestions))):
        ax = axes[2 + j]
        ax.axis("off")
        if j >= len(suggestions):
            ax.text(0.5, 0.5, "harmonious:\nno fix needed" if result["label"] == "harmonious"
                    else f"no colour reaches\np >= {TARGET_P} in the head", ha="center", va="center", fontsize=9)
            continue
        s = suggestions[j]
        ax.imshow(result["_previews"][j])
        ax.add_patch(_swatch(ax, s["colour"]["hex"]))
        ax.set_title(f"#{j + 1} {s['role']} -> {s['colour']['name']} ({s['colour']['hex']})\n"
                     f"p head {s['p_head']:.2f}, p photo {s['p_pixels']:.2f}, ΔE {s['delta_e']:.3f}",
                     fontsize=8, color="#1a7f37" if s["p_pixels"] >= result["threshold"] else "#cf222e")
    for j, s in enumerate(on_palettes):
        ax = axes[2 + max(1, len(suggestions)) + j]
        ax.axis("off")
        ax.imshow(result["_palette_previews"][j])
        ax.add_patch(_swatch(ax, s["colour"]["hex"]))
        ax.set_title(f"palette #{j + 1} {s['role']} {s['from']['name']} ({round(100 * s['share'])} %)\n"
                     f"-> {s['colour']['name']} ({s['colour']['hex']}): people {s['rating_pixels']:.1f} / 5, "
                     f"p {s['p_pixels']:.2f}", fontsize=8)
    verdict = f"p(harmonious) = {result['p_harmonious']:.3f}: {result['label']}"
    reading = result["rule"]["reading"]
    if "people" in result:
        reading = f"{result['people']['reading']}\ncolour theory: {reading}"
    fig.suptitle(f"{verdict}  ({result['model']['format']})\n{_wrap(reading, 110)}", fontsize=9,
                 color="#1a7f37" if result["label"] == "harmonious" else "#cf222e")
    save_png(fig, path)


def _swatch(ax, hex_code):
    from matplotlib.patches import Rectangle

    return Rectangle((0.78, 0.02), 0.2, 0.2, transform=ax.transAxes, facecolor=hex_code, edgecolor="black", lw=0.8)


def _wrap(text, width):

    return "\n".join(textwrap.wrap(text, width))
