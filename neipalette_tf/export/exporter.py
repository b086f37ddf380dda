"""Export a trained model to every format, check parity, publish what passes.

Flow of `export_model`:

1. load `model.keras`; decode the parity pairs (>= 64; the run's test split
   or `--parity-data`) and, for int8, the calibration pairs (>= 100; the
   run's training split or `--calibration`) with `load_image`;
2. build every requested format in a hidden build folder (`.staging-*`)
   inside the export's staging folder `.OUT.staging-PID` beside `out`
   (`neipalette_tf.core.staging`): SavedModel first (the TFLite source), then
   TFLite float32 / float16 / int8 and ONNX float32 / int8, each with its
   encoder and head;
3. check each format against Keras (`export.parity`); a format that
   passes is moved into the staging folder, one that fails is not;
4. write `parity.json` and `model_card.json` (with each artifact's
   SHA-256, checked by every runtime on load), drop the build folder, and
   swap the staging folder in at `out`.

Nothing is ever written at `out` until the export is complete, so an
interrupted export (even `kill -9`) leaves the previous export whole, or
the new one. The folder holds one export: files of formats this export
did not publish are gone with the earlier export. A folder holding
anything an export does not write is refused before any work.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import time

import numpy as np

from neipalette_tf.core import memory, staging
from neipalette_tf.core import staging as staging_lib
from neipalette_tf.core.cli import UserError
from neipalette_tf.core.formats import get_format, list_formats
from neipalette_tf.core.io_utils import hash_file, write_json
from neipalette_tf.core.vocabulary import ARM64_OUTPUT_NAME, BENCH_OUTPUT_NAMES, PARITY_NAME
from neipalette_tf.data.manifest import Manifest, read_manifest, resolve_manifest_path
from neipalette_tf.data.pipeline import load_images
from neipalette_tf.export import model_card, parity, savedmodel, tflite
from neipalette_tf.export import onnx as onnx_export
from neipalette_tf.models import load_model
from neipalette_tf.predictors.keras import KerasPredictor
from neipalette_tf.predictors.runtime import HarmonyRuntime
from neipalette_tf.predictors.saved_model import SavedModelPredictor
from neipalette_tf.training.config import load_config
from neipalette_tf.training.prepare import prepare_manifest

FORMATS = list_formats()  # the registry: neipalette_tf/core/formats.py
INT8_FORMATS = list_formats(precision="int8")
CALIBRATION_PAIRS = 128
MIN_CALIBRATION_PAIRS = 100
MAX_PARITY_PAIRS = 1024
STAGING_PREFIX = ".staging-"


# --------------------------------------------------------------------------
# Data: parity and calibration pairs
# --------------------------------------------------------------------------


def run_manifest(model_path):
    """The training manifest of the model's run (its config.yaml), with its splits; or None."""
    cfg_path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "config.yaml")
    if not os.path.isfile(cfg_path):
        return None
    cfg = load_config(cfg_path)
    if not os.path.isfile(resolve_manifest_path(cfg["data"]["path"])):
        raise UserError(f"{cfg_path}: data.path {cfg['data']['path']} not found from {os.getcwd()} "
                        "(run where training ran, or pass --calibration and --parity-data)")

    return prepare_manifest(cfg)  # the same splits training used


def select_pairs(path, from_run, split, minimum, limit, what, flag):
    """Rows for `what`: `path`'s `split` (or all its rows), else the run's `split`.

    Returns (manifest, source) where source is `{"manifest": csv, "split": split or "all"}`.
    At most `limit` rows, drawn with a fixed seed; fewer than `minimum` is an error.
    """

    if path:
        manifest = read_manifest(path)
        if manifest.has_split and len(manifest.subset(split)) >= minimum:
            manifest = manifest.subset(split)
        else:
            split = "all"
    elif from_run is not None:
        manifest = from_run.subset(split)
    else:
        raise UserError(f"no data for {what}: the model's folder has no config.yaml; pass {flag}")
    if len(manifest) < minimum:
        raise UserError(f"{manifest.path}: {len(manifest)} pairs for {what}; it needs at least {minimum} ({flag})")
    source = {"manifest": manifest.path, "split": split, "pairs": len(manifest)}
    if len(manifest) > limit:
        manifest, source["sampled"] = sample(manifest, limit), limit
    return manifest, source


