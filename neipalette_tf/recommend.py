"""Rank a wardrobe: which of my bottoms go with this top (or tops with this bottom)?

    python -m neipalette_tf.recommend --model MODEL --top IMG --wardrobe DIR [--k 5] [--out grid.png] [--cache PATH] [--json]
    python -m neipalette_tf.recommend --model MODEL --bottom IMG --wardrobe DIR ...
    python -m neipalette_tf.recommend --model MODEL --bench [--garments 1000]

Every image in DIR (not its subfolders) is scored against the query with
p(harmonious) and the list is printed best first; `--out` draws the query
and the top k with their scores. MODEL is a Keras `model.keras` or an
export (`model.onnx`, `model*.tflite`, an export folder, or
`saved_model/`): the siamese encoder / head split is used, so every garment
is embedded once and a query costs one head pass over the wardrobe.

**Cache.** Embeddings are kept on disk, in `DIR/.neipalette-cache/` (or
`--cache PATH`), keyed by the image's content (SHA-256) and the model's
identity (SHA-256 of the model file, or of the encoder file of an export):
renaming a file keeps its embedding, editing it or changing the model does
not. A stat index (size, mtime) avoids re-reading unchanged files to hash
them. Embeddings of different models never mix.

**Benchmark.** `--bench` renders `--garments` garment photos into a
temporary wardrobe, embeds them (the first pass, timed apart), then times
ranking queries end to end (list the folder, look up the cache on disk,
score every garment, sort) in the loaded process, and prints p50 / p90.
Model loading is not part of a query.
"""

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

from neipalette_tf import cli
from neipalette_tf.io_utils import hash_file as _sha256_file

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif")
CACHE_DIR = ".neipalette-cache"
INDEX_NAME = "files.json"
EMBED_BATCH = 64
BENCH_GOAL_MS = 50.0


# --------------------------------------------------------------------------
# Models: embed_batch / score_batch, and an identity for the cache
# --------------------------------------------------------------------------




class KerasScorer:
    """A Keras HarmonyClassifier's encoder and head as NumPy functions."""

    def __init__(self, path):
        from neipalette_tf.models import load_model

        model = load_model(path)
        if model.pairing != "siamese":
            raise cli.UserError(f"{path}: a {model.pairing} model has no separate encoder and head; "
                                "wardrobe ranking needs a siamese model")
        self.image_size = model.image_size
        self.encoder, self.head = model.encoder(), model.head_model()
        self.identity = _sha256_file(path).hexdigest()

    # predict_on_batch (a tf.function), not an eager call: the colour pooling's
    # custom gradient cannot run eagerly with variables.
    def embed_batch(self, images):
        return np.asarray(self.encoder.predict_on_batch(np.asarray(images, np.float32)))

    def score_batch(self, e_tops, e_bottoms):
        out = self.head.predict_on_batch({"top_embedding": np.asarray(e_tops, np.float32),
                                          "bottom_embedding": np.asarray(e_bottoms, np.float32)})
        return np.asarray(out, dtype=np.float64)[:, 1]


class RuntimeScorer:
    """An exported encoder and head (ONNX Runtime or LiteRT; no TensorFlow) as NumPy functions."""

    def __init__(self, path, threads=None, verify=True):
        from neipalette_tf.runtime import ArtifactError, HarmonyRuntime

        try:
            self.runtime = HarmonyRuntime(path, threads=threads, verify=verify)
            self.runtime.encoder, self.runtime.head  # noqa: B018 - fail now if the export has none
        except ArtifactError as e:
            raise cli.UserError(str(e)) from None
        self.image_size = self.runtime.image_size
        digest = hashlib.sha256()
        for part in ("encoder", "head"):
            _sha256_file(self.runtime.files[part], digest)
        self.identity = digest.hexdigest()

    def embed_batch(self, images):
        return self.runtime.embed_batch(images)

    def score_batch(self, e_tops, e_bottoms):
        return self.runtime.score_batch(e_tops, e_bottoms)


class SavedModelScorer:
    """A SavedModel's `encoder` and `head` signatures."""

    def __init__(self, folder):
        from export.savedmodel import SavedModelRunner

        self.runner = SavedModelRunner(folder)
        if "encoder" not in self.runner.signatures:
            raise cli.UserError(f"{folder}: no encoder signature (a stacked model?); ranking needs a siamese model")
        self.image_size = self.runner.image_size
        digest = hashlib.sha256()
        for root, _, files in sorted(os.walk(folder)):
            for name in sorted(files):
                _sha256_file(os.path.join(root, name), digest)
        self.identity = digest.hexdigest()

    def embed_batch(self, images):
        return self.runner.embed_batch(images)

    def score_batch(self, e_tops, e_bottoms):
        return self.runner.score_batch(e_tops, e_bottoms)


