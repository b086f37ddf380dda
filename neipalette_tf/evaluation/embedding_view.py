"""Embedding view: a t-SNE map of garment embeddings, coloured by main hue.

Did the network organise colour? Every garment of a split goes through the
model's encoder (`HarmonyClassifier.encoder()`: pooled backbone features
and the colour read-out), scikit-learn's t-SNE places the embeddings in
2-D, and each point is drawn in its garment's main hue from the manifest's
colour columns (`top_L, top_C, top_h`, ...): the hue at a fixed lightness
and chroma, so only hue shows; garments the harmony rule calls neutral
(`neipalette_tf.colour.harmony.is_neutral`) are grey. Tops are circles, bottoms
triangles. If the map shows a colour wheel, the embedding is organised by
hue; if colours are mixed everywhere, it is not.

One number goes with the picture: **hue neighbour agreement**, the share
of each chromatic garment's 10 nearest neighbours (in the embedding, not
the t-SNE map) whose hue is within 30° of its own, against the share
expected from the hue distribution alone (chance).

Only splits whose manifest records main colours get a view; at most
`MAX_GARMENTS` garments are drawn (a fixed-seed sample).

Example:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> hue = rng.uniform(0, 360, 60)
>>> lch = np.stack([np.full(60, 0.6), np.full(60, 0.15), hue], 1)
>>> emb = np.stack([np.cos(np.radians(hue)), np.sin(np.radians(hue))], 1)  # a perfect hue circle
>>> a = hue_neighbour_agreement(emb, lch, k=5)
>>> a["agreement"] > 0.9 > a["chance"]
True
"""

import numpy as np
from sklearn.manifold import TSNE

from neipalette_tf.colour.harmony import hue_distance, is_neutral
from neipalette_tf.colour.space import oklch_to_srgb
from neipalette_tf.evaluation.plots import save_figure

MAX_GARMENTS = 600  # t-SNE time grows with it; 600 points keep the training run within its budget
DISPLAY_L, DISPLAY_C = 0.72, 0.13
NEUTRAL_GREY = (0.62, 0.62, 0.62)
NEIGHBOURS = 10
SAME_HUE_DEG = 30.0


def split_garments(manifest, top_images=None, bottom_images=None):
    """Unique garments of a manifest split: `(paths, kinds, lch [N, 3], rows)`, or None without colours.

    `top_images` / `bottom_images`: optional decoded arrays in manifest
    order; when given, the images of the unique garments are returned too
    (as a 5th item), so nothing is decoded twice.
    """
    seen, paths, kinds, lch, images = set(), [], [], [], []
    for i, row in enumerate(manifest.rows):
        for kind, source in (("top", top_images), ("bottom", bottom_images)):
            try:
                colour = [float(row[f"{kind}_{c}"]) for c in "LCh"]
            except (KeyError, TypeError, ValueError):
                return None
            if row[kind] in seen:
                continue
            seen.add(row[kind])
            paths.append(row[kind])
            kinds.append(kind)
            lch.append(colour)
            images.append(None if source is None else source[i])
    return paths, kinds, np.array(lch, dtype=np.float64), images


def display_colours(lch):
    """sRGB 0..1 per garment: its hue at a fixed lightness and chroma; neutrals grey."""
    lch = np.asarray(lch, dtype=np.float64)
    neutral = is_neutral(lch[:, 0], lch[:, 1], lch[:, 2])
    shown = np.stack([np.full(len(lch), DISPLAY_L), np.full(len(lch), DISPLAY_C), lch[:, 2]], axis=1)
    rgb = np.clip(oklch_to_srgb(shown) / 255.0, 0, 1)
    rgb[neutral] = NEUTRAL_GREY
    return rgb, neutral


