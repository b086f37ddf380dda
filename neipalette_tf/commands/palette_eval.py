"""Measure the palette reading: `python -m neipalette_tf.palette_eval --model MODEL [--data DIR]`.

The read palette of every garment of a synthetic split against the renderer's recorded one
(`neipalette_tf.evaluation.palette`): multi-colour garments' matched entries (ΔE_OK, |Δshare|)
and plain garments' dominant colour (ΔE_OK). Render a set with multi-colour garments first:

    python -m neipalette_tf.data.synth --out data/synth-multicolour --multicolour 0.5 --pairs 2000 --seed 1

Prints one table (or `--json`) with the CPU line; the figures in docs/palette.md come from it.
"""

import argparse
import json
import sys

from neipalette_tf.core import cli
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.data.manifest import read_manifest, resolve_manifest_path
from neipalette_tf.evaluation.palette import evaluate
from neipalette_tf.predictors import load_predictor


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.palette_eval",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="any siamese model: model.keras, an export folder or file")
    p.add_argument("--data", default="data/synth", help="synthetic data folder or pairs.csv (default data/synth)")
    p.add_argument("--split", default="test", help="split of --data (default test)")
    p.add_argument("--limit", type=int, help="at most this many pairs")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p.parse_args(argv)


def _line(name, s):
    if not s.get("n"):
        return f"  {name}: none"
    return f"  {name}: median {s['median']}, p90 {s['p90']}, mean {s['mean']} (n {s['n']})"


def main(argv=None):
    args = parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise cli.UserError(f"--limit must be at least 1, got {args.limit}")
    manifest = read_manifest(resolve_manifest_path(args.data))
    if manifest.has_split:
        manifest = manifest.subset(args.split)
    predictor = load_predictor(args.model)
    report = evaluate(predictor, manifest, args.limit, log=None if args.json else print)
    report.update(model=args.model, format=predictor.format, cpu=cpu_summary(as_dict=True),
                  command="python -m neipalette_tf.palette_eval " + " ".join(
                      argv if argv is not None else sys.argv[1:]))
    if args.json:
        print(json.dumps(report))
        return 0
    m, p = report["multicolour"], report["plain"]
    print(f"model: {args.model} ({predictor.format}); {cpu_summary()}")
    print(f"{report['pairs']} pairs, {report['garments']} garments ({args.data}, split {args.split}), "
          f"{report['seconds']} s")
    print(f"multi-colour garments: {m['garments']}")
    print(_line("matched entry ΔE_OK", m["entry_delta_e"]))
    print(_line("matched entry |Δshare|", m["entry_share_error"]))
    print(_line("share total variation per garment", m["share_total_variation"]))
    if m["colour_count_agrees"] is not None:
        print(f"  number of colours agrees: {m['colour_count_agrees']:.1%}")
    for kind, v in m["by_pattern"].items():
        print(f"  {kind}: ΔE_OK median {v['entry_delta_e'].get('median')}, "
              f"|Δshare| median {v['entry_share_error'].get('median')}")
    print(f"plain garments: {p['garments']}")
    print(_line("dominant colour ΔE_OK", p["dominant_delta_e"]))
    print(_line("attention-weighted mean ΔE_OK (the head's main colour)", p["mean_delta_e"]))
    for name, g in report["goals"].items():
        verdict = "n/a" if g["met"] is None else ("met" if g["met"] else "NOT met")
        print(f"goal {name} <= {g['bound']}: {g.get('value')} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
