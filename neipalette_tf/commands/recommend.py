"""Rank a wardrobe: which of my bottoms go with this top (or tops with this bottom)?

    python -m neipalette_tf.recommend --model MODEL --top IMG --wardrobe DIR [--k 5] [--out grid.png] [--cache PATH] [--json]
    python -m neipalette_tf.recommend --model MODEL --bottom IMG --wardrobe DIR ...
        [--diverse] [--explain]   (neipalette_tf.ranking.diverse_explain)
    python -m neipalette_tf.recommend --model MODEL --bench [--garments 1000]

Every image in DIR (not its subfolders) is scored against the query with
p(harmonious) and the list is printed best first; `--out` draws the query
and the top k with their scores. `--diverse`: the top k are picked for
colour variety too (maximal marginal relevance over the read colours);
`--explain`: each garment's read colour and the rule's reading with the
query's. MODEL is a Keras `model.keras` or an
export (`model.onnx`, `model*.tflite`, an export folder, or
`saved_model/`): the siamese encoder / head split is used, so every garment
is embedded once and a query costs one head pass over the wardrobe.

**Cache.** Embeddings are kept on disk, in `DIR/.neipalette-cache/` (or
`--cache PATH`), keyed by the image's content (SHA-256) and the model's
identity (SHA-256 of the model file, or of the encoder file of an export):
renaming a file keeps its embedding, editing it or changing the model does
not. A stat index (size, mtime) avoids re-reading unchanged files to hash
them. Embeddings of different models never mix.

**Benchmark.** `--bench` renders `--garments` garment photos into a
temporary wardrobe, embeds them (the first pass, timed apart), then times
ranking queries end to end (list the folder, look up the cache on disk,
score every garment, sort) in the loaded process, and prints p50 / p90.
Model loading is not part of a query.
"""

import argparse
import json
import os
import sys

from neipalette_tf.core import cli, staging
from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import THRESHOLD
from neipalette_tf.ranking import diverse_explain
from neipalette_tf.ranking.bench import BENCH_GOAL_MS, bench
from neipalette_tf.ranking.cache import CACHE_DIR
from neipalette_tf.ranking.plot import plot_grid
from neipalette_tf.ranking.rank import load_scorer, rank
from neipalette_tf.ranking.wardrobe import shown
from neipalette_tf.predictors.builtin import MODEL_HELP, resolve_model


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m neipalette_tf.recommend", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model.keras, model.onnx, model*.tflite, an export folder or saved_model/ " + MODEL_HELP)
    query = p.add_mutually_exclusive_group()
    query.add_argument("--top", help="photo of a top: rank the wardrobe's bottoms")
    query.add_argument("--bottom", help="photo of a bottom: rank the wardrobe's tops")
    query.add_argument("--bench", action="store_true", help="time ranking over --garments cached garments")
    p.add_argument("--wardrobe", help="folder of garment photos")
    p.add_argument("--k", type=int, default=5, help="garments in the grid (default 5)")
    p.add_argument("--out", help="write the grid of the top k here (PNG)")
    p.add_argument("--cache", help=f"cache folder (default: WARDROBE/{CACHE_DIR})")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.add_argument("--garments", type=int, default=1000, help="wardrobe size for --bench (default 1000)")
    p.add_argument("--threads", type=int, help="CPU threads of the model runtime")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the SHA-256 check of exported files against their model_card.json")
    p.add_argument("--diverse", action="store_true", help="a colour-diverse top k (MMR over the read colours)")
    p.add_argument("--explain", action="store_true", help="each garment's read colour and the rule's reading")
    return p.parse_args(argv)


def _set_threads(args):
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        if os.path.splitext(args.model)[1] == ".keras" or os.path.isdir(args.model):
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)


