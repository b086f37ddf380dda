"""The project's vocabulary: every name and constant more than one module must agree on, in one place.

KerasHub keeps its file names and constants in one home (`utils/preset_utils.py`); this is ours.
A module that needs one of these imports it from here; it never writes its own copy (a duplicate
is a bug waiting for the day one of them changes). TensorFlow-free and import-free.

| name                  | what                                                                 |
|-----------------------|----------------------------------------------------------------------|
| `SPLITS`, `SPLIT_FRACTIONS` | the splits of a manifest and the default share of each        |
| `LABEL_NAMES`, `POSITIVE_LABEL` | class names by label id; harmonious is the positive class  |
| `THRESHOLD`           | p(harmonious) >= THRESHOLD is called harmonious                      |
| `HARMONY_SOURCES`     | the label sources: people's ratings or rule v1                       |
| `COLOUR_COLUMNS`      | the manifest / predictions.csv columns of the garments' main colours |
| `BACKGROUND_DELTA`    | OKLab distance from the border colour that counts as garment         |
| `SYNTH_DEFAULTS`      | the default synthetic data set (`synth`, `train`'s first run)        |
| `CLASSIC_FORMAT`      | the `format` of a classic baseline's `model.*.json`                  |
| `CARD_NAME`, `PARITY_NAME`, `BENCH_OUTPUT_NAMES`, `ARM64_OUTPUT_NAME` | files of an export folder |

The export formats and their file names are a registry of their own: `core/formats.py`.
"""

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test
SPLIT_CHOICES = (*SPLITS, "all")  # a command's --split: one split, or every row

LABEL_NAMES = ("clashing", "harmonious")  # index = class id: LABEL_NAMES[0] == "clashing"
POSITIVE_LABEL = 1  # harmonious
THRESHOLD = 0.5  # decision: harmonious when p(harmonious) >= THRESHOLD

# Where labels come from: "people" (the people model fitted on human ratings, CC BY-NC-SA: a non-commercial
# model; neipalette_tf.colour.people) or "rule-v1" (the textbook rule, permissive; neipalette_tf.colour.harmony).
HARMONY_SOURCES = ("people", "rule-v1")

# OKLCH of each garment's main colour (L 0..1, C, h in degrees) as manifest and predictions.csv columns.
COLOUR_COLUMNS = ("top_L", "top_C", "top_h", "bottom_L", "bottom_C", "bottom_h")

BACKGROUND_DELTA = 0.06  # OKLab distance from the border colour that counts as garment (~ clearly visible)

# The default synthetic data set: `python -m neipalette_tf.data.synth` with no flags, and what `train`
# renders on first use (config `data.synth` holds the first four).
SYNTH_DEFAULTS = {"pairs": 6000, "seed": 0, "image_size": 96, "label_noise": 0.0, "hue_margin": 5.0,
                  "chroma_margin": 0.012}

CLASSIC_FORMAT = "neipalette-classic"  # `format` of model.palette.json / model.probe.json

# Files of an export folder besides the models (`core.formats` names those).
CARD_NAME = "model_card.json"
PARITY_NAME = "parity.json"
BENCH_OUTPUT_NAMES = ("bench.json", "bench.md")  # what `export-bench` writes (the exporter clears them)
ARM64_OUTPUT_NAME = "arm64.json"  # what `export-arm64` writes

# What `cv` cross-validates: a CNN from scratch, one fine-tuned from --init-from, the k-means palette
# baseline and a logistic probe on frozen embeddings (neipalette_tf.evaluation.cv).
CV_APPROACHES = ("scratch", "init-from", "palette", "probe")
