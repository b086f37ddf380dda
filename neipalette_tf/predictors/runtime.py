"""TensorFlow-free NeiPalette runtime: exported ONNX or LiteRT models.

Needs NumPy, Pillow and one of `onnxruntime` / `ai-edge-litert`; it never
imports TensorFlow or Keras, so a server or a small device starts in well
under a second. Images go through `neipalette_tf.core.preprocessing.load_image`
(the same letterbox as training); the image size and the encoder / head
files come from the `model_card.json` that `python -m export` writes next
to the models.

Example:

    rt = HarmonyRuntime("artifacts/X/model.onnx")   # or model_int8.tflite
    p = rt.predict("top.jpg", "bottom.jpg")         # p(harmonious)
    e_top = rt.embed("top.jpg")                     # siamese models only
    e_bottoms = np.stack([rt.embed(b) for b in wardrobe])
    ps = rt.score(e_top, e_bottoms)                 # one p per bottom
    e, maps = rt.attend_batch(images)               # embeddings and colour attention maps

Quantised LiteRT models (uint8 / int8 tensors) are handled here: inputs
are quantised with the tensor's scale and zero point and outputs
dequantised, so callers always pass and get floats (the int8 model's image
input has scale 1 and zero point 0: camera pixels go in unchanged).
"""

import os

import numpy as np

from neipalette_tf.core.errors import ArtifactError  # noqa: F401 - raised here, importable from here
from neipalette_tf.core.formats import PARTS, format_of, get_format, list_formats
from neipalette_tf.core.io_utils import hash_file, read_json_object, sha256_file
from neipalette_tf.core.preprocessing import load_image
from neipalette_tf.core.vocabulary import CARD_NAME
from neipalette_tf.predictors.base import Predictor

HARMONY = "harmony"  # output name: p(harmonious), shape [N]
RATING = "rating"  # output name of people-trained models: people's predicted rating 1..5, shape [N]


def _quantize(x, dtype, scale, zero_point):
    """Float values -> the integer tensor type (identity for float tensors)."""
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    if np.asarray(x).dtype == dtype and scale == 1 and zero_point == 0:
        return x  # e.g. uint8 pixels into the int8 model's uint8 input: nothing to convert
    x = np.asarray(x, dtype=np.float32)
    if scale:
        x = np.rint(x * np.float32(1.0 / scale) + np.float32(zero_point))
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def _dequantize(y, dtype, scale, zero_point):
    if np.issubdtype(dtype, np.integer) and scale:
        return (y.astype(np.float32) - zero_point) * np.float32(scale)
    return y


class OnnxGraph:
    """One `.onnx` graph in ONNX Runtime (CPU): `run({name: array}) -> {name: array}`."""
    def __init__(self, path, threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = path
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def input_shape(self, name):
        return next(i.shape for i in self.session.get_inputs() if i.name == name)

    def run(self, feeds):
        values = self.session.run(
            self.output_names,
            {k: np.ascontiguousarray(feeds[k], dtype=np.float32) for k in self.input_names})
        return dict(zip(self.output_names, values))


class LiteRTGraph:
    """One `.tflite` file (its single signature) in the LiteRT interpreter.

    XNNPACK is LiteRT's default CPU delegate. Batch size is free: the inputs
    are resized (and the tensors re-allocated) when a batch's shape differs
    from the last one's, and only then — the signature runner did it on
    every call, a fixed cost next to a 2 ms int8 pair.
    """

    def __init__(self, path, threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        runner = self.interpreter.get_signature_runner()
        self.inputs = runner.get_input_details()
        self.outputs = runner.get_output_details()
        self.input_names = list(self.inputs)
        self.output_names = list(self.outputs)
        self._shapes = None

    def input_shape(self, name):
        return self.inputs[name]["shape_signature"]

    def run(self, feeds):
        args = {name: np.ascontiguousarray(_quantize(feeds[name], d["dtype"], *d["quantization"]))
                for name, d in self.inputs.items()}
        shapes = {name: a.shape for name, a in args.items()}
        if shapes != self._shapes:
            for name, shape in shapes.items():
                self.interpreter.resize_tensor_input(self.inputs[name]["index"], shape)
            self.interpreter.allocate_tensors()
            self._shapes = shapes
        for name, a in args.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], a)
        self.interpreter.invoke()
        return {name: _dequantize(self.interpreter.get_tensor(d["index"]), d["dtype"], *d["quantization"])
                for name, d in self.outputs.items()}


