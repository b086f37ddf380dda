"""Measure the explanations: `python -m neipalette_tf.explain_eval --model MODEL [--data DIR] [--real CSV]`.

Two figures, on the synthetic test split (`--data`, default `data/synth`,
whose `pairs.csv` records every garment's main colour in OKLCH) and on a
real manifest (`--real`, e.g. `../shared/real-pairs-dev/pairs.csv`):

1. **Read colour**: the OKLab distance (ΔE) between the colour `explain`
   shows for a garment (its palette's dominant colour) and the recorded one:
   median, 90th percentile and the share within 0.05; `mean colour`: the same
   for the model's main colour (the attention-weighted mean it scores). Real manifests record no main
   colours; there the read colour is compared with the display heuristic
   `neipalette_tf.colour.estimate` (a rough reference, not a measurement),
   and the rule's verdict on the two read colours is compared with the
   pair's label (real-pairs-dev's labels follow the rule with room to
   spare), which needs no recorded colour.
2. **Suggestions** on pairs labelled clashing: the share whose top
   suggestion, applied to the pixels (`recolour.recolour`), makes the full
   model say harmonious (p >= 0.5) *and* is harmonious under the rule. On
   synthetic pairs the rule sees the recorded colours, the recoloured
   garment's moved the way `recolour` moves its pixels (`recolour.shift_ab`);
   on real pairs, the suggested colour and the other garment's read colour.
   A pair without any suggestion counts as a miss. People-trained models,
   clashing pairs with a multi-colour garment: the share with a palette
   suggestion (`explain`'s `palette_suggestions`), its ΔE, people's outfit
   palette rating before and on the recoloured photo, and how often the
   model's p there is over the threshold.

Prints one table (and `--json`); the figures in docs/explain.md come from it.
"""

import argparse
import json
import os
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.data.manifest import read_manifest, resolve_manifest_path
from neipalette_tf.explanation import explain
from neipalette_tf.explanation.measure import WITHIN, evaluate


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.explain_eval", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="any siamese model (as in neipalette_tf.explain)")
    p.add_argument("--data", default="data/synth", help="synthetic data folder or pairs.csv (default data/synth)")
    p.add_argument("--split", default="test", help="split of --data (default test)")
    p.add_argument("--real", help="a real manifest, e.g. ../shared/real-pairs-dev/pairs.csv")
    p.add_argument("--limit", type=int, help="at most this many pairs per manifest")
    p.add_argument("--target", type=float, default=explain.TARGET_P, help="suggestions reach this p in the head")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p.parse_args(argv)


def _print(name, s):
    print(f"{name}: {s['pairs']} pairs ({s['manifest']}), {s['seconds']} s")
    for key in ("read_colour_vs_recorded", "mean_colour_vs_recorded", "read_colour_vs_heuristic_estimate",
                "mean_colour_vs_heuristic_estimate"):
        if key in s:
            c = s[key]
            print(f"  {key.replace('_', ' ')}: median ΔE {c['median_delta_e']}, p90 {c['p90_delta_e']}, "
                  f"within {WITHIN}: {c[f'share_within_{WITHIN}']:.1%} of {c['n']} garments")
    print(f"  rule on the read colours matches the label: {s['rule_on_read_colours_matches_label']:.1%}")
    f = s["suggestions"]
    print(f"  clashing pairs: {f['pairs']}; a suggestion (p >= {f['target_p']} on the recoloured photo): "
          f"{f['share_with_suggestion']:.1%}; top suggestion on pixels flips the model: {f['share_model_flips']:.1%}, "
          f"harmonious under the rule: {f['share_rule_harmonious']:.1%}, both: {f['share_flips_model_and_rule']:.1%}")
    if s.get("palette_suggestions", {}).get("pairs"):
        f = s["palette_suggestions"]
        print(f"  clashing pairs with a multi-colour garment: {f['pairs']}; a palette suggestion: "
              f"{f['share_with_suggestion']:.1%}" + (
                  f" (median ΔE {f['median_delta_e']}); people's outfit palette rating {f['median_rating_before']} "
                  f"-> {f['median_rating_on_photo']} on the recoloured photo (medians); the model's p over the "
                  f"threshold there: {f['share_model_over']:.1%} of them" if f["with_suggestion"] else ""))
    if "people_suggestions" in s:
        f = s["people_suggestions"]
        print(f"  pairs the model calls clashing: {f['pairs']}; a suggestion: {f['share_with_suggestion']:.1%}; "
              f"the top suggestion on the photo lifts the model over 0.5: {f['share_model_over']:.1%}, people's "
              f"rating over {f['rating_threshold']:g}: {f['share_people_over']:.1%}, both: {f['share_both']:.1%}")


def main(argv=None):
    args = parse_args(argv)
    manifests = {"synthetic": read_manifest(resolve_manifest_path(args.data))}
    if manifests["synthetic"].has_split:
        manifests["synthetic"] = manifests["synthetic"].subset(args.split)
    if args.real:
        manifests["real"] = read_manifest(resolve_manifest_path(args.real))
    if args.limit is not None and args.limit < 1:
        raise cli.UserError(f"--limit must be at least 1, got {args.limit}")
    backend = explain.load_backend(args.model)
    report = {"model": args.model, "format": backend.format, "cpu": cpu_summary(as_dict=True), "cpus": os.cpu_count(),
              "command": "python -m neipalette_tf.explain_eval " + " ".join(argv if argv is not None else sys.argv[1:])}
    for name, manifest in manifests.items():
        report[name] = evaluate(backend, manifest, args.limit, args.target, log=None if args.json else print)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model: {args.model} ({backend.format}); {cpu_summary()}")
    for name in manifests:
        _print(name, report[name])
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
