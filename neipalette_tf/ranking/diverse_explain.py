"""`recommend --diverse` and `recommend --explain`: colour-diverse and explained wardrobe rankings.

Both work on the ranking `neipalette_tf.ranking.rank.rank` returns and the
embeddings its cache already holds (no second model pass): a garment's
read main colour is the last three values of its embedding.

- `diverse(...)`: the top k by maximal marginal relevance over the read
  colours (`neipalette_tf.ranking.diversity.mmr`), instead of the k best p.
- `explain(...)`: for each ranked garment, its read colour (hex, OKLCH,
  name) and the harmony rule's reading of it with the query's colour
  (`neipalette_tf.explanation.readings.rule_reading`).
"""

import numpy as np

from neipalette_tf.colour.space import oklab_to_oklch
from neipalette_tf.explanation.readings import colour_info, embedding_colours, rule_reading
from neipalette_tf.ranking.diversity import LAMBDA, mmr


def _colours(scorer, store, paths):
    return embedding_colours(store.embed(list(paths), scorer, scorer.image_size))


def diverse(scorer, store, ranking, k, lam=LAMBDA):
    """The ranking's colour-diverse top `k` (MMR over read colours), then the rest by p."""
    paths, p = [f for f, _ in ranking], np.array([s for _, s in ranking])
    picked = mmr(p, _colours(scorer, store, paths), k, lam)
    rest = [i for i in range(len(ranking)) if i not in set(picked)]
    return [ranking[i] for i in picked + rest]


def explain(scorer, store, query, role, ranking):
    """Per ranked garment: `{"colour": ..., "rule": {"harmonious", "reading"}}` (and the query's colour)."""
    labs = _colours(scorer, store, [query] + [f for f, _ in ranking])
    lchs = oklab_to_oklch(labs)
    query_info = colour_info(labs[0])
    notes = []
    for lab, lch in zip(labs[1:], lchs[1:]):
        info = colour_info(lab)
        pair = (lchs[0], lch) if role == "top" else (lch, lchs[0])
        names = (query_info["name"], info["name"]) if role == "top" else (info["name"], query_info["name"])
        ok, reading = rule_reading(*pair, names)
        notes.append({"colour": info, "rule": {"harmonious": ok, "reading": reading}})
    return query_info, notes