def sample(manifest, n):
    """`n` rows of a manifest drawn with a fixed seed, in manifest order."""
    keep = np.sort(np.random.default_rng(0).choice(len(manifest), n, replace=False))
    return Manifest(manifest.path, [manifest.rows[i] for i in keep], manifest.has_split)


def decode_pairs(manifest, source, image_size):
    """A `parity.PairSet` of a manifest, decoded with `load_image`."""
    return parity.PairSet(load_images(manifest.column("top"), image_size),
                          load_images(manifest.column("bottom"), image_size), manifest.labels, source)


# --------------------------------------------------------------------------
# Building the formats (into the staging folder)
# --------------------------------------------------------------------------


def _write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def _representative(model, calibration):
    """Representative data per signature for the int8 converter."""
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    tops, bottoms = calibration.tops, calibration.bottoms
    data = {"serving_default": lambda: ({"top": f32(tops[i:i + 1]), "bottom": f32(bottoms[i:i + 1])}
                                        for i in range(len(tops)))}
    if model.pairing == "siamese":
        reference = KerasPredictor(model)
        images = np.concatenate([tops, bottoms])
        e_t, e_b = (parity.batched(reference.embed_batch, x) for x in (tops, bottoms))
        data["encoder"] = lambda: ({"image": f32(images[i:i + 1])} for i in range(len(images)))
        data["attention"] = data["encoder"]
        data["head"] = lambda: ({"top_embedding": e_t[i:i + 1], "bottom_embedding": e_b[i:i + 1]}
                                for i in range(len(e_t)))
    return data


def _onnx_calibration(model, calibration):
    """Calibration arrays per part for `onnx.quantize_int8` (the TFLite int8 files' pairs)."""
    tops, bottoms = calibration.tops, calibration.bottoms
    feeds = {"model": {"top": tops, "bottom": bottoms}}
    if model.pairing == "siamese":
        reference = KerasPredictor(model)
        feeds["encoder"] = feeds["attention"] = {"image": np.concatenate([tops, bottoms])}
        feeds["head"] = {"top_embedding": parity.batched(reference.embed_batch, tops),
                         "bottom_embedding": parity.batched(reference.embed_batch, bottoms)}
    return feeds


class Builder:
    """Builds formats into `staging`; returns `{part: staged path}` per format.

    `build(fmt)` calls the method of the format's family (`savedmodel`, `onnx`, `tflite`, as
    `core.formats` registers it) with the format's spec.
    """
    def __init__(self, model, staging, calibration):
        self.model = model
        self.staging = staging
        self.calibration = calibration
        self.parts = {part: key for part, key in savedmodel.PARTS.items()
                      if key in savedmodel.endpoints(model)}
        self._saved_model = None
        self._float32 = {}  # signature -> float32 flatbuffer, reused by the float16 conversion
        self._onnx = {}  # part -> tf2onnx's float32 graph, before `onnx_optimize`: the float and int8 files' source

    @property
    def saved_model(self):
        if self._saved_model is None:
            path = os.path.join(self.staging, savedmodel.SAVED_MODEL_DIR, savedmodel.VERSION)
            self._saved_model = savedmodel.write(self.model, path)
        return self._saved_model

    def build(self, fmt):
        spec = get_format(fmt)
        return getattr(self, spec.family)(spec)

    def savedmodel(self, spec):  # a copy: the staged one stays the TFLite source
        return {"model": shutil.copytree(self.saved_model, os.path.join(self.staging, "publish", "saved_model"))}

    def onnx(self, spec):
        functions = savedmodel.endpoints(self.model)
        feeds = _onnx_calibration(self.model, self.calibration) if spec.int8 else None
        files = {}
        for part, key in self.parts.items():
            if part not in self._onnx:
                self._onnx[part] = onnx_export.convert(*functions[key], optimize_graph=False)
                memory.release()  # tf2onnx frees gigabytes per graph; hand them back before the next
            if spec.precision == "float32":
                graph = onnx_export.optimized(self._onnx[part])
            else:
                graph = onnx_export.quantize_int8(
                    onnx_export.optimized(self._onnx[part], onnx_export.INT8_MAX_OUTPUT_PIXELS),
                    feeds[part], tflite.FLOAT_SCOPES,
                    tflite.ATTENTION_INT8_SCOPES if part == "attention" else tflite.INT8_SCOPES)
            files[part] = _write_bytes(os.path.join(self.staging, spec.file_name(part)), graph.SerializeToString())
        return files

    def tflite(self, spec):
        precision = spec.precision
        source, data = self.saved_model, {}
        if precision == "int8":
            source = savedmodel.write(self.model, os.path.join(self.staging, "int8_source"), pin_pixel_range=True)
            data = _representative(self.model, self.calibration)
        files = {}
        for part, key in self.parts.items():
            flatbuffer = tflite.convert(source, key, precision, data.get(key), float32_model=self._float32.get(key))
            if precision == "float32":
                self._float32[key] = flatbuffer
            files[part] = _write_bytes(os.path.join(self.staging, spec.file_name(part)), flatbuffer)
        return files


