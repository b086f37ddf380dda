"""A colour-diverse top k: maximal marginal relevance over the read colours.

A plain ranking by p(harmonious) often fills its top five with one colour
(five navy trousers). `mmr` picks greedily the garment with the best

    lambda * p_i - (1 - lambda) * max_{j picked} similarity(i, j)

where the similarity of two garments is `exp(-ΔE / COLOUR_SCALE)` of their
read main colours (OKLab distance; the last three values of each
embedding): 1 for the same colour, 0.37 at ΔE 0.1 (clearly different
colours), ~0 beyond 0.3. `lam=1` is the plain ranking. NumPy only.

Example:

>>> import numpy as np
>>> p = np.array([0.95, 0.94, 0.93, 0.80])
>>> labs = np.array([[0.3, 0.0, -0.1], [0.3, 0.0, -0.1], [0.3, 0.0, -0.1], [0.6, 0.15, 0.1]])
>>> mmr(p, labs, k=2)  # the second pick is the other colour, not the second navy
[0, 3]
>>> mmr(p, labs, k=2, lam=1.0)
[0, 1]
"""

import numpy as np

LAMBDA = 0.7
COLOUR_SCALE = 0.1


def colour_similarity(labs):
    """`[M, M]` similarities `exp(-ΔE / COLOUR_SCALE)` of OKLab colours `[M, 3]`."""
    labs = np.asarray(labs, np.float64)
    distance = np.linalg.norm(labs[:, None, :] - labs[None, :, :], axis=-1)
    return np.exp(-distance / COLOUR_SCALE)


def mmr(p, labs, k, lam=LAMBDA):
    """Indices of a colour-diverse top `k` of scores `p` `[M]` with colours `labs` `[M, 3]`, in pick order."""
    p = np.asarray(p, np.float64)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    k = min(int(k), len(p))
    if k <= 0:
        return []
    similarity = colour_similarity(labs)
    picked = [int(np.argmax(p))]
    closest = similarity[picked[0]].copy()  # max similarity of each garment to the picked ones
    while len(picked) < k:
        gain = lam * p - (1.0 - lam) * closest
        gain[picked] = -np.inf
        i = int(np.argmax(gain))
        picked.append(i)
        closest = np.maximum(closest, similarity[i])
    return picked
