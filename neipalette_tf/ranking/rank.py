"""Rank a wardrobe: which of my bottoms go with this top (or tops with this bottom)?

The library behind `python -m neipalette_tf.recommend`; the command, its
flags and what it writes are described in `neipalette_tf/commands/recommend.py`.
Embeddings come from the wardrobe's cache (`neipalette_tf.ranking.cache`),
so a second query embeds nothing but itself.
"""

import os

import numpy as np

from neipalette_tf.core import cli
from neipalette_tf.predictors import load_predictor
from neipalette_tf.ranking.cache import CACHE_DIR, EmbeddingCache
from neipalette_tf.ranking.wardrobe import shown, wardrobe_images


def load_scorer(path, threads=None, verify=True):
    """The model at `path` as a `Predictor` that embeds and scores (a siamese model; any format).

    `verify`: check exported files against their model card's SHA-256.
    """
    return load_predictor(path, threads=threads, embeddings=True, verify=verify)


def rank(scorer, query, wardrobe, role="top", cache=None):
    """Every wardrobe garment scored against `query`, best first.

    Args:
        scorer: from `load_scorer`.
        query: image path of the top (`role="top"`: ranks bottoms) or the
            bottom (`role="bottom"`: ranks tops).
        wardrobe: a folder of images; the query itself (same content) is left out.
        cache: the cache folder (default: `wardrobe/.neipalette-cache`).

    Returns:
        (ranking, cache): ranking is a list of `(path, p_harmonious)`.
        Garments that cannot be read or decoded are left out and listed in
        `cache.skipped` as `(path, reason)`; only the query is required.
    """
    if role not in ("top", "bottom"):
        raise ValueError(f"role must be 'top' or 'bottom', got {role!r}")
    if not os.path.isfile(query):
        raise cli.UserError(f"{shown(query)}: image not found")
    skipped = []
    files = wardrobe_images(wardrobe, skipped)
    store = EmbeddingCache(cache or os.path.join(wardrobe, CACHE_DIR), scorer.identity)
    store.skipped = skipped
    try:
        query_key = store.content_hash(query)
    except OSError as e:
        raise cli.UserError(f"{shown(query)}: cannot read the query ({e.strerror})") from None
    keyed = []
    for f in files:
        try:
            k = store.content_hash(f)
        except OSError as e:
            skipped.append((f, f"{shown(f)}: cannot read it ({e.strerror})"))
            continue
        if k != query_key:
            keyed.append((f, k))
    if not keyed:
        raise cli.UserError(f"{shown(wardrobe)}: no garments besides the query")
    files, keys = [f for f, _ in keyed], [k for _, k in keyed]
    e_query = store.embed([query], scorer, scorer.image_size, [query_key])
    e_garments = store.embed(files, scorer, scorer.image_size, keys, skipped=skipped)
    good = ~np.isnan(e_garments).any(axis=1)
    if not good.any():
        raise cli.UserError(f"{shown(wardrobe)}: no garment could be decoded (first: {skipped[0][1]})")
    files = [f for f, ok in zip(files, good) if ok]
    e_garments = e_garments[good]
    e_query = np.broadcast_to(e_query, e_garments.shape)
    p = scorer.score_batch(e_query, e_garments) if role == "top" else scorer.score_batch(e_garments, e_query)
    order = np.argsort(-np.asarray(p), kind="stable")
    return [(files[i], float(p[i])) for i in order], store
