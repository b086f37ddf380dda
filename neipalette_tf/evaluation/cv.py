"""Cross-validation of NeiPalette approaches on one manifest: the library behind `python -m neipalette_tf.cv`.

The command, its flags and what it writes are described in `neipalette_tf/commands/cv.py`;
this module holds the work, callable from Python.
"""

import copy
import csv
import io
import math
import os
import time

import keras
import numpy as np
from scipy import stats
from sklearn.model_selection import StratifiedGroupKFold

from neipalette_tf.core import cli
from neipalette_tf.core.io_utils import write_json, write_text
from neipalette_tf.core.vocabulary import CV_APPROACHES
from neipalette_tf.data.manifest import Manifest
from neipalette_tf.data.pipeline import PairData
from neipalette_tf.evaluation.metrics import classification_metrics
from neipalette_tf.evaluation.report import markdown_table, write_evaluation
from neipalette_tf.models.classic.probe import file_sha256
from neipalette_tf.predictors.keras import predict_data, prediction_records
from neipalette_tf.training.classic import build_classic
from neipalette_tf.training.loop import fit
from neipalette_tf.training.prepare import build_model

APPROACHES = CV_APPROACHES
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
METRIC_TITLES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1-score",
                 "roc_auc": "ROC-AUC"}
CI_METHOD = ("95% Student-t interval over folds x repeats (mean +- t(0.975, n-1) * sd / sqrt(n), "
             "clipped to [0, 1]); pooled out-of-fold ROC-AUC: percentile bootstrap over pairs, 1000 resamples")


# --- folds -------------------------------------------------------------------------------------

def image_groups(manifest):
    """A group id per pair: pairs linked through a shared garment image share a group.

    Images are identified by their content (SHA-256), so a copy under
    another name links too.
    """

    digests = {}
    for row in manifest.rows:
        for key in ("top", "bottom"):
            if row[key] not in digests:
                digests[row[key]] = file_sha256(row[key])
    return connected_groups([(digests[r["top"]], digests[r["bottom"]]) for r in manifest.rows])


def connected_groups(pairs):
    """Group ids `[N]` (numbered in order of first appearance) of pairs linked by shared items.

    >>> connected_groups([("a", "b"), ("c", "d"), ("c", "b"), ("e", "f")]).tolist()
    [0, 0, 0, 1]
    """
    parent = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    ids = {}
    return np.array([ids.setdefault(root(a), len(ids)) for a, _ in pairs], dtype=np.int64)


def _both_classes(labels, idx):
    return np.unique(labels[idx]).size == 2


def cv_splits(labels, groups, folds=5, repeats=1, seed=0, val_fraction=0.2):
    """Group-aware stratified folds with a validation part held out of each training part.

    Returns a list of dicts `{repeat, fold, train, val, test}` (index
    arrays). Raises `cli.UserError` when the data cannot be split so.
    """

    labels, groups = np.asarray(labels), np.asarray(groups)
    n_groups = np.unique(groups).size
    if folds < 2 or folds > n_groups:
        raise cli.UserError(f"--folds must be in 2..{n_groups} (the number of groups of pairs that share "
                            f"no garment image), got {folds}")
    inner_folds = max(2, int(round(1.0 / val_fraction)))
    splits = []
    for repeat in range(repeats):
        outer = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
        for fold, (rest, test) in enumerate(outer.split(np.zeros(len(labels)), labels, groups)):
            inner = StratifiedGroupKFold(n_splits=min(inner_folds, np.unique(groups[rest]).size),
                                         shuffle=True, random_state=seed + repeat)
            # Of the inner folds with both classes on each side, the one closest to val_fraction.
            candidates = [(tr, va) for tr, va in inner.split(np.zeros(len(rest)), labels[rest], groups[rest])
                          if _both_classes(labels, rest[tr]) and _both_classes(labels, rest[va])]
            if not candidates:
                raise cli.UserError(f"repeat {repeat + 1}, fold {fold + 1}: cannot hold out a validation part "
                                    f"with both classes from {len(rest)} training pairs")
            tr, va = min(candidates, key=lambda c: abs(len(c[1]) - val_fraction * len(rest)))
            splits.append({"repeat": repeat, "fold": fold, "train": np.sort(rest[tr]),
                           "val": np.sort(rest[va]), "test": np.sort(test)})
    return splits


# --- one fold ----------------------------------------------------------------------------------

def _part(manifest, idx, role):
    return Manifest(manifest.path, [dict(manifest.rows[i], split=role) for i in idx], True)


