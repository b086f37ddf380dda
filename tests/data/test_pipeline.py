import numpy as np
import tensorflow as tf

from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.data.pipeline import (
    PairData,
    augment_images,
    light_images,
    light_params,
    pair_dataset_from_arrays,
)
from neipalette_tf.colour.space import oklab_to_oklch, srgb_to_oklab

AUG = {"flip": True, "crop_scale": [0.8, 1.0], "rotation_deg": 8.0}


def test_cached_and_streaming_give_the_same_batches(tiny_synth):
    m = read_manifest(tiny_synth).subset("val")
    cached = PairData(m, 32).dataset(8)
    streaming = PairData(m, 32, cache=False).dataset(8)
    for (xc, yc), (xs, ys) in zip(cached, streaming):
        assert xc["top"].shape == (8, 32, 32, 3) or xc["top"].shape[0] < 8
        assert xc["top"].dtype == tf.float32 and yc.dtype == tf.int32
        np.testing.assert_array_equal(xc["top"].numpy(), xs["top"].numpy())
        np.testing.assert_array_equal(yc.numpy(), ys.numpy())
    first = next(iter(cached))[0]["bottom"].numpy()
    assert first.min() >= 0 and first.max() <= 255 and first.max() > 1  # RGB 0..255, not 0..1


def test_pixels_match_load_image(tiny_synth):
    m = read_manifest(tiny_synth).subset("test")
    x, y = next(iter(PairData(m, 40).dataset(4)))
    np.testing.assert_array_equal(x["top"].numpy()[0], load_image(m.rows[0]["top"], 40).astype(np.float32))
    assert y.numpy().tolist() == m.labels[:4].tolist()


def test_training_dataset_shuffles_and_augments_deterministically():
    rng = np.random.default_rng(0)
    top = rng.integers(0, 255, (16, 24, 24, 3), dtype=np.uint8)
    bottom = rng.integers(0, 255, (16, 24, 24, 3), dtype=np.uint8)
    labels = np.arange(16) % 2

    def first_batch(seed):
        ds = pair_dataset_from_arrays(top, bottom, labels, 16, training=True, augment=AUG, seed=seed)
        x, y = next(iter(ds))
        return x["top"].numpy(), y.numpy()

    a, b, c = first_batch(1), first_batch(1), first_batch(2)
    spec = pair_dataset_from_arrays(top, bottom, labels, 16, training=True, augment=AUG).element_spec[0]
    assert spec["top"].shape.as_list() == [None, 24, 24, 3]  # the model's graph sees the image size
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert sorted(a[1].tolist()) == sorted(labels.tolist())


def test_augmentation_keeps_colour():
    # A flat-colour image stays exactly that colour under every warp: no
    # hue, saturation or brightness change, only geometry.
    image = np.broadcast_to(np.array([200.0, 40.0, 90.0], np.float32), (6, 32, 32, 3))
    out = augment_images(tf.constant(image), tf.constant([3, 4]), (0.7, 1.0), 15.0).numpy()
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_augmentation_is_identity_at_zero_strength():
    image = np.random.default_rng(1).uniform(0, 255, (2, 20, 20, 3)).astype(np.float32)
    out = augment_images(tf.constant(image), tf.constant([0, 1]), (1.0, 1.0), 0.0, flip=False).numpy()
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_a_pairs_augmentation_does_not_depend_on_its_batch():
    # Each pair draws its warp before batching, so splitting a global batch
    # between replicas (or workers) gives every pair the same augmentation.
    rng = np.random.default_rng(3)
    top = rng.integers(0, 255, (12, 24, 24, 3), dtype=np.uint8)
    bottom = rng.integers(0, 255, (12, 24, 24, 3), dtype=np.uint8)
    labels = np.arange(12) % 2

    def pairs(batch_size, augment=AUG):
        ds = pair_dataset_from_arrays(top, bottom, labels, batch_size, training=True, augment=augment, seed=5)
        xs = [x for x, _ in ds]
        return np.concatenate([x["top"].numpy() for x in xs]), np.concatenate([x["bottom"].numpy() for x in xs])

    whole, halves, quarters = pairs(12), pairs(6), pairs(3)
    for split in (halves, quarters):
        np.testing.assert_allclose(split[0], whole[0], atol=1e-4)
        np.testing.assert_allclose(split[1], whole[1], atol=1e-4)
    plain = pairs(12, augment=None)  # the same shuffle, no warp: the warp did change the pixels
    assert np.abs(whole[0] - plain[0]).mean() > 5



def test_light_at_full_exposure_without_shadow_is_identity():
    image = np.random.default_rng(2).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    params = light_params(tf.constant([1, 2]), exposure=(1.0, 1.0), shadow=0.0)
    np.testing.assert_allclose(light_images(tf.constant(image), params).numpy(), image, atol=0.05)


def test_light_darkens_in_linear_light_and_keeps_the_hue():
    # one fabric colour; half the photo in a hard shadow: the shadowed half is darker, the same hue
    image = np.broadcast_to(np.array([190.0, 60.0, 40.0], np.float32), (1, 32, 32, 3)).copy()
    params = tf.constant([[0.8, 0.4, 0.0, 0.0]])  # exposure 0.8, shadow at 40 %, edge x = 0 (right half)
    out = light_images(tf.constant(image), params).numpy()[0]
    lit, shade = oklab_to_oklch(srgb_to_oklab(out[16, 4])), oklab_to_oklch(srgb_to_oklab(out[16, 28]))
    base = oklab_to_oklch(srgb_to_oklab(image[0, 0, 0]))
    assert shade[0] < lit[0] < base[0]
    assert abs(lit[2] - base[2]) < 3 and abs(shade[2] - base[2]) < 3  # degrees of hue


def test_a_pairs_two_photos_share_one_exposure():
    rng = np.random.default_rng(4)
    flat = np.full((8, 24, 24, 3), 180, np.uint8)
    labels = np.arange(8) % 2
    augment = {"flip": False, "crop_scale": [1.0, 1.0], "rotation_deg": 0.0,
               "light": {"exposure": [0.3, 1.0], "shadow": 0.0, "shadow_light": [0.5, 0.5]}}
    ds = pair_dataset_from_arrays(flat, flat, labels, 8, training=True, augment=augment, seed=int(rng.integers(99)))
    x, _ = next(iter(ds))
    top, bottom = x["top"].numpy(), x["bottom"].numpy()
    np.testing.assert_allclose(top, bottom, atol=1e-3)  # one scene: the same light on both photos
    assert top[:, 0, 0, 0].std() > 5  # and the light differs between pairs
