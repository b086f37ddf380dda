"""`neipalette_tf.ranking.wardrobe`: which files of a folder are the wardrobe, and how paths are printed.

The ranking of a wardrobe through a model is tests/ranking/test_recommend.py;
the `recommend` command on bad wardrobes is tests/test_robustness.py.
"""

import os

import pytest

from neipalette_tf.core import cli
from neipalette_tf.ranking.cache import CACHE_DIR
from neipalette_tf.ranking.wardrobe import IMAGE_EXTENSIONS, shown, wardrobe_images


def touch(path, data=b"x"):
    path.write_bytes(data)
    return str(path)


def test_images_directly_in_the_folder_sorted_by_name_and_nothing_else(tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    wanted = [touch(w / name) for name in ("b.PNG", "a.jpg", "c.JpEg", "d.webp", "e.heic", "f.TIFF")]
    for name in (".hidden.png", "notes.txt", "archive.png.zip", "noext", "photo.png~"):
        touch(w / name)
    (w / "folder.png").mkdir()  # a folder with an image's name is not a garment
    (w / "sub").mkdir()
    touch(w / "sub" / "deeper.png")  # only files directly in the folder
    (w / CACHE_DIR).mkdir()
    touch(w / CACHE_DIR / "x.png")
    assert wardrobe_images(w) == sorted(wanted)
    assert wardrobe_images(str(w)) == wardrobe_images(w)  # str or PathLike


def test_every_listed_extension_counts_whatever_its_case(tmp_path):
    assert len(set(IMAGE_EXTENSIONS)) == len(IMAGE_EXTENSIONS) and all(
        e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)
    for i, ext in enumerate(IMAGE_EXTENSIONS):
        touch(tmp_path / f"{i:02d}{ext.upper() if i % 2 else ext}")
    assert len(wardrobe_images(tmp_path)) == len(IMAGE_EXTENSIONS)


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="symbolic links: POSIX")
def test_links_to_images_count_and_broken_or_looping_links_are_listed_as_skipped(tmp_path):
    w = tmp_path / "w"
    w.mkdir()
    real = touch(tmp_path / "elsewhere.png")
    os.symlink(real, w / "linked.png")
    os.symlink(tmp_path / "gone.png", w / "broken.png")
    os.symlink(w / "loop-b.png", w / "loop-a.png")
    os.symlink(w / "loop-a.png", w / "loop-b.png")
    skipped = []
    assert wardrobe_images(w, skipped) == [str(w / "linked.png")]
    assert sorted(os.path.basename(p) for p, _ in skipped) == ["broken.png", "loop-a.png", "loop-b.png"]
    assert all(reason == f"{p}: a link that leads nowhere or in a loop" for p, reason in skipped)
    assert wardrobe_images(w) == [str(w / "linked.png")]  # without a list: left out silently


def test_a_missing_or_empty_folder_or_a_file_is_a_one_line_user_error(tmp_path):
    with pytest.raises(cli.UserError, match="wardrobe folder not found") as e:
        wardrobe_images(tmp_path / "none")
    assert str(e.value).startswith(str(tmp_path / "none"))
    with pytest.raises(cli.UserError, match="wardrobe folder not found"):
        wardrobe_images(touch(tmp_path / "a.png"))  # a file, not a folder
    empty = tmp_path / "empty"
    empty.mkdir()
    touch(empty / "readme.txt")
    with pytest.raises(cli.UserError) as e:
        wardrobe_images(empty)
    message = str(e.value)
    assert message.startswith(f"{empty}: no images (") and ".jpg" in message and "\n" not in message


def test_an_unlistable_folder_is_a_user_error(tmp_path, monkeypatch):
    import neipalette_tf.ranking.wardrobe as wardrobe_mod

    def refuse(path):
        raise PermissionError(13, "Permission denied", path)

    touch(tmp_path / "a.png")
    monkeypatch.setattr(wardrobe_mod.os, "scandir", refuse)  # as a folder without read permission (root can read all)
    with pytest.raises(cli.UserError) as e:
        wardrobe_images(tmp_path)
    assert str(e.value) == f"{tmp_path}: cannot list the wardrobe (Permission denied)"


def test_shown_escapes_bytes_that_are_not_utf8():
    assert shown("/w/café.png") == "/w/café.png"
    assert shown(b"/w/caf\xe9.png") == "/w/caf\\xe9.png"
    assert shown(os.fsdecode(b"/w/caf\xe9.png")) == "/w/caf\\xe9.png"  # the surrogate-escaped str form too
    shown("x").encode("utf-8")  # always printable as UTF-8


@pytest.mark.skipif(os.name != "posix", reason="non-UTF-8 file names: POSIX")
def test_a_non_utf8_name_is_listed_and_its_error_is_printable(tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"w\xff")
    try:
        os.mkdir(folder)
    except OSError:
        pytest.skip("this file system refuses non-UTF-8 names")
    with open(os.path.join(folder, b"caf\xe9.png"), "wb") as f:
        f.write(b"x")
    assert wardrobe_images(os.fsdecode(folder)) == [os.fsdecode(os.path.join(folder, b"caf\xe9.png"))]
    os.remove(os.path.join(folder, b"caf\xe9.png"))
    with pytest.raises(cli.UserError) as e:
        wardrobe_images(os.fsdecode(folder))
    assert "w\\xff: no images" in str(e.value)
    str(e.value).encode("utf-8")