def _keras_fit_predict(cfg, parts, init_from):


    cfg = copy.deepcopy(cfg)
    if cfg["train"]["jit_compile"] == "auto":
        cfg["train"]["jit_compile"] = False  # XLA on CPU compiles for minutes; a fold trains a few steps
    keras.utils.clear_session()
    keras.utils.set_random_seed(cfg["seed"])
    model, weights_used = build_model(cfg, init_from)
    data = {s: PairData(parts[s], model.image_size) for s in ("train", "val", "test")}
    pretrained = weights_used not in ("none", "none (imagenet unavailable)")
    history = fit(model, data, cfg["train"], pretrained, seed=cfg["seed"])
    return predict_data(model, data["test"]), len(history.get("loss", []))


class FoldRunner:
    """Fits one approach on a fold's training part and scores its test fold.

    Expensive shared state (the probe's encoder, the palettes of images)
    is built once and reused across folds.
    """

    def __init__(self, approach, cfg, init_from=None):
        self.approach, self.cfg, self.init_from = approach, cfg, init_from
        self.classic = None
        self.description = self._describe()

    def _describe(self):
        m, t = self.cfg["model"], self.cfg["train"]
        if self.approach == "scratch":
            return (f"{m['backbone']} from weights '{m['weights']}', {m['image_size']} px, "
                    f"<= {t['epochs']} epochs, early stopping on val")
        if self.approach == "init-from":
            return f"fine-tune {self.init_from}, <= {t['epochs']} epochs, early stopping on val"
        if self.approach == "palette":
            c = self.cfg["classic"]
            return f"k-means ({c['palette_colours']} colours, OKLab) + logistic regression, {m['image_size']} px"
        return f"logistic regression on frozen embeddings of {self.init_from or m['backbone'] + ' (fresh)'}"

    def _classic_model(self):
        cfg = copy.deepcopy(self.cfg)
        cfg["mode"] = "probe" if self.approach == "probe" else "train"
        if self.approach == "palette":
            cfg["model"]["backbone"] = "palette"
            if self.classic is None:
                self.classic = build_classic(cfg)
            return self.classic  # refit each fold; its palette memo carries over
        if self.classic is None:
            self.classic = build_classic(cfg, self.init_from)
        return build_classic(cfg, embedder=self.classic.embedder)

    def run(self, manifest, split):
        """p_harmonious of the test fold, and the epochs trained (0 for classic models)."""
        parts = {role: _part(manifest, split[role], role) for role in ("train", "val", "test")}
        if self.approach in ("scratch", "init-from"):
            return _keras_fit_predict(self.cfg, parts, self.init_from if self.approach == "init-from" else None)

        model = self._classic_model()
        train_rows = parts["train"].rows + parts["val"].rows  # no early stopping: use all training pairs
        model.fit(Manifest(manifest.path, train_rows, True))
        return model.predict_paths(parts["test"].column("top"), parts["test"].column("bottom")), 0


# --- statistics --------------------------------------------------------------------------------

def summarise(values):
    """mean, sd (ddof 1), 95 % t-interval clipped to [0, 1], n of the defined values.

    >>> s = summarise([0.8, 0.9, 1.0, None])
    >>> round(s["mean"], 3), round(s["std"], 3), [round(v, 3) for v in s["ci95"]], s["n"]
    (0.9, 0.1, [0.652, 1.0], 3)
    """

    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "ci95": None, "n": 0}
    mean = float(v.mean())
    if v.size == 1:
        return {"mean": mean, "std": None, "ci95": None, "n": 1}
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, v.size - 1)) * std / math.sqrt(v.size)
    return {"mean": mean, "std": std, "ci95": [max(0.0, mean - half), min(1.0, mean + half)], "n": int(v.size)}


def _fold_metrics(y, p):
    m = classification_metrics(y, p, n_bootstrap=0)
    return {k: m[k] for k in METRICS}


# --- output ------------------------------------------------------------------------------------

def _cell(s):
    if s["mean"] is None:
        return "n/a"
    text = f"{s['mean']:.3f}"
    if s["std"] is not None:
        text += f" ± {s['std']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"
    return text