def hue_neighbour_agreement(embeddings, lch, k=NEIGHBOURS, within=SAME_HUE_DEG):
    """Share of chromatic garments' k nearest embedding neighbours (chromatic) with a hue within `within` degrees.

    Returns `{"agreement", "chance", "k", "garments"}`; chance is the same
    share over all pairs of chromatic garments. None with fewer than k + 2.
    """
    lch = np.asarray(lch, dtype=np.float64)
    chromatic = ~is_neutral(lch[:, 0], lch[:, 1], lch[:, 2])
    e = np.asarray(embeddings, dtype=np.float64)[chromatic]
    hue = lch[chromatic, 2]
    n = len(e)
    if n < k + 2:
        return None
    e = (e - e.mean(0)) / (e.std(0) + 1e-8)  # every feature on the same footing
    d = np.sum(e**2, 1)[:, None] + np.sum(e**2, 1)[None, :] - 2 * e @ e.T
    np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1)[:, :k]
    close = hue_distance(hue[:, None], hue[None, :]) <= within
    agreement = float(np.mean(np.take_along_axis(close, neighbours, axis=1)))
    off_diagonal = ~np.eye(n, dtype=bool)
    return {"agreement": agreement, "chance": float(close[off_diagonal].mean()), "k": k, "garments": int(n)}


def tsne_2d(embeddings, seed=0):
    """t-SNE (scikit-learn, PCA init) of the embeddings -> `[N, 2]`."""
    n = len(embeddings)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                learning_rate="auto").fit_transform(np.asarray(embeddings, dtype=np.float64))


def plot_embedding_view(points, lch, kinds, path, title):
    """The t-SNE scatter: hue-coloured points (neutrals grey), circles = tops, triangles = bottoms."""
    from matplotlib.figure import Figure


    rgb, neutral = display_colours(lch)
    kinds = np.asarray(kinds)
    fig = Figure(figsize=(7.2, 6.4), layout="constrained")
    ax = fig.subplots()
    for kind, marker in (("top", "o"), ("bottom", "^")):
        for grey in (True, False):  # neutrals first, underneath
            m = (kinds == kind) & (neutral == grey)
            if m.any():
                ax.scatter(points[m, 0], points[m, 1], c=rgb[m], marker=marker, s=22, linewidths=0.3,
                           edgecolors="0.25")
    ax.set(xticks=[], yticks=[], title=title)
    from matplotlib.lines import Line2D

    key = [Line2D([], [], marker=m, linestyle="", markerfacecolor=f, markeredgecolor="0.25", label=label)
           for m, f, label in (("o", "white", "top"), ("^", "white", "bottom"),
                               ("s", NEUTRAL_GREY, "neutral (rule v1)"))]
    ax.legend(handles=key, fontsize=8, loc="best")
    wheel = fig.add_axes([0.86, 0.03, 0.12, 0.12], projection="polar")  # the hue key
    angles = np.radians(np.arange(0, 360, 3))
    hue_rgb, _ = display_colours(np.stack([np.full(len(angles), 0.7), np.full(len(angles), 0.2),
                                           np.degrees(angles)], 1))
    wheel.bar(angles, np.ones(len(angles)), width=np.radians(3.2), color=hue_rgb, bottom=0.55)
    wheel.set_axis_off()
    wheel.set_title("hue", fontsize=7, pad=1)
    save_figure(fig, path)


def write_embedding_view(encoder_predict, manifest, path, top_images, bottom_images, title, seed=0):
    """Embed a split's unique garments, draw `path` (t-SNE), return the summary dict; None without colours.

    Args:
        encoder_predict: uint8 images `[N, S, S, 3]` -> embeddings `[N, D]`.
        manifest: the split (rows with paths and colour columns).
        top_images, bottom_images: the split's decoded images, manifest order.
    """
    garments = split_garments(manifest, top_images, bottom_images)
    if garments is None:
        return None
    paths, kinds, lch, images = garments
    keep = np.arange(len(paths))
    if len(keep) > MAX_GARMENTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), MAX_GARMENTS, replace=False))
    if len(keep) < 5:
        return None
    batch = np.stack([images[i] for i in keep])
    embeddings = encoder_predict(batch)
    points = tsne_2d(embeddings, seed)
    agreement = hue_neighbour_agreement(embeddings, lch[keep])
    subtitle = ""
    if agreement:
        subtitle = (f"\n{agreement['k']}-NN hue agreement (within {SAME_HUE_DEG:.0f}°): "
                    f"{agreement['agreement']:.2f} (chance {agreement['chance']:.2f})")
    plot_embedding_view(points, lch[keep], [kinds[i] for i in keep], path, title + subtitle)
    return {"garments": int(len(keep)), "hue_neighbour_agreement": agreement}


def keras_encoder_predict(model, batch_size=128):
    """`encoder_predict` of a Keras HarmonyClassifier (siamese): its `encoder()`."""
    encoder = model.encoder()

    def predict(images):
        return np.asarray(encoder.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0))

    return predict
