"""The one interface every NeiPalette model answers through, whatever its format.

| method                          | in                              | out                    |
|---------------------------------|---------------------------------|------------------------|
| `predict_batch(tops, bottoms)`  | uint8 `[N, S, S, 3]` twice      | p(harmonious) `[N]`    |
| `embed_batch(images)`           | uint8 `[N, S, S, 3]`            | embeddings `[N, D]`    |
| `score_batch(e_tops, e_bottoms)`| embeddings `[N, D]` twice       | p(harmonious) `[N]`    |
| `attend_batch(images)`          | uint8 `[N, S, S, 3]`            | embeddings, attention `[N, P]` |
| `attend_details(images)`        | uint8 `[N, S, S, 3]`            | `{"embedding", "attention", "palette" [N, K, 4]}` |
| `predict_pair(top, bottom)`     | two image files (or bytes)      | p(harmonious), a float |
| `predict_details(tops, bottoms)`| uint8 `[N, S, S, 3]` twice      | `{"p": [N], "rating": [N] or None}` |
| `rate_batch(tops, bottoms)`     | uint8 `[N, S, S, 3]` twice      | people's rating 1..5 `[N]` |

`has_rating`: the model was trained on people's labels and rates pairs as people would
(`rating`, 1..5, from the garments' main colours); other models raise `ArtifactError` from
`rate_batch` and give `"rating": None`.

`image_size` is the side S the pixels are letterboxed to (by
`neipalette_tf.core.preprocessing.load_image`, the one preprocessing
function); `identity` is a content hash of the files behind the predictor
(the wardrobe cache keys its embeddings by it). Only siamese models embed
and score: the others raise `ArtifactError` naming the file.

Implementations: `predictors.keras.KerasPredictor` (model.keras),
`predictors.saved_model.SavedModelPredictor`, `predictors.runtime.HarmonyRuntime`
(ONNX / LiteRT, no TensorFlow) and the classic baselines
(`models.classic`). `predictors.load_predictor(path)` picks one by format.
"""

from neipalette_tf.colour.palette import palettes_from_attention
from neipalette_tf.core.errors import ArtifactError
from neipalette_tf.core.preprocessing import load_image


class Predictor:
    """Base class: subclasses set `image_size`, `path` and `identity`, and implement `predict_batch`
    (and, siamese models, `embed_batch` / `score_batch`)."""

    image_size = None
    format = None  # "keras", "savedmodel", "onnx", "tflite", "tflite_fp16", "tflite_int8", ...
    path = None
    identity = None

    def predict_batch(self, tops, bottoms):
        raise NotImplementedError

    @property
    def has_rating(self):
        return False

    def rate_batch(self, tops, bottoms):
        """People's predicted rating 1..5 `[N]` of each pair (people-trained models only)."""
        raise ArtifactError(f"{self.path}: this model has no rating output (trained on rule-v1 labels, or "
                            "exported before ratings existed); only people-trained models rate pairs")

    def predict_details(self, tops, bottoms):
        """`{"p": p(harmonious) [N], "rating": [N] or None}` (subclasses may do it in one pass)."""
        return {"p": self.predict_batch(tops, bottoms),
                "rating": self.rate_batch(tops, bottoms) if self.has_rating else None}

    def embed_batch(self, images):
        raise ArtifactError(f"{self.path}: this model has no separate encoder (a stacked or classic model); "
                            "embeddings and wardrobe ranking need a siamese model")

    def score_batch(self, e_tops, e_bottoms):
        raise ArtifactError(f"{self.path}: this model has no separate head (a stacked or classic model); "
                            "embeddings and wardrobe ranking need a siamese model")

    def attend_batch(self, images):
        """(embeddings `[N, D]`, colour attention maps `[N, P]`): what explanations read."""
        raise ArtifactError(f"{self.path}: this model has no colour attention output (a stacked or classic "
                            "model, or an export made before explanations); export it again")

    def attend_details(self, images):
        """`{"embedding", "attention", "palette"}` of garment images in one pass of the attention graph.

        `palette` `[N, K, 4]`: each garment's raw palette (OKLab and share per entry;
        `neipalette_tf.colour.palette.read_palette` reads it). From the graph's `palette` output
        where it has one; exports made before it get the same soft k-means in NumPy over the
        graph's attention map.
        """
        e, a = self.attend_batch(images)
        return {"embedding": e, "attention": a, "palette": palettes_from_attention(images, a)}

    def predict_pair(self, top, bottom):
        """p(harmonious) of one pair of image files (paths or bytes)."""
        tops = load_image(top, self.image_size)[None]
        bottoms = load_image(bottom, self.image_size)[None]
        return float(self.predict_batch(tops, bottoms)[0])
