"""The procedural synthetic data set of NeiPalette (the embedded default).

Every pair is a top photo and a bottom photo, each showing ONE garment lying
flat or hanging on a background (carpet, floor boards, tiles, bed sheets,
rugs, plain walls or blankets). The garment's main colour is sampled in
OKLCH so that the pair's label under the harmony rule
(`neipalette_tf.harmony`) is the label planned for it, clear of every rule
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
"""

from neipalette_tf.data.synth.dataset import (  # the whole renderer, until it is carved into modules
    ASPECTS,
    ASPECT_P,
    BG_KINDS,
    BOTTOM_CATEGORIES,
    BOTTOM_STYLES,
    BOTTOM_STYLE_P,
    CSV_COLUMNS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    GLOBAL_LIGHT_RANGE,
    HARMONY_REASONS,
    HARMONY_REASON_P,
    JPEG_QUALITY,
    JPEG_SUBSAMPLING,
    LABELS,
    L_RANGE,
    MAX_PRINT_FRACTION,
    PRINT_P,
    SPLITS,
    TOP_CATEGORIES,
    TOP_CATEGORY_P,
    TOP_STYLES,
    TOP_STYLE_P,
    WHITE_BALANCE_SHIFT,
    canvas_size,
    generate,
    main,
    near_hue_boundary,
    near_neutral_boundary,
    render_garment,
    render_pair,
    sample_pair_colours,
    sample_scene,
    split_counts,
)

__all__ = [
    "generate",
    "split_counts",
    "main",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "CSV_COLUMNS",
    "SPLITS",
    "LABELS",
    "render_pair",
    "render_garment",
    "canvas_size",
    "JPEG_QUALITY",
    "JPEG_SUBSAMPLING",
    "GLOBAL_LIGHT_RANGE",
    "WHITE_BALANCE_SHIFT",
    "sample_pair_colours",
    "near_neutral_boundary",
    "near_hue_boundary",
    "L_RANGE",
    "HARMONY_REASONS",
    "HARMONY_REASON_P",
    "sample_scene",
    "BG_KINDS",
    "ASPECTS",
    "ASPECT_P",
    "TOP_CATEGORIES",
    "TOP_CATEGORY_P",
    "BOTTOM_CATEGORIES",
    "MAX_PRINT_FRACTION",
    "PRINT_P",
    "TOP_STYLES",
    "TOP_STYLE_P",
    "BOTTOM_STYLES",
    "BOTTOM_STYLE_P",
]
