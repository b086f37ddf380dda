"""Agreement with people: the library behind `python -m neipalette_tf.evaluate --human PATH/themes.csv`.

Each rated theme (`neipalette_tf.data.themes`: K colours, people's mean rating 1..5) is drawn as
garments with the project's renderer and scored by a model, and the theme scores are ranked
against the people's ratings:

- every colour pair `i < j` of a theme becomes a pair of photos: colour `c_i` as a plain top,
  `c_j` as a plain bottom (`both_orders`: also `c_j` top, `c_i` bottom), so a five-colour theme
  gives 10 (20) pairs. Plain: `render_garment(..., prints=False)`, so the garment's colour is the
  theme's colour; category, shape, background, light and camera vary as in the synthetic data
  (`render_size` px, the synthetic data's default, at least the model's input size). Each
  garment is rendered once per (theme, colour, role) and shared by the pairs it is in; its
  randomness comes from `(seed, theme id, colour index, role)` alone, so a theme looks the same
  whatever `--limit`, the worker count or the other themes;
- the photos are decoded by `core.preprocessing.load_image` at the model's input size and scored
  by any model or export (`predictors.load_predictor`);
- a theme's score is the mean of the model's `rating` (people's predicted 1..5) over its pairs
  when the model has one, else the mean p(harmonious).

Reported, on the same themes, in one table: Spearman's rank correlation of the theme score with
the ratings, the pairwise ranking accuracy (theme pairs whose ratings differ by >= 0.5) and, for
a rating, its mean absolute error; beside them, for reference, rule v1 (the share of a theme's
colour pairs the rule calls harmonious, `colour.people_fit.rule_share`) and the people model
itself on the exact theme colours (`colour.people.PeopleModel.rate_themes`: what a perfect
colour reader feeding the people model would reach). The default `themes="heldout"` keeps only
the themes the shipped people model was not fitted on (`Themes.heldout`); `"all"` adds the
themes it was fitted on, and says that its figures are then optimistic.

Written into `out` (through a staging folder, `core.staging`): `human.json` (the figures, the
settings and every theme's scores) and `human.md` (the table).

Example (the colour pairs of a theme, as (top, bottom) colour indices):

>>> theme_pairs(3)
[(0, 1), (0, 2), (1, 2)]
>>> len(theme_pairs(5)), len(theme_pairs(5, both_orders=True))
(10, 20)
"""

import os
import time

import numpy as np

from neipalette_tf.core import cli, staging
from neipalette_tf.core.io_utils import write_json, write_text

RENDER_SIZE = 96  # the synthetic data's photo size (configs/*.yaml: data.synth.image_size)
THEME_CHOICES = ("heldout", "all")
HUMAN_NAMES = frozenset(("human.json", "human.md", "FAILED.txt"))
ROLES = ("top", "bottom")
CHUNK_THEMES = 128  # themes rendered and scored at a time (bounded memory at any image size)


def default_out(model_path, themes_path, which="heldout"):
    """`human-<themes name>` (`-all` for all themes) beside the model."""
    themes_path = os.path.abspath(os.fspath(themes_path))
    name = os.path.basename(themes_path)
    name = os.path.splitext(name)[0] if name.endswith(".csv") else name
    suffix = "" if which == "heldout" else f"-{which}"
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(model_path))), f"human-{name}{suffix}")


def human_owned(folder):
    return staging.owned_by_names(folder, HUMAN_NAMES, ("human.json", "FAILED.txt"),
                                  (".human.json.", ".human.md."))


# --------------------------------------------------------------------------
# Drawing the themes
# --------------------------------------------------------------------------


def theme_pairs(k, both_orders=False):
    """The (top colour index, bottom colour index) pairs of a K-colour theme: i < j, then (j, i)."""
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    return pairs + [(j, i) for i, j in pairs] if both_orders else pairs


def garment_rng(seed, theme_id, colour, role):
    """The generator of one garment: from the seed, the theme id, the colour's index and its role."""
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), int(theme_id) % 2**63, int(colour), ROLES.index(role)]))


