"""The wardrobe's embedding cache: each garment embedded once per model, kept beside the wardrobe."""

import json
import os
import sys

import numpy as np

from neipalette_tf.core.io_utils import atomic_write, write_json
from neipalette_tf.core.io_utils import hash_file as _sha256_file
from neipalette_tf.core.preprocessing import ImageLoadError, load_image

CACHE_DIR = ".neipalette-cache"  # inside the wardrobe folder, unless `recommend --cache` names another
INDEX_NAME = "files.json"
EMBED_BATCH = 64


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