def cv_markdown(result):
    header = ["Approach"] + [METRIC_TITLES[k] for k in METRICS] + ["pooled OOF ROC-AUC [95% CI]", "folds", "s"]
    rows = []
    for name, a in result["approaches"].items():
        pooled = a["pooled"]
        auc = "n/a" if pooled["roc_auc"] is None else (
            f"{pooled['roc_auc']:.3f} [{pooled['roc_auc_ci95'][0]:.3f}, {pooled['roc_auc_ci95'][1]:.3f}]")
        rows.append([name] + [_cell(a["summary"][k]) for k in METRICS]
                    + [auc, a["summary"]["roc_auc"]["n"], f"{a['seconds']:.0f}"])
    s = result["settings"]
    lines = [
        f"Cross-validation on `{s['data']}`: {s['pairs']} pairs in {s['groups']} groups that share no garment "
        f"image; {s['folds']} folds x {s['repeats']} repeat(s), group-aware and stratified (seed {s['seed']}); "
        f"validation part {s['val_fraction']:g} of each training part.",
        "",
        markdown_table(header, rows),
        "",
        f"Cells: mean ± sd [95% CI] over folds x repeats. CI: {CI_METHOD}. Positive class: harmonious.",
        "",
        "| Approach | what trains |",
        "|---|---|",
    ] + [f"| {name} | {a['description']} |" for name, a in result["approaches"].items()]
    return "\n".join(lines) + "\n"


def _oof_csv(manifest, approaches):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["approach", "repeat", "fold", "top", "bottom", "label", "p_harmonious"])
    for name, a in approaches.items():
        for f in a["folds"]:
            for i, p in zip(f["test_index"], f["p_harmonious"]):
                row = manifest.rows[i]
                writer.writerow([name, f["repeat"] + 1, f["fold"] + 1, row["top"], row["bottom"], row["label"],
                                 repr(float(p))])
    return buf.getvalue()


# --- driver ------------------------------------------------------------------------------------

def cross_validate(manifest, cfg, approaches, folds=5, repeats=1, val_fraction=0.2, init_from=None, log=print):
    """Run every approach on the same folds; returns the result dict written to cv.json."""
    labels = manifest.labels
    groups = image_groups(manifest)
    splits = cv_splits(labels, groups, folds, repeats, cfg["seed"], val_fraction)
    result = {
        "settings": {"data": manifest.path, "pairs": len(manifest), "groups": int(np.unique(groups).size),
                     "folds": folds, "repeats": repeats, "seed": cfg["seed"], "val_fraction": val_fraction,
                     "init_from": init_from, "ci_method": CI_METHOD},
        "splits": [{"repeat": s["repeat"] + 1, "fold": s["fold"] + 1,
                    **{role: s[role].tolist() for role in ("train", "val", "test")}} for s in splits],
        "approaches": {},
    }
    for approach in approaches:
        start = time.time()
        runner = FoldRunner(approach, cfg, init_from)
        fold_results, p_sum = [], np.zeros(len(manifest))
        for s in splits:
            t0 = time.time()
            p, epochs = runner.run(manifest, s)
            p = np.asarray(p, dtype=np.float64)
            p_sum[s["test"]] += p
            m = _fold_metrics(labels[s["test"]], p)
            fold_results.append({"repeat": s["repeat"], "fold": s["fold"], "n_train": len(s["train"]),
                                 "n_val": len(s["val"]), "n_test": len(s["test"]), "epochs_trained": epochs,
                                 "metrics": m, "test_index": s["test"].tolist(), "p_harmonious": p.tolist()})
            auc = "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
            log(f"[{approach}] repeat {s['repeat'] + 1} fold {s['fold'] + 1}/{folds}: {len(s['test'])} test pairs, "
                f"accuracy {m['accuracy']:.3f}, ROC-AUC {auc} ({time.time() - t0:.0f} s)")
        p_mean = p_sum / repeats
        pooled = classification_metrics(labels, p_mean, n_bootstrap=1000)
        result["approaches"][approach] = {
            "description": runner.description,
            "summary": {k: summarise([f["metrics"][k] for f in fold_results]) for k in METRICS},
            "pooled": pooled,
            "oof_p_harmonious": p_mean.tolist(),
            "folds": fold_results,
            "seconds": round(time.time() - start, 1),
        }
    return result


def write_results(out, manifest, result):
    """cv.md, cv.json, oof_predictions.csv and a pooled evaluation folder per approach."""
    os.makedirs(out, exist_ok=True)
    for name, a in result["approaches"].items():
        meta = {"weights": a["description"], "backbone": f"cv-{name}", "pairing": "n/a",
                "image_size": None, "data": manifest.path, "split": "out-of-fold", "model": name}
        write_evaluation(os.path.join(out, name), prediction_records(manifest, a["oof_p_harmonious"]), meta)
    write_text(os.path.join(out, "oof_predictions.csv"), _oof_csv(manifest, result["approaches"]))
    write_json(os.path.join(out, "cv.json"), result)
    markdown = cv_markdown(result)
    write_text(os.path.join(out, "cv.md"), markdown)
    return markdown