def _check_paths(args):
    """Output paths, before any work: --out a writable file name, --cache not a file."""
    if args.out:
        staging.check_output_file(args.out, "--out")
        if os.path.splitext(args.out)[1].lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg", ".webp"):
            raise cli.UserError(f"{shown(args.out)}: --out is the grid image; give a .png (or .jpg, .pdf, .svg) name")
    if args.cache and os.path.lexists(args.cache) and not os.path.isdir(args.cache):
        raise cli.UserError(f"{shown(args.cache)}: --cache is a file; give a folder (it is created if needed)")


def main(argv=None):
    args = parse_args(argv)
    args.model = resolve_model(args.model)  # no --model: the built-in model
    if args.k < 1:
        raise cli.UserError(f"--k must be at least 1, got {args.k}")
    if args.threads is not None and args.threads < 1:
        raise cli.UserError(f"--threads must be at least 1, got {args.threads}")
    _check_paths(args)
    _set_threads(args)
    if args.bench:
        if args.garments < 1:
            raise cli.UserError(f"--garments must be at least 1, got {args.garments}")
        scorer = load_scorer(args.model, args.threads, args.verify)
        r = bench(scorer, args.garments)
        met = "met" if r["p50_ms"] < BENCH_GOAL_MS else "NOT met"
        load = os.getloadavg()[0]
        print(cpu_summary())
        print(f"model: {args.model} ({type(scorer).__name__}, threads: {args.threads or 'default'}), "
              f"{r['garments']} garments, load average {load:.1f}; "
              f"first pass (embed all): {r['first_pass_s']:.1f} s")
        print(f"ranking {r['garments']} cached garments, end to end, {r['queries']} queries: "
              f"p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, max {r['max_ms']:.1f} ms "
              f"(goal < {BENCH_GOAL_MS:.0f} ms: {met}); of which the head scoring {r['garments']} pairs: "
              f"p50 {r['score_p50_ms']:.2f} ms")
        return 0
    if not (args.top or args.bottom):
        raise cli.UserError("give --top IMG or --bottom IMG (or --bench)")
    if not args.wardrobe:
        raise cli.UserError("--wardrobe DIR is required")
    role, query = ("top", args.top) if args.top else ("bottom", args.bottom)

    load_image(query, 8)  # fail fast, before loading a model
    scorer = load_scorer(args.model, args.threads, args.verify)
    ranking, store = rank(scorer, query, args.wardrobe, role, args.cache)
    notes = query_colour = None
    if args.diverse or args.explain:
        if args.diverse:
            ranking = diverse_explain.diverse(scorer, store, ranking, args.k)
        if args.explain:
            query_colour, notes = diverse_explain.explain(scorer, store, query, role, ranking)
    if args.out:
        plot_grid(query, role, ranking, args.k, args.out)
    for path, reason in store.skipped:
        print(f"skipped: {shown(reason)}", file=sys.stderr)
    if args.json:
        print(json.dumps({"query": shown(query), "role": role, "diverse": args.diverse, "ranking": [
            {"rank": i + 1, "file": shown(f), "p_harmonious": round(p, 6), **(notes[i] if notes else {})}
            for i, (f, p) in enumerate(ranking)],
            **({"query_colour": query_colour} if notes else {}),
            "skipped": [{"file": shown(f), "reason": shown(r)} for f, r in store.skipped],
            "cache": {"hits": store.hits, "misses": store.misses, "folder": shown(store.folder),
                      "written": store.read_only is None}}))
        return 0
    other = "bottoms" if role == "top" else "tops"
    note = f", {len(store.skipped)} unreadable skipped" if store.skipped else ""
    print(f"{len(ranking)} {other} ranked for {shown(query)} (cache: {store.hits} hits, {store.misses} new{note})")
    for i, (f, p) in enumerate(ranking):
        print(f"{i + 1:4d}  {p:.4f}  {'harmonious' if p >= THRESHOLD else 'clashing  '}  {shown(f)}")
        if notes and i < args.k:
            print(f"      {notes[i]['colour']['name']} {notes[i]['colour']['hex']}; rule: {notes[i]['rule']['reading']}")
    if args.out:
        print(f"grid: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
