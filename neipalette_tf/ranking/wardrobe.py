"""Rank a wardrobe: which of my bottoms go with this top (or tops with this bottom)?: the library behind `python -m neipalette_tf.recommend`.

The command, its flags and what it writes are described in `neipalette_tf/commands/recommend.py`;
this module holds the work, callable from Python.
"""

import json
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import atomic_write, write_json
from neipalette_tf.core.io_utils import hash_file as _sha256_file
from neipalette_tf.core.preprocessing import ImageLoadError, load_image
from neipalette_tf.predictors import load_predictor

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif")
CACHE_DIR = ".neipalette-cache"
INDEX_NAME = "files.json"
EMBED_BATCH = 64
BENCH_GOAL_MS = 50.0


def load_scorer(path, threads=None, verify=True):
    """The model at `path` as a `Predictor` that embeds and scores (a siamese model; any format).

    `verify`: check exported files against their model card's SHA-256.
    """
    return load_predictor(path, threads=threads, embeddings=True, verify=verify)


# --------------------------------------------------------------------------
# The embedding cache
# --------------------------------------------------------------------------


class EmbeddingCache:
    """Embeddings on disk, keyed by image content hash, one file per model identity.

    Files in the cache folder: `files.json` (path -> size, mtime, sha256:
    lets unchanged files skip hashing) and `embeddings-<model id>.npy`, one
    structured array (`key`: content hash, `embedding` `[D]`) that is
    memory-mapped on reading. Writes are atomic.
    """

    def __init__(self, folder, identity, log=None):
        self.folder = os.fspath(folder)
        self.identity = identity
        self.path = os.path.join(self.folder, f"embeddings-{identity[:20]}.npy")
        self.index_path = os.path.join(self.folder, INDEX_NAME)
        self.hits = self.misses = 0
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.read_only = None  # the reason the cache cannot be written, once it is known
        self.skipped = []  # (path, reason) of garments left out by `rank`
        self._index = self._read_index()
        self._index_dirty = False
        self.table = self._read_table()
        self.row = {} if self.table is None else {k.decode(): i for i, k in enumerate(self.table["key"].tolist())}

    def _read_index(self):
        """The stat index; anything unreadable, not an object, or with malformed entries is ignored."""
        try:
            with open(self.index_path, encoding="utf-8") as f:
                index = json.load(f)
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(index, dict):
            return {}
        return {k: v for k, v in index.items() if isinstance(v, list) and len(v) == 3
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v[:2])
                and isinstance(v[2], str) and len(v[2]) == 64}

    def _read_table(self):
        try:
            table = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if table.dtype.names != ("key", "embedding") or table.ndim != 1 or table.dtype["key"] != np.dtype("S64") \
                or len(table.dtype["embedding"].shape) != 1:
            return None
        return table

    def _writable(self, error):
        """Note once that the cache cannot be written (read-only wardrobe); ranking goes on without it."""
        if self.read_only is None:
            self.read_only = f"{error.filename or self.folder}: {error.strerror or error}"
            self.log(f"note: cannot write the embedding cache ({self.read_only}); ranking without caching")

    @staticmethod
    def _key(path):
        """The index key of a path: the path, or its bytes in hex when it is not valid UTF-8."""
        path = os.path.abspath(path)
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            return "hex:" + os.fsencode(path).hex()

    def content_hash(self, path):
        """SHA-256 of a file's bytes; reused from the index while size and mtime are unchanged."""
        st = os.stat(path)
        key = self._key(path)
        entry = self._index.get(key)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        digest = _sha256_file(path).hexdigest()
        self._index[key] = [st.st_size, st.st_mtime_ns, digest]
        self._index_dirty = True
        return digest

    def embed(self, paths, scorer, image_size, keys=None, skipped=None):
        """Embeddings `[len(paths), D]` of image files: cached rows, the rest computed and stored.

        `keys`: the files' content hashes when the caller has them already.
        `skipped`: a list; when given, an image that cannot be decoded is
        appended to it as `(path, reason)` and left out (its row is NaN),
        instead of stopping with `ImageLoadError`.
        """
        keys = [self.content_hash(p) for p in paths] if keys is None else keys
        missing = list(dict.fromkeys(k for k in keys if k not in self.row))
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        bad = set()
        if missing:
            first = {k: p for p, k in zip(paths, keys)}
            new_keys, new = [], []
            for i in range(0, len(missing), EMBED_BATCH):
                images, chunk = [], []
                for k in missing[i:i + EMBED_BATCH]:
                    try:
                        images.append(load_image(first[k], image_size))
                        chunk.append(k)
                    except ImageLoadError as e:
                        if skipped is None:
                            raise
                        bad.add(k)
                        skipped.extend((p, str(e)) for p, kk in zip(paths, keys) if kk == k)
                if images:
                    new.append(scorer.embed_batch(np.stack(images)))
                    new_keys += chunk
            if new_keys:
                self._add(new_keys, np.concatenate(new).astype(np.float32))
        if self._index_dirty:
            self._save_index()
        if self.table is None:
            return np.full((len(keys), 1), np.nan, np.float32)
        dim = self.table["embedding"].shape[1]
        out = np.full((len(keys), dim), np.nan, np.float32)
        rows = [(i, self.row[k]) for i, k in enumerate(keys) if k not in bad]
        if rows:
            out[[i for i, _ in rows]] = self.table["embedding"][[r for _, r in rows]]
        return out

    def _add(self, keys, embeddings):
        new = np.empty(len(keys), dtype=[("key", "S64"), ("embedding", "<f4", (embeddings.shape[1],))])
        new["key"] = [k.encode() for k in keys]
        new["embedding"] = embeddings
        if self.table is not None and self.table.dtype != new.dtype:  # another embedding size: start afresh
            self.table, self.row = None, {}
        table = new if self.table is None else np.concatenate([np.asarray(self.table), new])
        for k in keys:
            self.row[k] = len(self.row)
        self.table = table
        if self.read_only is not None:
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
            with atomic_write(self.path, "wb") as f:
                np.save(f, table, allow_pickle=False)
        except OSError as e:
            self._writable(e)

    def _save_index(self):
        self._index_dirty = False
        if self.read_only is not None:
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
            write_json(self.index_path, self._index)
        except OSError as e:
            self._writable(e)


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def shown(path):
    """A path as it can be printed: bytes that are not valid UTF-8 as \\xNN escapes."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def _is_file(entry):
    """Whether a folder entry is a regular file (following links); a broken link or a loop is not."""
    try:
        return entry.is_file()
    except OSError:
        return False


def wardrobe_images(folder, skipped=None):
    """Image files directly in `folder`, sorted by name (hidden files and the cache skipped).

    Links that lead nowhere or in a loop are left out; with a `skipped`
    list they are appended to it as `(path, reason)`.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise cli.UserError(f"{shown(folder)}: wardrobe folder not found")
    try:
        with os.scandir(folder) as entries:
            candidates = [e for e in entries if not e.name.startswith(".")
                          and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
            files = []
            for e in candidates:
                if _is_file(e):
                    files.append(e.path)
                elif skipped is not None and e.is_symlink():
                    skipped.append((e.path, f"{shown(e.path)}: a link that leads nowhere or in a loop"))
    except OSError as e:
        raise cli.UserError(f"{shown(folder)}: cannot list the wardrobe ({e.strerror})") from None
    files.sort()
    if not files:
        raise cli.UserError(f"{shown(folder)}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


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


def plot_grid(query, role, ranking, k, path):
    """The query and its top k garments with p(harmonious), one row."""
    from matplotlib.figure import Figure

    from neipalette_tf.evaluation.plots import save_figure  # deferred: matplotlib, only for --out

    shown = ranking[:k]
    fig = Figure(figsize=(2.2 * (len(shown) + 1), 2.9), layout="constrained")
    axes = fig.subplots(1, len(shown) + 1, squeeze=False)[0]
    for ax, (image, title, colour) in zip(axes, [(query, f"query ({role})", "black")] + [
            (p_, f"#{i + 1}  p = {s:.3f}\n{os.path.basename(p_)[:22]}", "#1a7f37" if s >= 0.5 else "#cf222e")
            for i, (p_, s) in enumerate(shown)]):
        ax.imshow(load_image(image, 160))
        ax.set_title(title, fontsize=8, color=colour)
        ax.axis("off")
    other = "bottoms" if role == "top" else "tops"
    fig.suptitle(f"Top {len(shown)} {other} by p(harmonious) (green: >= 0.5)", fontsize=10)
    save_figure(fig, path)


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------


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
