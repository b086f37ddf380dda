"""`neipalette_tf.ranking.cache.EmbeddingCache`: each garment embedded once per model, kept on disk.

A stand-in scorer (an image's mean colour as its "embedding", counting the
images it was asked to embed) replaces the model, so these tests check the
cache alone: stored rows found again by a new cache object, content-keyed
(a rename or a touched file hits, an edited file misses), the stat index
that spares hashing, hits and misses counted, corrupt or foreign files
ignored and rebuilt, an embedding size change, a cache that cannot be
written, undecodable images, paths that are not UTF-8. The ranking through
a real model is tests/ranking/test_recommend.py.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from neipalette_tf.core.preprocessing import ImageLoadError
from neipalette_tf.ranking import cache as cache_mod
from neipalette_tf.ranking.cache import INDEX_NAME, EmbeddingCache

SIZE = 8
IDENTITY = "f" * 64


class MeanColour:
    """A scorer whose embedding of an image is its mean colour (+ `extra` zeros), counting what it embeds."""

    def __init__(self, extra=0):
        self.extra, self.embedded = extra, 0

    def embed_batch(self, images):
        self.embedded += len(images)
        mean = np.asarray(images, np.float32).mean(axis=(1, 2))
        return np.concatenate([mean, np.zeros((len(images), self.extra), np.float32)], axis=1)


def garment(path, colour):
    Image.fromarray(np.full((10, 12, 3), colour, np.uint8)).save(path)
    return str(path)


@pytest.fixture
def wardrobe(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    paths = [garment(folder / f"g{i}.png", (40 * i, 200 - 30 * i, 90)) for i in range(4)]
    return folder, paths, tmp_path / "cache"


def silent():
    notes = []
    return notes, notes.append


def test_stored_embeddings_are_found_again_by_a_new_cache(wardrobe):
    _, paths, folder = wardrobe
    scorer = MeanColour()
    first = EmbeddingCache(folder, IDENTITY, log=silent()[1])
    e = first.embed(paths, scorer, SIZE)
    assert e.shape == (4, 3) and e.dtype == np.float32 and (first.hits, first.misses) == (0, 4)
    np.testing.assert_allclose(e[:, 0], [0, 40, 80, 120], atol=1)  # the rows are in the order of `paths`
    assert sorted(os.listdir(folder)) == [f"embeddings-{IDENTITY[:20]}.npy", INDEX_NAME]
    again = EmbeddingCache(folder, IDENTITY, log=silent()[1])
    assert isinstance(again.table, np.memmap)  # read memory-mapped
    np.testing.assert_array_equal(again.embed(paths[::-1], scorer, SIZE), e[::-1])
    assert (again.hits, again.misses) == (4, 0) and scorer.embedded == 4  # nothing embedded twice
    other = EmbeddingCache(folder, "0" * 64, log=silent()[1])  # another model: its own file, all misses
    other.embed(paths, scorer, SIZE)
    assert other.misses == 4 and len(os.listdir(folder)) == 3


def test_the_same_content_twice_is_embedded_once_and_counted_as_one_miss(wardrobe):
    folder, paths, cache = wardrobe
    twin = folder / "twin.png"
    twin.write_bytes(open(paths[1], "rb").read())
    scorer = MeanColour()
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    e = store.embed([paths[1], str(twin), paths[2]], scorer, SIZE)
    assert (store.hits, store.misses, scorer.embedded) == (1, 2, 2)
    np.testing.assert_array_equal(e[0], e[1])


def test_a_touched_or_renamed_file_hits_and_an_edited_file_misses(wardrobe, monkeypatch):
    folder, paths, cache = wardrobe
    scorer = MeanColour()
    EmbeddingCache(cache, IDENTITY, log=silent()[1]).embed(paths, scorer, SIZE)
    hashed = []
    real_hash = cache_mod._sha256_file
    monkeypatch.setattr(cache_mod, "_sha256_file", lambda p: hashed.append(os.path.basename(p)) or real_hash(p))

    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    store.embed(paths, scorer, SIZE)
    assert hashed == [] and store.hits == 4  # size and mtime unchanged: the index's hashes, no file read

    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    os.rename(paths[1], folder / "renamed.png")
    garment(paths[2], (1, 2, 3))  # edited: new bytes
    moved = [paths[0], str(folder / "renamed.png"), paths[2], paths[3]]
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    e = store.embed(moved, scorer, SIZE)
    assert sorted(hashed) == ["g0.png", "g2.png", "renamed.png"]  # re-hashed: new mtime, new path, new bytes
    assert (store.hits, store.misses) == (3, 1) and scorer.embedded == 5
    np.testing.assert_allclose(e[2], [1, 2, 3], atol=0.5)  # the edited file's new embedding
    index = json.loads((cache / INDEX_NAME).read_text())
    assert index[os.path.abspath(paths[0])][1] == st.st_mtime_ns + 10**9  # the index learnt the new mtime


@pytest.mark.parametrize("junk", [b"", b"not numpy at all", b"\x93NUMPY\x01\x00garbage"])
def test_a_corrupt_embeddings_file_is_ignored_and_rebuilt(wardrobe, junk):
    _, paths, cache = wardrobe
    scorer = MeanColour()
    EmbeddingCache(cache, IDENTITY, log=silent()[1]).embed(paths, scorer, SIZE)
    table = cache / f"embeddings-{IDENTITY[:20]}.npy"
    table.write_bytes(junk)
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    assert store.table is None and store.row == {}
    e = store.embed(paths, scorer, SIZE)
    assert store.misses == 4 and not np.isnan(e).any()
    rebuilt = np.load(table, allow_pickle=False)
    assert rebuilt.dtype.names == ("key", "embedding") and len(rebuilt) == 4


def test_a_table_of_the_wrong_layout_is_ignored(wardrobe):
    _, paths, cache = wardrobe
    cache.mkdir()
    np.save(cache / f"embeddings-{IDENTITY[:20]}.npy", np.zeros((4, 3), np.float32))  # valid .npy, not ours
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    assert store.table is None
    store.embed(paths, MeanColour(), SIZE)
    assert store.misses == 4


def test_a_foreign_or_malformed_index_is_ignored_and_replaced(wardrobe):
    _, paths, cache = wardrobe
    cache.mkdir()
    good = "a" * 64
    (cache / INDEX_NAME).write_text(json.dumps({
        "/x/ok.png": [10, 20, good], "/x/short-hash.png": [10, 20, "abc"], "/x/bool.png": [True, 20, good],
        "/x/two.png": [10, 20], "/x/text.png": "nope"}))
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    assert store._index == {"/x/ok.png": [10, 20, good]}
    for text in ("[1, 2, 3]", "{not json", "\udcff"):
        (cache / INDEX_NAME).write_text(text, errors="surrogateescape")
        store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
        assert store._index == {}
    store.embed(paths, MeanColour(), SIZE)
    index = json.loads((cache / INDEX_NAME).read_text())
    assert set(index) == {os.path.abspath(p) for p in paths}


def test_a_new_embedding_size_starts_the_table_afresh(wardrobe):
    _, paths, cache = wardrobe
    EmbeddingCache(cache, IDENTITY, log=silent()[1]).embed(paths[:2], MeanColour(), SIZE)
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    e = store.embed(paths[2:], MeanColour(extra=2), SIZE)
    assert e.shape == (2, 5) and not np.isnan(e).any()
    table = np.load(cache / f"embeddings-{IDENTITY[:20]}.npy")
    assert table["embedding"].shape == (2, 5)  # the old 3-wide rows are gone, not mixed in


def test_a_cache_that_cannot_be_written_notes_it_once_and_still_embeds(wardrobe, tmp_path):
    _, paths, _ = wardrobe
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder's parent should be")
    notes, log = silent()
    store = EmbeddingCache(blocker / "cache", IDENTITY, log=log)
    e = store.embed(paths[:2], MeanColour(), SIZE)
    e2 = store.embed(paths, MeanColour(), SIZE)
    assert not np.isnan(e).any() and not np.isnan(e2).any() and store.hits == 2  # kept in memory
    assert store.read_only and str(blocker) in store.read_only
    assert len(notes) == 1 and notes[0].startswith("note: cannot write the embedding cache")
    assert blocker.read_text().startswith("a file")


def test_an_undecodable_image_is_skipped_with_a_nan_row_or_raises(wardrobe):
    folder, paths, cache = wardrobe
    bad = folder / "bad.png"
    bad.write_bytes(b"not an image")
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    with pytest.raises(ImageLoadError, match="bad.png"):
        store.embed([paths[0], str(bad)], MeanColour(), SIZE)
    skipped = []
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    e = store.embed([str(bad), paths[0], paths[1]], MeanColour(), SIZE, skipped=skipped)
    assert np.isnan(e[0]).all() and not np.isnan(e[1:]).any()
    assert [p for p, _ in skipped] == [str(bad)] and "bad.png" in skipped[0][1]
    assert all(k.encode() in np.load(cache / f"embeddings-{IDENTITY[:20]}.npy")["key"] for k in store.row)
    only_bad = EmbeddingCache(cache / "other", IDENTITY, log=silent()[1])  # nothing stored at all
    e = only_bad.embed([str(bad)], MeanColour(), SIZE, skipped=[])
    assert e.shape == (1, 1) and np.isnan(e).all()


def test_given_keys_are_used_and_not_recomputed(wardrobe, monkeypatch):
    _, paths, cache = wardrobe
    monkeypatch.setattr(cache_mod, "_sha256_file", lambda p: pytest.fail("hashed although keys were given"))
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    e = store.embed(paths[:2], MeanColour(), SIZE, keys=["1" * 64, "2" * 64])
    assert store.misses == 2 and set(store.row) == {"1" * 64, "2" * 64} and e.shape == (2, 3)
    assert not (cache / INDEX_NAME).exists()  # nothing hashed: no index to write


@pytest.mark.skipif(os.name != "posix", reason="non-UTF-8 file names: POSIX")
def test_a_file_name_that_is_not_utf8_is_indexed_in_hex(wardrobe):
    folder, _, cache = wardrobe
    name = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    try:
        with open(name, "wb") as f:
            Image.fromarray(np.full((6, 6, 3), 77, np.uint8)).save(f, format="PNG")
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    path = os.fsdecode(name)
    store = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    store.embed([path], MeanColour(), SIZE)
    index = json.loads((cache / INDEX_NAME).read_text(encoding="utf-8"))
    assert list(index) == ["hex:" + os.path.abspath(name).hex()]
    again = EmbeddingCache(cache, IDENTITY, log=silent()[1])
    again.embed([path], MeanColour(), SIZE)
    assert again.hits == 1
