"""The data set: planning, validation, rendering in worker processes, pairs.csv and dataset.json (the folder checks: `folder`; the columns: `table`)."""

import csv
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from neipalette_tf.colour.harmony import RULE_VERSION
from neipalette_tf.core.staging import exchange
from neipalette_tf.core.vocabulary import LABEL_NAMES as LABELS  # index = class id
from neipalette_tf.core.vocabulary import HARMONY_SOURCES, SPLIT_FRACTIONS, SPLITS, SYNTH_DEFAULTS
from neipalette_tf.data.synth.backgrounds import ASPECTS
from neipalette_tf.data.synth.colours import L_RANGE
from neipalette_tf.data.synth.folder import (  # noqa: F401 - GENERATOR_* re-exported
    GENERATOR_NAME,
    GENERATOR_VERSION,
    check_replaceable,
    check_writable_parent,
    read_json,
    remove_stale,
    reusable,
)
from neipalette_tf.data.synth.hard import CONDITIONS as HARD_CONDITIONS
from neipalette_tf.data.synth.hard import scene_info_text, scene_text
from neipalette_tf.data.synth.prints import MAX_PRINT_FRACTION
from neipalette_tf.data.synth.table import (  # noqa: F401 - re-exported
    CSV_COLUMNS,
    HARD_SCENE_COLUMNS,
    PALETTE_COLUMNS,
    PEOPLE_COLUMNS,
    format_palette,
    parse_palette,
)
from neipalette_tf.data.synth.render import (
    GLOBAL_LIGHT_RANGE,
    JPEG_QUALITY,
    canvas_size,
    render_pair,
    supersampling,
)

try:
    from tqdm import tqdm
except ImportError:  # pragma: no cover - tqdm is a dependency
    tqdm = None



def _render_task(args):
    """Render pair `index` and write its two JPEGs (in a worker); returns its pairs.csv facts."""
    seed, index, image_size, target, hue_margin, chroma_margin, image_dir, width, harmony, multicolour, hard = args
    r = render_pair(seed, index, image_size, target, hue_margin, chroma_margin, harmony=harmony,
                    multicolour=multicolour, hard_scenes=hard)
    names = {}
    for part in ("top", "bottom"):
        name = f"{index:0{width}d}_{part}.jpg"
        with open(os.path.join(image_dir, name), "wb") as f:
            f.write(r[part]["jpeg"])
        names[part] = "images/" + name
    return {
        "top": names["top"],
        "bottom": names["bottom"],
        "top_category": r["top_category"],
        "bottom_category": r["bottom_category"],
        "top_lch": r["top_lch"],
        "bottom_lch": r["bottom_lch"],
        "reason": r["reason"],
        "rating": r["rating"],
        "info": (r["top"]["info"], r["bottom"]["info"]),
        "palettes": (r["top_palette"], r["bottom_palette"]),
    }


def split_counts(pairs, split_fractions=SPLIT_FRACTIONS):
    """Pairs per split; val and test are even (2 * round(f * N / 2)), train the rest."""
    val = 2 * int(math.floor(split_fractions[1] * pairs / 2 + 0.5))
    test = 2 * int(math.floor(split_fractions[2] * pairs / 2 + 0.5))
    return {"train": pairs - val - test, "val": val, "test": test}


