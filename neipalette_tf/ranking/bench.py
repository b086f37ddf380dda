"""`recommend --bench`: ranking time over a generated wardrobe of cached garments."""

import os
import tempfile
import time

import numpy as np
from PIL import Image

from neipalette_tf.ranking.rank import rank

BENCH_GOAL_MS = 50.0  # one top against 1,000 cached bottoms


def _bench_wardrobe(folder, n, seed=0):
    """`n` simple garment photos (a coloured shape on a light, noisy background) and a query top."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n + 1):
        img = np.empty((64, 48, 3), np.float32)
        img[:] = rng.integers(190, 250, 3)
        img[8:56, 12:36] = rng.integers(0, 256, 3)
        img += rng.normal(0, 5, img.shape)
        path = os.path.join(folder, "query_top.png" if i == n else f"garment_{i:04d}.png")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths[-1]


def bench(scorer, n=1000, queries=30):
    """Time ranking over `n` cached garments; returns a dict of timings (ms)."""
    with tempfile.TemporaryDirectory(prefix="neipalette-bench-") as tmp:
        wardrobe = os.path.join(tmp, "wardrobe")
        os.makedirs(wardrobe)
        query = _bench_wardrobe(wardrobe, n)
        start = time.perf_counter()
        ranking, store = rank(scorer, query, wardrobe)
        first = time.perf_counter() - start
        assert store.misses == n + 1 and len(ranking) == n
        times = []
        for _ in range(queries):
            t0 = time.perf_counter()
            ranking, store = rank(scorer, query, wardrobe)
            times.append((time.perf_counter() - t0) * 1e3)
            assert store.misses == 0 and store.hits == n + 1
        # The part the model governs: one top's embedding against the n cached ones, through the head.
        e_garments = store.embed([path for path, _ in ranking], scorer, scorer.image_size)
        e_query = np.broadcast_to(store.embed([query], scorer, scorer.image_size), e_garments.shape)
        scoring = []
        for _ in range(queries):
            t0 = time.perf_counter()
            scorer.score_batch(e_query, e_garments)
            scoring.append((time.perf_counter() - t0) * 1e3)
    return {"garments": n, "first_pass_s": first, "queries": queries,
            "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "max_ms": float(np.max(times)), "score_p50_ms": float(np.percentile(scoring, 50))}