# The graph of each TF-free family (`core.formats`), by the file suffix of its formats.
GRAPHS = {"onnx": OnnxGraph, "tflite": LiteRTGraph}
GRAPH_TYPES = {get_format(name).suffix: GRAPHS[get_format(name).family] for name in list_formats(tf_free=True)}


# What each part's graph takes and gives (a foreign model with other names is refused).
PART_INPUTS = {"model": {"top", "bottom"}, "encoder": {"image"}, "head": {"top_embedding", "bottom_embedding"},
               "attention": {"image"}}
PART_OUTPUT = {"model": HARMONY, "encoder": "embedding", "head": HARMONY, "attention": "attention"}


def read_card(folder):
    """The model card of an export folder, or None when there is none.

    ArtifactError (one line naming the file) when it is unreadable, not
    JSON, not an object, or its `image_size` / `artifacts` have the wrong type.
    """
    path = os.path.join(folder, CARD_NAME)
    if not os.path.isfile(path):
        return None
    try:
        card = read_json_object(path)
    except ValueError as e:
        raise ArtifactError(f"{path}: unreadable model card ({e})") from None
    except TypeError as e:
        raise ArtifactError(f"{path}: a model card is a JSON object, got {e}") from None
    size = card.get("image_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096):
        raise ArtifactError(f"{path}: image_size must be an integer in 8..4096, got {size!r}")
    artifacts = card.get("artifacts", {})
    if not isinstance(artifacts, dict) or not all(
            isinstance(e, dict) and all(isinstance(v, dict) for v in e.values()) for e in artifacts.values()):
        raise ArtifactError(f"{path}: 'artifacts' must map formats to {{part: {{file, ...}}}}")
    return card


def find_artifact(card, file_name):
    """(format, entry) of the card's artifact whose model file is `file_name`."""
    for fmt, entry in (card or {}).get("artifacts", {}).items():
        if entry.get("model", {}).get("file") == file_name:
            return fmt, entry
    return None, None


def verify_file(path, expected, card_path):
    """ArtifactError unless the SHA-256 of `path` is `expected` (from the model card)."""

    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(f"{path}: SHA-256 {actual[:16]}... differs from {expected[:16]}... recorded in "
                            f"{card_path} (the file was changed or damaged; --no-verify uses it anyway)")


class HarmonyRuntime(Predictor):
    """Score outfits with an exported `.onnx` or `.tflite` model, no TensorFlow.

    Args:
        path: `model*.onnx` / `model*.tflite` in an export folder, or the
            folder itself (then `model.onnx`). The encoder and head of the
            same format are found through the folder's model card.
        threads: CPU threads of the runtime (None: its default).
        verify: check each file's SHA-256 against the model card before
            loading it (a card without hashes, or no card: nothing to check).

    Every problem with the files is an `ArtifactError` naming the file: a
    corrupt card, an empty or changed file, a graph without the inputs and
    outputs of its part (`harmony`, `embedding`), an image size that the
    card and the graph disagree on.
    """

    def __init__(self, path, threads=None, verify=True):
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "model.onnx")
        if os.path.splitext(path)[1] not in GRAPH_TYPES:
            raise ArtifactError(f"{path}: the runtime reads .onnx or .tflite models")
        if not os.path.isfile(path):
            raise ArtifactError(f"{path}: model not found")
        folder = os.path.dirname(os.path.abspath(path))
        self.card = read_card(folder)
        self.format, entry = find_artifact(self.card, os.path.basename(path))
        self.format = self.format or format_of(path)
        files, hashes = {"model": path}, {}
        for part in PARTS:
            if entry and part in entry:
                if part != "model":
                    if not isinstance(entry[part].get("file"), str):
                        raise ArtifactError(f"{os.path.join(folder, CARD_NAME)}: {self.format}.{part} has no file name")
                    files[part] = os.path.join(folder, entry[part]["file"])
                if isinstance(entry[part].get("sha256"), str):
                    hashes[part] = entry[part]["sha256"]
        image_size = int(self.card["image_size"]) if self.card and self.card.get("image_size") else None
        self._hashes = hashes if verify else {}
        self._card_path = os.path.join(folder, CARD_NAME)
        self._setup(files, image_size, threads)

    @classmethod
    def from_files(cls, files, image_size=None, threads=None):
        """A runtime over explicit files `{"model": ..., "encoder": ..., "head": ...}` (no card)."""
        runtime = cls.__new__(cls)
        runtime.card, runtime.format, runtime._hashes, runtime._card_path = None, format_of(files["model"]), {}, None
        runtime._setup(dict(files), image_size, threads)
        return runtime

    def _setup(self, files, image_size, threads):
        self.path = files["model"]
        self.files = files
        self.threads = threads
        self._graphs = {}
        # No card (a model file copied alone): the model's input shape says it.
        self.image_size = image_size or self._graph_size()
        self.siamese = "encoder" in files and "head" in files

    def _graph_size(self):
        size = self.model.input_shape("top")[1]
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ArtifactError(f"{self.path}: the model's input 'top' has no fixed image size ({size!r})")
        return int(size)

    @property
    def identity(self):
        """A content hash of the files that embed and score (the wardrobe cache's key)."""
        if getattr(self, "_identity", None) is None:
            digest = None
            for part in (("encoder", "head") if self.siamese else ("model",)):
                digest = hash_file(self.files[part], digest)
            self._identity = digest.hexdigest()
        return self._identity

    def _graph(self, part):
        if part not in self._graphs:
            if part not in self.files:
                why = (self.card or {}).get("notes", {}).get(part) or f"no {part} file next to it"
                raise ArtifactError(f"{self.path}: no {part} ({why})")
            path = self.files[part]
            if not os.path.isfile(path):
                raise ArtifactError(f"{path}: the {part} file named by {self._card_path} is missing")
            if os.path.getsize(path) == 0:
                raise ArtifactError(f"{path}: empty file (0 bytes)")
            if part in self._hashes:
                verify_file(path, self._hashes[part], self._card_path)
            try:
                graph = GRAPH_TYPES[os.path.splitext(path)[1]](path, self.threads)
            except Exception as e:  # noqa: BLE001 - the runtime's own error on a corrupt file
                text = str(e).strip()
                reason = f"{type(e).__name__}: {text.splitlines()[0][:200]}" if text else type(e).__name__
                raise ArtifactError(f"{path}: cannot load the {part} ({reason})") from None
            self._check_graph(part, path, graph)
            self._graphs[part] = graph
        return self._graphs[part]

    def _check_graph(self, part, path, graph):
        """A foreign graph (other inputs, no `harmony` / `embedding` output) or a size that disagrees: ArtifactError."""
        inputs, output = PART_INPUTS[part], PART_OUTPUT[part]
        if set(graph.input_names) != inputs or output not in graph.output_names:
            raise ArtifactError(
                f"{path}: not a NeiPalette {part} graph (inputs {sorted(graph.input_names)}, outputs "
                f"{sorted(graph.output_names)}; expected inputs {sorted(inputs)} and an output '{output}')")
        image_input = {"model": "top", "encoder": "image"}.get(part)
        expected = getattr(self, "image_size", None)
        if image_input and expected:
            shape = list(graph.input_shape(image_input))
            if len(shape) != 4 or (isinstance(shape[1], (int, np.integer)) and shape[1] > 0 and shape[1] != expected) \
                    or (isinstance(shape[2], (int, np.integer)) and shape[2] > 0 and shape[2] != expected):
                raise ArtifactError(f"{path}: the graph takes images of shape {shape}, but "
                                    f"{self._card_path or 'the caller'} says image_size {expected}")

    @property
    def model(self):
        return self._graph("model")

    @property
    def encoder(self):
        return self._graph("encoder")

    @property
    def head(self):
        return self._graph("head")

    @property
    def attention(self):
        return self._graph("attention")

    def attend_batch(self, images):
        """(embeddings `[N, D]`, colour attention weights `[N, P]`) of preprocessed uint8 images.

        The `attention` graph (exports since it existed): the encoder's
        embedding and the attention over the `(S / 2)^2` pooled pixels.
        """
        out = self.attention.run({"image": images})
        return np.asarray(out["embedding"], dtype=np.float32), np.asarray(out["attention"], dtype=np.float32)

    def attend_details(self, images):
        """`{"embedding", "attention", "palette"}` in one run of the `attention` graph (its `palette`
        output; graphs exported before it: the NumPy palette over its attention map)."""
        out = self.attention.run({"image": images})
        if "palette" not in out:
            return super().attend_details(images)
        return {k: np.asarray(out[k], dtype=np.float32) for k in ("embedding", "attention", "palette")}

    def image(self, source):
        """A path, bytes, or an already preprocessed uint8 `[S, S, 3]` array -> model input."""
        if isinstance(source, np.ndarray):
            if source.shape != (self.image_size, self.image_size, 3):
                raise ArtifactError(
                    f"image array of shape {source.shape}; expected {(self.image_size, self.image_size, 3)}")
            return source
        return load_image(source, self.image_size)

    def predict_batch(self, tops, bottoms):
        """p(harmonious) `[N]` for preprocessed uint8 arrays `[N, S, S, 3]`."""
        out = self.model.run({"top": tops, "bottom": bottoms})
        return np.asarray(out[HARMONY], dtype=np.float64)

    @property
    def has_rating(self):
        """The model graph has a `rating` output (people-trained models)."""
        return RATING in self.model.output_names

    def rate_batch(self, tops, bottoms):
        """People's predicted rating 1..5 `[N]` of preprocessed uint8 pairs (people-trained models)."""
        return self._require_rating(self.model.run({"top": tops, "bottom": bottoms}))

    def predict_details(self, tops, bottoms):
        """`{"p": [N], "rating": [N] or None}` in one run of the model graph."""
        out = self.model.run({"top": tops, "bottom": bottoms})
        rating = out.get(RATING)
        return {"p": np.asarray(out[HARMONY], dtype=np.float64),
                "rating": None if rating is None else np.asarray(rating, dtype=np.float64).reshape(-1)}

    def _require_rating(self, out):
        if RATING not in out:
            return super().rate_batch(None, None)
        return np.asarray(out[RATING], dtype=np.float64).reshape(-1)

    def rate_scores(self, e_tops, e_bottoms):
        """(p `[N]`, rating `[N]` or None) of embedding pairs, in one run of the head graph."""
        out = self.head.run({"top_embedding": e_tops, "bottom_embedding": e_bottoms})
        rating = out.get(RATING)
        return (np.asarray(out[HARMONY], dtype=np.float64),
                None if rating is None else np.asarray(rating, dtype=np.float64).reshape(-1))

    def predict(self, top, bottom):
        """p(harmonious) of one pair (paths, bytes or preprocessed arrays)."""
        return float(self.predict_batch(self.image(top)[None], self.image(bottom)[None])[0])

    def embed_batch(self, images):
        """Embeddings `[N, D]` of preprocessed uint8 images `[N, S, S, 3]`."""
        return np.asarray(self.encoder.run({"image": images})["embedding"], dtype=np.float32)

    def embed(self, image):
        """The embedding `[D]` of one garment photo (path, bytes or array)."""
        return self.embed_batch(self.image(image)[None])[0]

    def score_batch(self, e_tops, e_bottoms):
        """p(harmonious) `[N]` of N (top, bottom) embedding pairs `[N, D]`."""
        out = self.head.run({"top_embedding": e_tops, "bottom_embedding": e_bottoms})
        return np.asarray(out[HARMONY], dtype=np.float64)

    def score(self, e_top, e_bottoms):
        """p(harmonious) of one top embedding `[D]` against bottoms `[M, D]` -> `[M]`."""
        e_bottoms = np.asarray(e_bottoms, dtype=np.float32)
        return self.score_batch(np.broadcast_to(np.asarray(e_top, dtype=np.float32), e_bottoms.shape), e_bottoms)