def validate(pairs, seed, image_size, label_noise, split_fractions, workers, hue_margin, chroma_margin,
             harmony="people"):
    """Raise ValueError (one line) for any argument `generate` does not accept."""
    if harmony not in HARMONY_SOURCES:
        raise ValueError(f"harmony must be one of {', '.join(HARMONY_SOURCES)}, got {harmony!r}")
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(pairs) or pairs < 20 or pairs % 2:
        raise ValueError(f"pairs must be an even integer >= 20, got {pairs!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not is_int(image_size) or not 32 <= image_size <= 1024:
        raise ValueError(f"image size must be an integer in 32..1024 pixels, got {image_size!r}")
    if not isinstance(label_noise, (int, float)) or not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label noise must be in [0, 0.5), got {label_noise!r}")
    fr = tuple(split_fractions)
    if len(fr) != 3 or any(not isinstance(f, (int, float)) or f <= 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise ValueError(f"split fractions must be 3 positive numbers that sum to 1, got {split_fractions!r}")
    counts = split_counts(pairs, fr)
    if min(counts.values()) < 2:
        raise ValueError(f"{pairs} pairs leave a split with fewer than 2 pairs ({counts})")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if not 0 <= hue_margin <= 10 or not 0 <= chroma_margin <= 0.02:
        raise ValueError(f"margins must be in 0..10 degrees and 0..0.02 chroma, got {hue_margin}, {chroma_margin}")


def _params(pairs, seed, image_size, label_noise, split_fractions, hue_margin, chroma_margin, harmony, multicolour=0.0,
            hard_scenes=0.0):
    from neipalette_tf.colour import people

    return {
        "harmony": harmony,
        # the labels' people model (its file's hash): a refit re-renders the labels
        **({"people_model": people.identity()} if harmony == "people" else {}),
        "pairs": int(pairs),
        "seed": int(seed),
        "image_size": int(image_size),
        "label_noise": float(label_noise),
        "split_fractions": [float(f) for f in split_fractions],
        "hue_margin_deg": float(hue_margin),
        "chroma_margin": float(chroma_margin),
        # only when asked for: a data set without them keeps the parameters (and files) it had
        **({"multicolour": float(multicolour)} if multicolour > 0 else {}),
        **({"hard_scenes": float(hard_scenes)} if hard_scenes > 0 else {}),
    }


def _plan(pairs, seed, counts):
    """Split and target label of every pair: exact 50/50 in every split."""
    splits, targets = [], []
    for split in SPLITS:
        n = counts[split]
        splits += [split] * n
        targets += [1] * (n // 2) + [0] * (n // 2)
    order = np.random.default_rng([int(seed), 0x5EED5EED, 0x51D7]).permutation(pairs)
    return np.array(splits, dtype=object)[order], np.array(targets, dtype=np.int64)[order]


def _choose_flips(seed, splits, targets, label_noise):
    """Exactly round(p * n / 2) flipped labels per class in each split of n pairs."""
    rng = np.random.default_rng([int(seed), 0x5EED5EED, 0xF11B])
    flipped = np.zeros(len(targets), dtype=np.int64)
    for split in SPLITS:
        n = int(np.count_nonzero(splits == split))
        k = int(math.floor(label_noise * n / 2 + 0.5))
        for cls in (1, 0):
            idx = np.flatnonzero((splits == split) & (targets == cls))
            if k:
                flipped[rng.choice(idx, size=k, replace=False)] = 1
    return flipped


def _counter(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def _fraction_bin(f):
    if f <= 0:
        return "0"
    for edge in (0.05, 0.10, 0.15, 0.20, 0.25, 0.30):
        if f <= edge + 1e-9:
            return f"<={int(round(edge * 100))}%"
    return ">30%"


def _summary(params, counts, splits, labels, flipped, results, image_size):
    infos = [i for r in results for i in r["info"]]
    per_split = {}
    for split in SPLITS:
        sel = splits == split
        per_split[split] = {
            "pairs": int(np.count_nonzero(sel)),
            "harmonious": int(np.count_nonzero(sel & (labels == 1))),
            "clashing": int(np.count_nonzero(sel & (labels == 0))),
            "label_noise_flipped": int(np.count_nonzero(sel & (flipped == 1))),
        }
    return {
        "generator": GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "rule_version": RULE_VERSION,
        "parameters": params,
        "counts": per_split,
        "total": {
            "pairs": int(len(labels)),
            "images": 2 * int(len(labels)),
            "harmonious": int(np.count_nonzero(labels == 1)),
            "clashing": int(np.count_nonzero(labels == 0)),
        },
        "label_noise_flipped": int(flipped.sum()),
        "images": {
            "format": "JPEG",
            "jpeg_quality": list(JPEG_QUALITY),
            "chroma_subsampling": "4:2:0",
            "long_side": int(image_size),
            "canvas_sizes": {a: list(canvas_size(a, image_size)) for a in ASPECTS},
            "supersampling": supersampling(image_size),
        },
        "rendering": {
            "main_colour_lightness": list(L_RANGE),
            "max_print_fraction": MAX_PRINT_FRACTION,
            "global_light_range_on_garment": list(GLOBAL_LIGHT_RANGE),
        },
        "stats": {
            "harmony_reasons": _counter(r["reason"] for r in results),
            "top_categories": _counter(r["top_category"] for r in results),
            "bottom_categories": _counter(r["bottom_category"] for r in results),
            "aspects": _counter(i["aspect"] for i in infos),
            "backgrounds": _counter(i["background"] for i in infos),
            "hanging": int(sum(i["hanging"] for i in infos)),
            "print_styles": _counter(i["print_style"] for i in infos),
            **({"patterns": _counter(i["pattern"] for i in infos)} if "multicolour" in params else {}),
            **({"hard_scenes": _hard_stats(infos)} if "hard_scenes" in params else {}),
            "print_fraction": _counter(_fraction_bin(i["print_fraction"]) for i in infos),
        },
    }


def _hard_stats(infos):
    """Photos per hard condition (a photo with several counts in each), and photos with none."""
    applied = [i["hard_scene"]["conditions"] for i in infos if "hard_scene" in i]
    return {"photos": len(applied), "none": len(infos) - len(applied),
            **{c: sum(c in a for a in applied) for c in HARD_CONDITIONS}}


def check_share(name, value):
    """Raise ValueError (one line) unless `value` is a number in 0..1."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"{name} must be a share in 0..1, got {value!r}")


def dataset_info(path):
    """The dataset.json of a data set this generator wrote at `path`, or None."""
    ds = read_json(Path(path) / "dataset.json")
    return ds if isinstance(ds, dict) and ds.get("generator") == GENERATOR_NAME and "version" in ds else None



def generate(out_dir, pairs=SYNTH_DEFAULTS["pairs"], seed=SYNTH_DEFAULTS["seed"],
             image_size=SYNTH_DEFAULTS["image_size"], label_noise=SYNTH_DEFAULTS["label_noise"],
             split_fractions=SPLIT_FRACTIONS, workers=None, progress=True,
             hue_margin=SYNTH_DEFAULTS["hue_margin"], chroma_margin=SYNTH_DEFAULTS["chroma_margin"],
             harmony="people", multicolour=0.0, hard_scenes=0.0):
    """Render the synthetic data set into out_dir; returns the path of pairs.csv.

    A folder that already holds a complete data set made with the same
    parameters is reused as it is. Otherwise the data set is rendered into a
    temporary sibling folder and renamed into place when complete, so an
    interrupted run never leaves a `dataset.json` behind. The output does
    not depend on `workers`.

    `harmony` is the label source: "people" (labels from the people model of colour compatibility,
    `neipalette_tf.colour.people`, CC BY-NC-SA: pairs.csv gains a `rating` column) or "rule-v1".
    `multicolour` (0..1): the share of garments drawn multi-colour (stripes, checks, colour-blocking,
    florals, small prints; `render.render_pair`); pairs.csv gains `PALETTE_COLUMNS`.
    `hard_scenes` (0..1): the share of photos drawn as hard scenes (small and off-centre garments,
    coloured light, hard shadows, busy backgrounds; `hard`); pairs.csv gains `HARD_SCENE_COLUMNS`.
    """
    if not isinstance(multicolour, (int, float)) or not 0.0 <= multicolour <= 1.0:
        raise ValueError(f"multicolour must be a share in 0..1, got {multicolour!r}")
    check_share("hard_scenes", hard_scenes)
    validate(pairs, seed, image_size, label_noise, split_fractions, workers, hue_margin, chroma_margin, harmony)
    params = _params(pairs, seed, image_size, label_noise, split_fractions, hue_margin, chroma_margin, harmony,
                     multicolour, hard_scenes)
    out = Path(out_dir)
    if reusable(out, params):
        print(f"synth: reusing {out} ({pairs} pairs, same parameters, all files present)")
        return out / "pairs.csv"
    check_replaceable(out)
    check_writable_parent(out)
    workers = int(workers or os.cpu_count() or 1)
    counts = split_counts(pairs, tuple(split_fractions))
    splits, targets = _plan(pairs, seed, counts)
    flipped = _choose_flips(seed, splits, targets, label_noise)
    labels = np.where(flipped == 1, 1 - targets, targets)

    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(parent, out.name)
    tmp = parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    width = max(6, len(str(pairs - 1)))
    started = time.perf_counter()
    try:
        (tmp / "images").mkdir(parents=True)
        tasks = [(seed, i, image_size, int(targets[i]), hue_margin, chroma_margin, str(tmp / "images"), width,
                  harmony, multicolour, float(hard_scenes)) for i in range(pairs)]
        results = []
        bar = _progress(pairs, progress)
        try:
            if workers == 1:
                for r in map(_render_task, tasks):
                    results.append(r)
                    bar.update(1)
            else:
                chunk = max(1, min(64, pairs // (workers * 16)))
                with _mp_context().Pool(workers) as pool:
                    for r in pool.imap(_render_task, tasks, chunksize=chunk):
                        results.append(r)
                        bar.update(1)
        finally:
            bar.close()
        with open(tmp / "pairs.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            people = harmony == "people"
            multi = multicolour > 0
            hard = hard_scenes > 0
            writer.writerow(CSV_COLUMNS + (PEOPLE_COLUMNS if people else ()) + (PALETTE_COLUMNS if multi else ())
                            + (HARD_SCENE_COLUMNS if hard else ()))
            for i, r in enumerate(results):
                writer.writerow([
                    r["top"], r["bottom"], LABELS[labels[i]], splits[i],
                    r["top_category"], *(f"{v:.4f}" for v in r["top_lch"]),
                    r["bottom_category"], *(f"{v:.4f}" for v in r["bottom_lch"]),
                    int(flipped[i]),
                ] + ([f"{r['rating']:.4f}"] if people else [])
                  + ([r["info"][0]["pattern"], format_palette(r["palettes"][0]),
                      r["info"][1]["pattern"], format_palette(r["palettes"][1])] if multi else [])
                  + ([f(i) for i in r["info"] for f in (scene_text, scene_info_text)] if hard else []))
        summary = _summary(params, counts, splits, labels, flipped, results, image_size)
        with open(tmp / "dataset.json", "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, sort_keys=False)
            f.write("\n")
        check_replaceable(out)  # again: the folder may have changed while rendering
        if out.exists():
            if not os.listdir(out):
                os.rmdir(out)
                os.rename(tmp, out)
            else:
                exchange(tmp, out)  # atomic where the kernel can (renameat2), else two renames
                shutil.rmtree(tmp, ignore_errors=True)  # now the old data set, proven ours above
        else:
            os.rename(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{e.filename or tmp}: cannot write the data set ({e.strerror})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    elapsed = time.perf_counter() - started
    print(f"synth: rendered {pairs} pairs ({2 * pairs} images, long side {image_size} px) in "
          f"{elapsed:.1f} s with {workers} worker(s) -> {out}")
    return out / "pairs.csv"


def _mp_context():
    """fork (fast) unless the caller has loaded a library that runs its own
    threads (forking those is unsafe): then spawn. The output is the same."""
    heavy = any(name in sys.modules for name in ("tensorflow", "torch", "jax"))
    if "fork" in multiprocessing.get_all_start_methods() and not heavy:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, enabled):
    if not enabled or tqdm is None:
        return _NoBar()
    return tqdm(total=total, desc="synth", unit="pair", smoothing=0.1)
