"""Why a top and a bottom clash, and which colour would fix it.

    python -m neipalette_tf.explain --model MODEL TOP BOTTOM [--out DIR] [--json]

MODEL is any siamese model, in any format (`model.keras`, `saved_model/`,
`model.onnx`, `model*.tflite` including int8; the exports run in the
TensorFlow-free runtime). For each garment it reports:

- its **colour**, as hex, OKLCH and a plain name (`neipalette_tf.colour.names`):
  the dominant colour of its **palette** (up to three colours with their
  shares, `neipalette_tf.colour.palette`, also listed), or where a model has no
  palette the main colour its head reads (`ColourAttentionPooling`: the last
  three values of the garment embedding, the attention-weighted mean; always
  in the JSON as `mean`);
- its **attention map** over the photo (the exports' `attention` graph);
- the **harmony rule's reading** of the two read colours in one sentence
  (`neipalette_tf.colour.harmony`, rule v1) and, for people-trained models,
  people's (both on the colours shown);
- for a pair the model calls clashing (p < threshold): the **nearest
  colours** (OKLab distance from the garment's read colour, lightness kept)
  for the top and for the bottom that the head scores p >= `--target`
  (0.8), found by swapping candidate colours into the embedding (one head
  pass for all candidates of both garments: `fixes`); these and the
  head's strongest few colours are then applied to the photo (the
  garment's attention region shifted in OKLCH hue / chroma, lightness and
  texture kept) and re-scored by the full model. The **suggestions** are
  the three nearest that reach the target on the recoloured photo (those
  the rule also accepts first), each with its preview: every suggestion is
  checked on pixels, not only in the head (whose backbone features still
  see the old colour);
- for a **multi-colour garment** (people-trained models; its palette's
  second colour covers >= 20 %): **palette suggestions**, each recolouring
  one colour of its palette on the photo (`make the second colour of the
  top ... instead`), ranked by people's rating of the outfit palette read
  again from the recoloured photo (`palette_suggestions` in the JSON;
  `neipalette_tf/explanation/palette_fixes.py`).

`--out DIR` writes `DIR/explain.png` (both photos with the attention
overlay, swatches, verdict and the three suggestions with their previews
and p) and `DIR/explain.json`; `--json` prints the JSON.

Python: `load_backend(path)` then `explain_pair(backend, top, bottom)`
(images are paths, bytes or `load_image` arrays) returns the JSON-ready
dict; `explain_images` takes preprocessed arrays.
"""

import argparse
import json
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.explanation.explain import (
    ROLES,
    TARGET_P,
    THRESHOLD,
    explain_pair,
    load_backend,
    public,
)
from neipalette_tf.explanation.figure import save_figure
from neipalette_tf.predictors.builtin import MODEL_HELP, resolve_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.explain", description=__doc__.splitlines()[0])
    p.add_argument("--model",
                   help="model.keras, a SavedModel folder, model.onnx, model*.tflite or an export folder " + MODEL_HELP)
    p.add_argument("top", help="photo of the top")
    p.add_argument("bottom", help="photo of the bottom")
    p.add_argument("--out", help="write explain.png and explain.json into this folder")
    p.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="harmonious when p >= this (default 0.5)")
    p.add_argument("--target", type=float, default=TARGET_P, help="suggestions reach this p (default 0.8)")
    p.add_argument("--suggest", action="store_true", help="suggest colours even for a harmonious pair")
    return p.parse_args(argv)


def _print_text(result, out_png):
    m = result["model"]
    print(f"model: {m['path']} ({m['format']}, {m['image_size']} px)")
    for role in ROLES:
        c = result["colours"][role]
        L, C, h = c["oklch"]
        print(f"{role:6s}: {c['name']:12s} {c['hex']}  oklch({L:.3f} {C:.3f} {h:.1f}°)")
        if c.get("palette") and len(c["palette"]) > 1:
            print("        palette: " + ", ".join(f"{e['hex']} {e['share']:.0%}" for e in c["palette"]))
    print(f"verdict: p(harmonious) = {result['p_harmonious']:.4f} -> {result['label']}")
    if "people" in result:
        print(f"people: {result['people']['reading']} (the model's rating: {result['rating']:.2f})")
        print(f"colour theory (rule {result['rule']['version']}): {result['rule']['reading']}")
    else:
        print(f"rule {result['rule']['version']}: {result['rule']['reading']}")
    if not result["attention_available"]:
        print("attention: this export has no attention graph (export the model again to get the maps)")
    for role, items in result["fixes"].items():
        if not items:
            print(f"{role}: no colour at its lightness reaches p >= {TARGET_P} in the head alone "
                  "(its strongest colours were checked on the photo)")
    for i, s in enumerate(result["suggestions"], 1):
        print(f"suggestion {i}: {s['text']} (ΔE {s['delta_e']:.3f}): p {s['p_head']:.3f} in the head, "
              f"{s['p_pixels']:.3f} on the recoloured photo; "
              + (f"people: {s['rating_pixels']:.2f} / 5 on the photo; " if s.get("rating_pixels") is not None else "")
              + f"rule: {'harmonious' if s['rule_harmonious'] else 'clashing'}")
    if "palette_suggestions" in result:  # a multi-colour garment (people-trained models)
        found = result["palette_suggestions"]
        print(f"outfit palette: people would rate it {result['palette_rating']:.2f} / 5" + (
            "" if found else "; no nearby colour for one of its colours lifts that over the line"))
        for i, s in enumerate(found, 1):
            print(f"palette suggestion {i}: {s['text']} (ΔE {s['delta_e']:.3f}): people {s['rating_pixels']:.2f} / 5 "
                  f"on the recoloured photo's palette; the model's p {s['p_pixels']:.3f}")
    if out_png:
        print(f"figure: {out_png}")


def main(argv=None):
    args = parse_args(argv)
    args.model = resolve_model(args.model)  # no --model: the built-in model
    for name, value in (("--threshold", args.threshold), ("--target", args.target)):
        if not 0.0 < value < 1.0:
            raise cli.UserError(f"{name} must be between 0 and 1, got {value}")
    for path in (args.top, args.bottom):  # fail fast, before loading a model
        load_image(path, 8)
    backend = load_backend(args.model)
    top, bottom = (load_image(p, backend.image_size) for p in (args.top, args.bottom))
    result = explain_pair(backend, top, bottom, threshold=args.threshold, target=args.target,
                          always_suggest=args.suggest)
    for role, source in zip(ROLES, (args.top, args.bottom)):
        result["colours"][role]["file"] = source
    out_png = None
    if args.out:
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise cli.UserError(f"--out {args.out}: exists and is not a folder")
        os.makedirs(args.out, exist_ok=True)
        out_png = os.path.join(args.out, "explain.png")
        save_figure(result, top, bottom, out_png)
        write_json(os.path.join(args.out, "explain.json"), public(result))
    if args.json:
        print(json.dumps(public(result)))
    else:
        _print_text(result, out_png)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
