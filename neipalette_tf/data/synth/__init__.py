"""The procedural synthetic data set of NeiPalette (the embedded default).

Every pair is a top photo and a bottom photo, each showing ONE garment lying
flat or hanging on a background (carpet, floor boards, tiles, bed sheets,
rugs, plain walls or blankets). The garment's main colour is sampled in
OKLCH so that the pair's label under the harmony rule
(`neipalette_tf.colour.harmony`) is the label planned for it, clear of every rule
boundary by a margin. See `docs/synthetic_data.md` for the full description.

Command line:

    python -m neipalette_tf.data.synth --out data/synth --pairs 6000 \\
        --seed 0 --image-size 96 [--label-noise 0.05] [--workers 2]

Output in the folder: `images/000123_top.jpg`, `images/000123_bottom.jpg`,
`pairs.csv` (paths, label, split, categories, main colours in OKLCH,
`label_noise_flipped`) and `dataset.json` (generator, version, parameters,
counts). The same arguments give byte-identical files whatever the number
of workers; a rerun with the same arguments reuses the existing data.

Pure NumPy + Pillow (no TensorFlow).

Modules, one job each: `colours` (colour helpers, main colours clear of the
rule's boundaries), `shapes` (garment geometry), `drawing` (drawing helpers,
noise), `backgrounds` (scenes), `prints` (prints, trims, details, hanger),
`hard` (hard scenes: small off-centre garments, coloured light, hard shadows, busy backgrounds),
`render` (one photo, one pair), `dataset` (planning, validation, reuse,
`generate`, worker processes, summary), `cli` and `__main__` (the command
line). This package exports the public API of all of them but the command line.
"""

from neipalette_tf.data.synth.backgrounds import (
    ASPECT_P,
    ASPECTS,
    BG_KINDS,
    busy_scene,
    sample_scene,
)
from neipalette_tf.data.synth.colours import (
    HARMONY_REASON_P,
    HARMONY_REASONS,
    L_RANGE,
    near_hue_boundary,
    near_neutral_boundary,
    sample_pair_colours,
    sample_people_pair_colours,
)
from neipalette_tf.data.synth.dataset import (
    CSV_COLUMNS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    HARMONY_SOURCES,
    LABELS,
    SPLITS,
    dataset_info,
    generate,
    split_counts,
)
from neipalette_tf.data.synth.hard import (
    COOL_K,
    HARD_CONDITIONS,
    SHADOW_DEPTH,
    SMALL_HEIGHT,
    TINT_C,
    WARM_K,
    sample_hard_scene,
)
from neipalette_tf.data.synth.prints import (
    BOTTOM_STYLE_P,
    BOTTOM_STYLES,
    MAX_PRINT_FRACTION,
    PRINT_P,
    TOP_STYLE_P,
    TOP_STYLES,
)
from neipalette_tf.data.synth.render import (
    GLOBAL_LIGHT_RANGE,
    JPEG_QUALITY,
    JPEG_SUBSAMPLING,
    WHITE_BALANCE_SHIFT,
    canvas_size,
    render_garment,
    render_pair,
)
from neipalette_tf.data.synth.shapes import (
    BOTTOM_CATEGORIES,
    TOP_CATEGORIES,
    TOP_CATEGORY_P,
)

__all__ = [
    # the data set (dataset.py); the command line is cli.main (`python -m neipalette_tf.data.synth`)
    "generate", "split_counts", "dataset_info", "HARMONY_SOURCES",
    "GENERATOR_NAME", "GENERATOR_VERSION", "CSV_COLUMNS", "SPLITS", "LABELS",
    # one pair, one photo (render.py)
    "render_pair", "render_garment", "canvas_size",
    "JPEG_QUALITY", "JPEG_SUBSAMPLING", "GLOBAL_LIGHT_RANGE", "WHITE_BALANCE_SHIFT",
    # main colours (colours.py)
    "sample_pair_colours", "sample_people_pair_colours", "near_neutral_boundary", "near_hue_boundary",
    "L_RANGE", "HARMONY_REASONS", "HARMONY_REASON_P",
    # scenes (backgrounds.py)
    "sample_scene", "BG_KINDS", "ASPECTS", "ASPECT_P", "busy_scene",
    # hard scenes (hard.py, `hard_scenes`)
    "sample_hard_scene", "HARD_CONDITIONS", "SMALL_HEIGHT", "WARM_K", "COOL_K", "TINT_C", "SHADOW_DEPTH",
    # garments (shapes.py) and what is printed on them (prints.py)
    "TOP_CATEGORIES", "TOP_CATEGORY_P", "BOTTOM_CATEGORIES",
    "MAX_PRINT_FRACTION", "PRINT_P", "TOP_STYLES", "TOP_STYLE_P", "BOTTOM_STYLES", "BOTTOM_STYLE_P",
]