def load_scorer(path, threads=None, verify=True):
    """The encoder / head of the model at `path` (format from the path, as in `predict`).

    `threads`: CPU threads of ONNX Runtime / LiteRT (TensorFlow: set before loading).
    `verify`: check exported files against their model card's SHA-256.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise cli.UserError(f"{path}: model not found")
    suffix = os.path.splitext(path)[1]
    if suffix == ".keras":
        if not os.path.isfile(path):
            raise cli.UserError(f"{path}: is not a model file")
        return KerasScorer(path)
    if suffix in (".onnx", ".tflite"):
        return RuntimeScorer(path, threads, verify)
    if os.path.isdir(path):
        from neipalette_tf.predict import saved_model_dir

        folder = saved_model_dir(path)
        if folder is not None:
            try:
                return SavedModelScorer(folder)
            except cli.UserError:
                raise
            except Exception as e:  # noqa: BLE001 - a corrupt or foreign SavedModel
                text = str(e).strip()
                reason = f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__
                raise cli.UserError(f"{folder}: cannot load the SavedModel ({reason})") from None
        if os.path.isfile(os.path.join(path, "model.onnx")):
            return RuntimeScorer(path, threads, verify)
        raise cli.UserError(f"{path}: neither a SavedModel nor an export folder with model.onnx")
    raise cli.UserError(f"{path}: unknown model format (use .keras, .onnx, .tflite, an export folder or a SavedModel)")


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
        from neipalette_tf.preprocessing import ImageLoadError, load_image

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
        from neipalette_tf.io_utils import atomic_write

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
        from neipalette_tf.io_utils import write_json

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

    from neipalette_tf.plots import save_figure
    from neipalette_tf.preprocessing import load_image

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
    from PIL import Image

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
    import tempfile

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
    return {"garments": n, "first_pass_s": first, "queries": queries,
            "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
            "max_ms": float(np.max(times))}


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.recommend", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model.keras, model.onnx, model*.tflite, an export folder or saved_model/")
    query = p.add_mutually_exclusive_group()
    query.add_argument("--top", help="photo of a top: rank the wardrobe's bottoms")
    query.add_argument("--bottom", help="photo of a bottom: rank the wardrobe's tops")
    query.add_argument("--bench", action="store_true", help="time ranking over --garments cached garments")
    p.add_argument("--wardrobe", help="folder of garment photos")
    p.add_argument("--k", type=int, default=5, help="garments in the grid (default 5)")
    p.add_argument("--out", help="write the grid of the top k here (PNG)")
    p.add_argument("--cache", help=f"cache folder (default: WARDROBE/{CACHE_DIR})")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.add_argument("--garments", type=int, default=1000, help="wardrobe size for --bench (default 1000)")
    p.add_argument("--threads", type=int, help="CPU threads of the model runtime")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the SHA-256 check of exported files against their model_card.json")
    return p.parse_args(argv)


def _set_threads(args):
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        if os.path.splitext(args.model)[1] == ".keras" or os.path.isdir(args.model):
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)


def _check_paths(args):
    """Output paths, before any work: --out a writable file name, --cache not a file."""
    from neipalette_tf import staging

    if args.out:
        staging.check_output_file(args.out, "--out")
        if os.path.splitext(args.out)[1].lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".webp"):
            raise cli.UserError(f"{shown(args.out)}: --out is the grid image; give a .png (or .jpg, .pdf, .svg) name")
    if args.cache and os.path.lexists(args.cache) and not os.path.isdir(args.cache):
        raise cli.UserError(f"{shown(args.cache)}: --cache is a file; give a folder (it is created if needed)")


def main(argv=None):
    args = parse_args(argv)
    if args.k < 1:
        raise cli.UserError(f"--k must be at least 1, got {args.k}")
    if args.threads is not None and args.threads < 1:
        raise cli.UserError(f"--threads must be at least 1, got {args.threads}")
    _check_paths(args)
    _set_threads(args)
    if args.bench:
        if args.garments < 1:
            raise cli.UserError(f"--garments must be at least 1, got {args.garments}")
        scorer = load_scorer(args.model, args.threads, args.verify)
        r = bench(scorer, args.garments)
        met = "met" if r["p50_ms"] < BENCH_GOAL_MS else "NOT met"
        load = os.getloadavg()[0]
        print(f"model: {args.model} ({type(scorer).__name__}, threads: {args.threads or 'default'}), "
              f"{r['garments']} garments, {os.cpu_count()} CPUs, load average {load:.1f}; "
              f"first pass (embed all): {r['first_pass_s']:.1f} s")
        print(f"ranking {r['garments']} cached garments, end to end, {r['queries']} queries: "
              f"p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
              f"(goal < {BENCH_GOAL_MS:.0f} ms: {met})")
        return 0
    if not (args.top or args.bottom):
        raise cli.UserError("give --top IMG or --bottom IMG (or --bench)")
    if not args.wardrobe:
        raise cli.UserError("--wardrobe DIR is required")
    role, query = ("top", args.top) if args.top else ("bottom", args.bottom)
    from neipalette_tf.preprocessing import load_image

    load_image(query, 8)  # fail fast, before loading a model
    scorer = load_scorer(args.model, args.threads, args.verify)
    ranking, store = rank(scorer, query, args.wardrobe, role, args.cache)
    if args.out:
        plot_grid(query, role, ranking, args.k, args.out)
    for path, reason in store.skipped:
        print(f"skipped: {shown(reason)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"query": shown(query), "role": role, "ranking": [
            {"rank": i + 1, "file": shown(f), "p_harmonious": round(p, 6)} for i, (f, p) in enumerate(ranking)],
            "skipped": [{"file": shown(f), "reason": shown(r)} for f, r in store.skipped],
            "cache": {"hits": store.hits, "misses": store.misses, "folder": shown(store.folder),
                      "written": store.read_only is None}}))
        return 0
    other = "bottoms" if role == "top" else "tops"
    note = f", {len(store.skipped)} unreadable skipped" if store.skipped else ""
    print(f"{len(ranking)} {other} ranked for {shown(query)} (cache: {store.hits} hits, {store.misses} new{note})")
    for i, (f, p) in enumerate(ranking):
        print(f"{i + 1:4d}  {p:.4f}  {'harmonious' if p >= 0.5 else 'clashing  '}  {shown(f)}")
    if args.out:
        print(f"grid: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