def render_theme_garment(seed, theme_id, colour, role, rgb, render_size, image_size):
    """One plain garment of colour `rgb` (8-bit sRGB) as the model sees it: uint8 `[S, S, 3]`."""
    from neipalette_tf.colour.space import srgb_to_oklch
    from neipalette_tf.core.preprocessing import load_image
    from neipalette_tf.data.synth.render import _choose_categories, render_garment

    rng = garment_rng(seed, theme_id, colour, role)
    rgb = tuple(int(v) for v in rgb)
    # categories as the synthetic pairs pick them (jeans likelier for a denim-like bottom colour)
    categories = _choose_categories(rng, srgb_to_oklch(np.asarray(rgb, dtype=np.float64)))
    category = categories[ROLES.index(role)]
    photo = render_garment(rng, rgb, category, render_size, scene=None, prints=False)
    return load_image(photo["jpeg"], image_size)


def _render_task(args):
    return render_theme_garment(*args)


def _garment_tasks(themes, seed, render_size, image_size, both_orders):
    """(task list, {(theme row, colour, role): task index}) of the garments the pairs need."""
    k = themes.rgb.shape[1]
    needed = sorted({(c, role) for i, j in theme_pairs(k, both_orders) for c, role in ((i, "top"), (j, "bottom"))})
    tasks, index = [], {}
    for t in range(len(themes)):
        for c, role in needed:
            index[(t, c, role)] = len(tasks)
            tasks.append((seed, int(themes.ids[t]), c, role, themes.rgb[t, c], render_size, image_size))
    return tasks, index


def _pool(workers):
    if workers <= 1:
        return None
    from neipalette_tf.data.synth.dataset import _mp_context  # one policy: fork when safe, else spawn

    return _mp_context().Pool(workers)


def embedding_scorer(predictor):
    """`(e_tops, e_bottoms) -> (p [N], rating [N] or None)` on embeddings, or None where the predictor has none.

    A siamese model embeds each garment on its own, so every distinct garment is embedded once and its
    pairs are scored from the embeddings (the same numbers as scoring each pair's two photos, a fifth of
    the encoder passes for a five-colour theme). Exports and SavedModels with a `rate_scores` (p and
    rating of embedding pairs) use it; a Keras model's rating comes from its own `rating` layer on the
    embeddings (`HarmonyClassifier.rating`); others score photo pairs (`predict_details`).
    """
    if not getattr(predictor, "siamese", False):
        return None
    if callable(getattr(predictor, "rate_scores", None)):
        return predictor.rate_scores
    if not getattr(predictor, "has_rating", False):
        return lambda e_t, e_b: (predictor.score_batch(e_t, e_b), None)
    model = getattr(predictor, "model", None)
    if getattr(predictor, "format", None) != "keras" or not callable(getattr(model, "rating", None)):
        return None
    import keras  # a Keras model: TensorFlow is loaded already

    dim = model.backbone.output.shape[-1] + 3
    e_t, e_b = keras.Input((dim,), name="top_embedding"), keras.Input((dim,), name="bottom_embedding")
    rating_head = keras.Model({"top_embedding": e_t, "bottom_embedding": e_b}, model.rating([e_t, e_b]))

    def scores(tops, bottoms):
        x = {"top_embedding": np.asarray(tops, np.float32), "bottom_embedding": np.asarray(bottoms, np.float32)}
        rating = np.asarray(rating_head.predict_on_batch(x), dtype=np.float64).reshape(-1)
        return predictor.score_batch(tops, bottoms), rating

    return scores


def _batched(fn, n, batch_size):
    """fn(slice) over `n` items in batches: the concatenated (p, rating or None)."""
    p, rating = [], []
    for b in range(0, n, batch_size):
        bp, br = fn(slice(b, b + batch_size))
        p.append(np.asarray(bp, dtype=np.float64).reshape(-1))
        if br is not None:
            rating.append(np.asarray(br, dtype=np.float64).reshape(-1))
    return np.concatenate(p), (np.concatenate(rating) if rating else None)


# below this many garments one process renders them: starting workers (which import what the
# command imported, TensorFlow included) costs more than it saves
MIN_GARMENTS_FOR_WORKERS = 2000