def runner(fmt, files, image_size):
    """The format's files as NumPy functions (`predict_batch`, `embed_batch`, `score_batch`): the
    TF-free runtime for a TF-free format, else the SavedModel predictor."""
    if not get_format(fmt).tf_free:
        return SavedModelPredictor(files["model"])
    return HarmonyRuntime.from_files(files, image_size)


def describe(fmt, files, run):
    """Card entries `{part: {"file", "inputs", "outputs", ...}}` of a format's staged files."""
    spec = get_format(fmt)
    if spec.family == "savedmodel":
        signatures = model_card.describe_saved_model(run.signatures)
        return {part: {"file": spec.file_name(part), "signature": key, **signatures[key]}
                for part, key in savedmodel.PARTS.items() if key in signatures}
    read = {"onnx": onnx_export.describe, "tflite": tflite.describe}[spec.family]
    return {part: {"file": os.path.basename(path), **read(path)} for part, path in files.items()}


# --------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------


def final_paths(fmt, out, parts=tuple(savedmodel.PARTS)):
    """Where a format's files live once published."""
    spec = get_format(fmt)
    if spec.family == "savedmodel":
        return {"model": os.path.join(out, spec.file_name("model"))}
    return {p: os.path.join(out, spec.file_name(p)) for p in parts}


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def publish(files, finals, staging):
    """Move staged files to their final paths (`os.replace`; folders renamed)."""
    for part, path in files.items():
        final = finals[part]
        os.makedirs(os.path.dirname(final), exist_ok=True)
        if os.path.isdir(path):
            if os.path.exists(final):  # a folder cannot be replaced in one step
                os.rename(final, tempfile.mkdtemp(prefix="old-", dir=staging))
            os.rename(path, final)
        else:
            os.replace(path, final)


def unpublish(fmt, out):
    """Remove a format's files from `out` (an earlier export's, now stale)."""
    removed = []
    for path in final_paths(fmt, out).values():
        if os.path.lexists(path):
            _remove(path)
            removed.append(os.path.relpath(path, out))
    with contextlib.suppress(OSError):  # saved_model/ when it is now empty
        os.rmdir(os.path.join(out, savedmodel.SAVED_MODEL_DIR))
    return removed


# --------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------


def export_names():
    """Every name an export folder holds (all formats, both pairings), and the
    prefixes of its temporary names: what `export_owned` accepts."""
    names = {model_card.CARD_NAME, PARITY_NAME, *BENCH_OUTPUT_NAMES, ARM64_OUTPUT_NAME, savedmodel.SAVED_MODEL_DIR}
    for fmt in FORMATS:
        if fmt != "savedmodel":
            names.update(os.path.basename(p) for p in final_paths(fmt, "").values())
    return names, (STAGING_PREFIX, f".{model_card.CARD_NAME}.", f".{PARITY_NAME}.")


def export_owned(folder):
    """None when `folder` is provably an earlier export (its model card or parity
    report, and nothing but export names), else why not (see `neipalette_tf.core.staging`)."""

    names, prefixes = export_names()
    return staging.owned_by_names(folder, names, (model_card.CARD_NAME, PARITY_NAME), prefixes)


def artifact_sha256(path):
    """SHA-256 of a file, or of a folder (every file, in sorted order, path and bytes)."""


    if not os.path.isdir(path):
        return hash_file(path).hexdigest()
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            hash_file(full, digest)
    return digest.hexdigest()


