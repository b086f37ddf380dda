"""Fit the people model of colour compatibility and judge it: `python -m neipalette_tf.fit_harmony --ratings PATH --out DIR`.

    python -m neipalette_tf.fit_harmony --ratings ../shared/human-colour-ratings/themes.csv --out runs/people
        [--folds 5] [--alpha 10]

1. K-fold cross-validation by theme id over every theme of `--ratings`: the people model beside
   rule v1 and the constant predictor, by Spearman, MAE and pairwise ranking accuracy (theme
   pairs whose ratings differ by >= 0.5): one table, `cv.json` and `report.md`.
2. The model to ship, fitted on every theme but the held-out fold (`data.themes.HELDOUT_FOLD`),
   and its scores on that fold: `people_model.json` (with the data's attribution and licence,
   CC BY-NC-SA 2.5 CA). The package's copy, `neipalette_tf/colour/people_model.json`, is this
   file from the shared themes (a test checks it).

DIR is written complete or not at all (a hidden staging folder swapped in at the end).
"""

import argparse
import os
import sys

from neipalette_tf.core import cli, staging
from neipalette_tf.core.io_utils import write_json, write_text

NAMES = ("people_model.json", "cv.json", "report.md", "FAILED.txt")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.fit_harmony", description=__doc__.splitlines()[0])
    p.add_argument("--ratings", required=True, help="a themes.csv (theme_id, rating, c1..cK), or its folder")
    p.add_argument("--out", required=True, help="folder for people_model.json, cv.json and report.md")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds, by theme id (default 5)")
    p.add_argument("--alpha", type=float, default=None, help="ridge strength (default: the package's, 10)")
    return p.parse_args(argv)


def _table(metrics):
    rows = ["| method | themes | Spearman | MAE | pairwise ranking accuracy |", "|---|---:|---:|---:|---:|"]
    for name, m in metrics.items():
        rows.append(f"| {name} | {m['themes']} | {m['spearman']:.3f} | {m['mae']:.3f} | {m['pairwise_accuracy']:.3f} |")
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    from neipalette_tf.colour import people, people_fit  # noqa: I001 - after argparse: --help stays instant
    from neipalette_tf.core.cpu_info import cpu_summary
    from neipalette_tf.data.themes import FOLDS, HELDOUT_FOLD, fold_of, read_themes

    if args.folds < 2:
        raise cli.UserError(f"--folds must be >= 2, got {args.folds}")
    alpha = people_fit.RIDGE_ALPHA if args.alpha is None else args.alpha
    if not alpha > 0:
        raise cli.UserError(f"--alpha must be > 0, got {args.alpha}")
    themes = read_themes(args.ratings)
    if len(themes) < 10 * args.folds:
        raise cli.UserError(f"{themes.path}: {len(themes)} themes are too few for {args.folds}-fold cross-validation")

    cv = people_fit.cross_validate(themes, fold_of(themes.ids, args.folds), alpha)
    fitting, heldout = themes.fitting(), themes.heldout()
    meta = {"fitted_on": {"file": os.path.basename(themes.path), "themes": len(fitting),
                          "heldout_themes": len(heldout),
                          "heldout": f"theme ids in fold {HELDOUT_FOLD} of {FOLDS} (data.themes.fold_of)"},
            "ridge_alpha": alpha}
    model = people_fit.fit(fitting.lab, fitting.ratings, alpha, meta)
    held = {"people": people_fit.rank_metrics(model.rate_themes(heldout.lab), heldout.ratings)}
    model.meta["heldout_metrics"] = held["people"]
    cpu = cpu_summary()
    report = "\n".join([
        "# The people model of colour compatibility", "",
        f"Data: `{os.path.basename(themes.path)}`, {len(themes)} themes. Command: "
        f"`python -m neipalette_tf.fit_harmony --ratings {args.ratings} --out {args.out}"
        f" --folds {args.folds} --alpha {alpha:g}`. {cpu}.", "",
        f"## {args.folds}-fold cross-validation by theme id", "", _table(cv["metrics"]), "",
        "Rule v1 scores a theme by the share of its colour pairs it calls harmonious (its MAE after a linear fit "
        "of that share to the ratings on the training folds).", "",
        f"## The shipped model on the held-out fold ({len(heldout)} themes it was not fitted on)", "",
        _table(held), "",
        f"Source: {people.ATTRIBUTION}. Licence: {people.LICENCE}; `people_model.json` and every model trained "
        "on its labels carry it.", ""])

    def owned(folder):
        return staging.owned_by_names(folder, NAMES, ("cv.json", "FAILED.txt"))

    with staging.staged_folder(args.out, owned, "fit") as st:
        write_json(os.path.join(st.path, "people_model.json"), model.to_json())
        write_json(os.path.join(st.path, "cv.json"), {
            "folds": args.folds, "alpha": alpha, "metrics": cv["metrics"], "per_fold": cv["per_fold"],
            "heldout": held, "cpu": cpu})
        write_text(os.path.join(st.path, "report.md"), report)
    print(_table(cv["metrics"]))
    print(f"held-out fold ({len(heldout)} themes, not fitted on): Spearman {held['people']['spearman']:.3f}, "
          f"MAE {held['people']['mae']:.3f}, pairwise {held['people']['pairwise_accuracy']:.3f}")
    print(f"wrote {args.out}/people_model.json, cv.json, report.md  ({cpu})")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
