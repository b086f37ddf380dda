"""`neipalette_tf.core.memory.release`: collect, then hand freed heap pages back where the C library allows."""

import gc
import weakref

from neipalette_tf.core import memory


def test_release_collects_cycles_and_is_safe_to_repeat(monkeypatch):
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the collector frees
    gone = weakref.ref(a)
    del a, b
    gc.disable()
    try:
        memory.release()
        assert gone() is None
    finally:
        gc.enable()
    memory.release()  # the C library is looked up once, then reused (or skipped where it is not glibc)
    assert memory._LIBC is not None


def test_release_without_glibc_only_collects(monkeypatch):
    monkeypatch.setattr(memory, "_LIBC", False)  # what a non-glibc system (macOS, musl) ends up with
    collected = []
    monkeypatch.setattr(memory.gc, "collect", lambda: collected.append(1) or 0)
    memory.release()
    assert collected == [1]