def export_model(model_path, out, formats=FORMATS, calibration=None, parity_data=None, log=print):
    """Export, check and publish; returns the parity report (`report["passed"]`).

    The export is written in a staging folder beside `out` and swapped in when
    complete (`neipalette_tf.core.staging`): `out` holds the earlier export or this
    one, never a mix. A folder that holds anything an export does not write is
    refused before any work.

    Raises UserError for bad input (missing model, unknown format, too few pairs).
    """

    if not os.path.isfile(model_path):
        raise UserError(f"{model_path}: model not found")
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise UserError(f"unknown format(s) {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    if not formats:
        raise UserError("--formats is empty")
    staging_lib.check_output_folder(out)
    if os.path.isdir(out) and os.listdir(out):
        why = export_owned(out)
        if why:
            raise UserError(f"{out}: --out holds files this export did not write ({why}); refusing to replace "
                            "them: choose another --out or move them away")
    model = load_model(model_path)
    size, siamese = model.image_size, model.pairing == "siamese"
    int8 = any(f in formats for f in INT8_FORMATS)
    from_run = run_manifest(model_path) if parity_data is None or (int8 and calibration is None) else None
    pairs = decode_pairs(*select_pairs(parity_data, from_run, "test", parity.MIN_PAIRS, MAX_PARITY_PAIRS,
                                       "parity", "--parity-data"), size)
    calib = decode_pairs(*select_pairs(calibration, from_run, "train", MIN_CALIBRATION_PAIRS, CALIBRATION_PAIRS,
                                       "int8 calibration", "--calibration"), size) if int8 else None
    log(f"{model.name}: parity on {len(pairs)} pairs ({pairs.source['manifest']}, {pairs.source['split']})")
    reference = parity.predictions(KerasPredictor(model), pairs, composed=False)["model"]
    attention_reference = parity.attention(KerasPredictor(model), pairs) if siamese else None
    rating_reference = parity.ratings(KerasPredictor(model), pairs) if siamese else None

    with staging_lib.staged_folder(out, export_owned, "export") as st:
        folder = st.path  # becomes `out` when everything below is written
        build = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
        results, artifacts = {}, {}
        builder = Builder(model, build, calib)
        for fmt in formats:
            start = time.perf_counter()
            try:
                files = builder.build(fmt)
                run = runner(fmt, files, size)
                results[fmt] = parity.check(fmt, run, pairs, reference, composed=siamese,
                                            attention_reference=attention_reference,
                                            rating_reference=rating_reference)
            except Exception as e:  # a converter or runtime that fails is a failed format, not a crash
                message = str(e).strip().splitlines()[-1] if str(e).strip() else "no message (see the log above)"
                results[fmt] = {"rule": parity.RULES[fmt], "passed": False, "error": f"{type(e).__name__}: {message}"}
            memory.release()  # the converter's peak, before the next format
            if results[fmt]["passed"]:
                artifacts[fmt] = describe(fmt, files, run)
                for part, path in files.items():
                    if part in artifacts[fmt]:
                        artifacts[fmt][part]["sha256"] = artifact_sha256(path)
                publish(files, final_paths(fmt, folder), build)
                names = dict.fromkeys(entry["file"] for entry in artifacts[fmt].values())
                log(f"{fmt}: parity passed, published {', '.join(names)} ({time.perf_counter() - start:.0f} s)")
            else:
                log(f"{fmt}: FAILED ({parity.failure_summary(results[fmt])}); not published")
        for fmt in FORMATS:
            if fmt not in artifacts and os.path.isdir(out):
                stale = [os.path.relpath(p, out) for p in final_paths(fmt, out).values() if os.path.lexists(p)]
                if stale:
                    log(f"{fmt}: removed stale {', '.join(stale)} of an earlier export")
        report = parity.report(pairs, reference, results)
        notes = {} if siamese else {part: "a stacked model sees top and bottom in one image: "
                                          "there is no separate encoder or head" for part in ("encoder", "head", "attention")}
        write_json(os.path.join(folder, PARITY_NAME), report)
        write_json(os.path.join(folder, model_card.CARD_NAME),
                   model_card.build(model, model_path, artifacts, report, notes))
        shutil.rmtree(build)
    return report