def score_themes(predictor, themes, seed=0, render_size=None, both_orders=False, batch_size=64, workers=None,
                 fast=True, log=print):
    """Draw every theme's colour pairs as garments and score them with `predictor`.

    Returns `{"p": [T], "rating": [T] or None, "score": [T], "score_kind": "rating" | "p_harmonious", ...}`:
    each theme's mean p(harmonious), mean rating (models with a rating) and its score (the rating
    when there is one, else p), with the counts and seconds spent. `fast=False` scores every pair's
    two photos with `predict_details` even where embeddings would do (`embedding_scorer`).
    """
    image_size = int(predictor.image_size)
    render_size = int(render_size or max(RENDER_SIZE, image_size))
    k = themes.rgb.shape[1]
    pairs = theme_pairs(k, both_orders)
    has_rating = bool(getattr(predictor, "has_rating", False))
    scorer = embedding_scorer(predictor) if fast else None
    p_mean = np.zeros(len(themes))
    r_mean = np.zeros(len(themes)) if has_rating else None
    render_s = score_s = 0.0
    garments = 0
    per_theme = 2 * (k - 1) if not both_orders else 2 * k
    workers = int(workers or os.cpu_count() or 1)
    pool = _pool(workers) if len(themes) * per_theme >= MIN_GARMENTS_FOR_WORKERS else None
    try:
        for start in range(0, len(themes), CHUNK_THEMES):
            chunk = themes.subset(np.arange(start, min(start + CHUNK_THEMES, len(themes))))
            tasks, index = _garment_tasks(chunk, seed, render_size, image_size, both_orders)
            t0 = time.perf_counter()
            if pool is None:
                images = [_render_task(a) for a in tasks]
            else:
                images = pool.map(_render_task, tasks, chunksize=max(1, min(32, len(tasks) // (4 * workers))))
            images = np.stack(images)
            garments += len(images)
            t1 = time.perf_counter()
            top = np.array([index[(t, i, "top")] for t in range(len(chunk)) for i, _ in pairs])
            bottom = np.array([index[(t, j, "bottom")] for t in range(len(chunk)) for _, j in pairs])
            if scorer is not None:
                emb = np.concatenate([predictor.embed_batch(images[b:b + batch_size])
                                      for b in range(0, len(images), batch_size)])
                p, rating = _batched(lambda s: scorer(emb[top[s]], emb[bottom[s]]), len(top), batch_size)
            else:
                def details(s):
                    out = predictor.predict_details(images[top[s]], images[bottom[s]])
                    return out["p"], out.get("rating")

                p, rating = _batched(details, len(top), batch_size)
            if has_rating and rating is None:
                raise cli.Failure(f"{predictor.path}: the model says it rates pairs but gave no rating")
            rows = slice(start, start + len(chunk))
            p_mean[rows] = p.reshape(len(chunk), len(pairs)).mean(axis=1)
            if has_rating:
                r_mean[rows] = rating.reshape(len(chunk), len(pairs)).mean(axis=1)
            render_s += t1 - t0
            score_s += time.perf_counter() - t1
            if log and len(themes) > CHUNK_THEMES:
                log(f"  {start + len(chunk)}/{len(themes)} themes drawn and scored "
                    f"(render {render_s:.0f} s, model {score_s:.0f} s)")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return {"p": p_mean, "rating": r_mean, "score": p_mean if r_mean is None else r_mean,
            "score_kind": "p_harmonious" if r_mean is None else "rating", "pairs_per_theme": len(pairs),
            "garments": garments, "render_size": render_size, "image_size": image_size,
            "scored_from": "embeddings" if scorer is not None else "photo pairs",
            "render_seconds": render_s, "score_seconds": score_s}


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


def reference_scores(themes):
    """Rule v1's share of harmonious pairs and the people model's rating, on the exact theme colours."""
    from neipalette_tf.colour import people, people_fit

    return {"rule_v1": people_fit.rule_share(themes.lab), "people_model": people.default().rate_themes(themes.lab)}


def agreement_rows(themes, scored, reference):
    """`{row key: {"label", "spearman", "pairwise_accuracy", "mae" (None unless a rating), "themes"}}`."""
    from neipalette_tf.colour.people_fit import rank_metrics

    rows = {}

    def add(key, label, pred, is_rating):
        m = rank_metrics(pred, themes.ratings)
        rows[key] = {"label": label, "spearman": m["spearman"], "pairwise_accuracy": m["pairwise_accuracy"],
                     "mae": m["mae"] if is_rating else None, "themes": m["themes"]}

    n = scored["pairs_per_theme"]
    if scored["rating"] is not None:
        add("model_rating", f"model: mean rating over {n} drawn pairs (the theme score)", scored["rating"], True)
        add("model_p", f"model: mean p(harmonious) over {n} drawn pairs", scored["p"], False)
    else:
        add("model_p", f"model: mean p(harmonious) over {n} drawn pairs (the theme score; no rating output)",
            scored["p"], False)
    add("rule_v1", "rule v1 on exact colours: share of harmonious pairs", reference["rule_v1"], False)
    add("people_model", "people model on exact colours (upper bound of a perfect colour reader)",
        reference["people_model"], True)
    return rows


def colour_reading(scored, reference):
    """How closely the model's theme ratings follow the people model's on the exact colours (None without a
    rating): `{"pearson", "mean_abs_diff"}`. Near 1 and 0: the model reads the garments' colours as they are."""
    if scored["rating"] is None:
        return None
    diff = scored["rating"] - reference["people_model"]
    pearson = np.corrcoef(scored["rating"], reference["people_model"])[0, 1] if len(diff) > 1 else float("nan")
    return {"pearson": float(pearson), "mean_abs_diff": float(np.mean(np.abs(diff)))}


def reading_line(reading):
    return (f"model rating vs the people model on exact colours, per theme: Pearson r {reading['pearson']:.3f}, "
            f"mean |difference| {reading['mean_abs_diff']:.3f} (how well the model reads the garments' colours)")


def format_table(rows):
    from neipalette_tf.evaluation.report import markdown_table

    def f(v):
        return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"

    return markdown_table(["theme score", "Spearman", "pairwise acc.", "MAE"],
                          [[r["label"], f(r["spearman"]), f(r["pairwise_accuracy"]), f(r["mae"])]
                           for r in rows.values()])


def select_themes(themes, which="heldout", limit=None):
    """(the themes to evaluate, a sentence saying which they are, a warning line or None)."""
    from neipalette_tf.data.themes import FOLDS, HELDOUT_FOLD

    if which not in THEME_CHOICES:
        raise cli.UserError(f"--themes must be one of {', '.join(THEME_CHOICES)}, got {which!r}")
    total = len(themes)
    warning = None
    if which == "heldout":
        chosen = themes.heldout()
        what = (f"{len(chosen)} of the {total} themes in {themes.path}: those held out of the people model's fit "
                f"(theme ids in fold {HELDOUT_FOLD} of {FOLDS}); the people model never saw them")
        if len(chosen) == 0:
            raise cli.UserError(f"{themes.path}: none of its {total} themes is held out of the people model's fit "
                                f"(fold {HELDOUT_FOLD} of {FOLDS} by theme id); use --themes all")
    else:
        chosen = themes
        fitted = len(themes.fitting())
        what = f"all {total} themes in {themes.path}"
        warning = (f"warning: --themes all includes {fitted} themes the people model was fitted on: the people "
                   "model's row, and a model trained on its labels, look better there than on new themes; "
                   "quote --themes heldout figures")
    if limit is not None:
        if limit < 1:
            raise cli.UserError(f"--limit must be at least 1, got {limit}")
        if limit < len(chosen):
            chosen = chosen.subset(np.arange(limit))
            what += f"; the first {limit} of them in file order (--limit)"
    return chosen, what, warning


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def evaluate_human(model_path, themes_path, which="heldout", limit=None, seed=0, out=None, batch_size=64,
                   both_orders=False, workers=None, render_size=None):
    """Score rated themes drawn as garments with a model; write `human.json` and `human.md` into `out`.

    Returns the `human.json` dict. Bad input (themes file, row, model, output folder) raises a
    `NeiPaletteError` naming it, before any rendering.
    """
    from neipalette_tf.data.themes import read_themes

    started = time.perf_counter()
    if batch_size < 1:
        raise cli.UserError(f"--batch-size must be at least 1, got {batch_size}")
    if seed is None or seed < 0:
        raise cli.UserError(f"--seed must be an integer >= 0, got {seed}")
    if which not in THEME_CHOICES:
        raise cli.UserError(f"--themes must be one of {', '.join(THEME_CHOICES)}, got {which!r}")
    final = out = out or default_out(model_path, themes_path, which)
    staging.check_output_folder(out)  # before any work
    themes = read_themes(themes_path)
    chosen, what, warning = select_themes(themes, which, limit)
    if not os.path.exists(model_path):
        raise cli.UserError(f"{model_path}: model not found")
    with staging.staged_folder(out, human_owned, "evaluation") as st:  # refuses a folder of others' files now
        result, table = _evaluate_human(model_path, themes_path, themes, chosen, what, warning, which, limit, seed,
                                        batch_size, both_orders, workers, render_size, started, st.path)
    print(table)
    if result["rating_vs_people_model"]:
        print(reading_line(result["rating_vs_people_model"]))
    print(result["cpu"])
    print(f"time: {result['seconds']['total']:.1f} s (render {result['seconds']['render']:.1f} s, "
          f"model {result['seconds']['model']:.1f} s)")
    print(f"output: {final}")
    return result


def _evaluate_human(model_path, themes_path, themes, chosen, what, warning, which, limit, seed, batch_size,
                    both_orders, workers, render_size, started, out):
    """The work of `evaluate_human`, written into `out` (the staging folder); (the result, the table)."""
    from neipalette_tf.core.cpu_info import cpu_summary
    from neipalette_tf.predictors import load_predictor

    predictor = load_predictor(model_path)
    print(f"themes: {what}")
    if warning:
        print(warning)
    print(f"drawing {len(chosen)} themes x {len(theme_pairs(chosen.rgb.shape[1], both_orders))} colour pairs as "
          f"plain garments, scoring with {model_path} ({getattr(predictor, 'format', None) or 'model'}, "
          f"{predictor.image_size} px)")
    scored = score_themes(predictor, chosen, seed, render_size, both_orders, batch_size, workers)
    reference = reference_scores(chosen)
    rows = agreement_rows(chosen, scored, reference)
    reading = colour_reading(scored, reference)
    cpu = cpu_summary()
    seconds = time.perf_counter() - started
    table = format_table(rows)
    result = {
        "model": os.path.abspath(model_path), "format": getattr(predictor, "format", None),
        "themes_file": os.path.abspath(themes.path), "themes": which, "themes_note": what, "warning": warning,
        "limit": limit, "seed": seed, "both_orders": both_orders, "n_themes": len(chosen),
        "pairs_per_theme": scored["pairs_per_theme"], "garments_rendered": scored["garments"],
        "render_size": scored["render_size"], "image_size": scored["image_size"],
        "theme_score": scored["score_kind"], "scored_from": scored["scored_from"], "metrics": rows,
        "rating_vs_people_model": reading, "cpu": cpu,
        "seconds": {"total": seconds, "render": scored["render_seconds"], "model": scored["score_seconds"]},
        "per_theme": [{"theme_id": int(i), "rating": float(y), "model_p": float(p),
                       "model_rating": None if scored["rating"] is None else float(scored["rating"][t]),
                       "rule_v1": float(reference["rule_v1"][t]), "people_model": float(reference["people_model"][t])}
                      for t, (i, y, p) in enumerate(zip(chosen.ids, chosen.ratings, scored["p"]))],
    }
    command = (f"python -m neipalette_tf.evaluate --model {model_path} --human {themes_path} --themes {which}"
               + (f" --limit {limit}" if limit is not None else "") + f" --seed {seed}"
               + (" --both-orders" if both_orders else ""))
    md = "\n".join([
        "# Agreement with people", "",
        f"Model: `{model_path}`. Themes: {what}.", "",
        *([f"**{warning}**", ""] if warning else []),
        f"Each theme's {scored['pairs_per_theme']} colour pairs drawn as plain garments ({scored['render_size']} px, "
        f"seed {seed}), read at {scored['image_size']} px; theme score: the mean "
        f"{'rating' if scored['score_kind'] == 'rating' else 'p(harmonious)'} over its pairs. Pairwise accuracy: "
        "theme pairs whose ratings differ by >= 0.5. Rule v1 and the people model read the exact theme colours.", "",
        table, "",
        *([reading_line(reading), ""] if reading else []),
        f"Command: `{command}`. {cpu}. Time: {seconds:.0f} s (render {scored['render_seconds']:.0f} s, "
        f"model {scored['score_seconds']:.0f} s).", ""])
    write_json(os.path.join(out, "human.json"), result)
    write_text(os.path.join(out, "human.md"), md)
    return result, table
