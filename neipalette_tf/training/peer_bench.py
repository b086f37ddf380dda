"""NeiPalette's Keras step against the study's PyTorch eager stack, in one process: the library behind
`python -m neipalette_tf.peer_bench`.

The peer is what the original study ran: a siamese torchvision-style
ResNet18 (basic blocks 2-2-2-2, 7x7 stem and max-pool, NCHW, eager mode),
global average pooling, one linear layer over `[f_top, f_bottom]`, Adam and
cross-entropy. Measured on the same batch of pairs, at the same image size,
batch size and thread count, in the same process, interleaved (peer, Keras,
peer, Keras, ...) so that a busy or throttled machine slows both alike:

- `torch_eager`: the peer's training step and inference (`torch.no_grad`);
- `keras_same`: the same network in Keras (KerasHub ResNet18, pooled, one
  `Dense(2)`), compiled like `train` compiles: the framework against the
  framework;
- `keras_matmul`: that network with the matmul gradients of its small-map
  convolutions (`training.conv_gradients`), as `train` trains;
- `neipalette`: the training step `train` runs (colour attention pooling,
  the pair head, the colour and all-pairs auxiliary losses, and the matmul
  gradients of the small-map convolutions, `training.conv_gradients`) and
  the saved model's inference.

The figure that matters is a ratio (pairs/s over the peer's pairs/s), not
an absolute time. PyTorch is a benchmark-only dependency (`pip install
torch`, CPU wheel); without it the command says so and exits 1.
"""

import importlib.util
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from neipalette_tf.core.cpu_info import cpu_summary
from neipalette_tf.data import synth
from neipalette_tf.data.manifest import read_manifest
from neipalette_tf.data.pipeline import LABEL_KEY, PairData
from neipalette_tf.models import build_classifier
from neipalette_tf.models.backbones import build_backbone
from neipalette_tf.models.preprocessor import ImageNormalizer
from neipalette_tf.training.config import DEFAULTS
from neipalette_tf.training.conv_gradients import matmul_conv_gradients
from neipalette_tf.training.loop import TrainingSetup


def torch_available():
    return importlib.util.find_spec("torch") is not None


# --------------------------------------------------------------------------
# The peer: the study's siamese ResNet18 in PyTorch eager
# --------------------------------------------------------------------------


def torch_siamese_resnet18():
    """A torchvision-style ResNet18 shared by both garments, a linear head on the pooled pair."""
    import torch  # optional (pip install torch): deferred so the module loads without it
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class Siamese(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
            cin = 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
                cin = cout
            self.backbone = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(2 * 512, 2)

        def forward(self, top, bottom):
            return self.head(torch.cat([self.backbone(top), self.backbone(bottom)], dim=1))

    return Siamese()


class TorchPeer:
    """Training step and inference of the peer on one fixed batch (NHWC uint8-range floats in)."""

    def __init__(self, tops, bottoms, labels, threads, seed=0):
        import torch  # optional, as above

        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch_siamese_resnet18()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()

        def nchw(x):  # ImageNet normalisation, as torchvision's transforms do
            mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
            return torch.from_numpy(((x / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32).copy())

        self.top, self.bottom = nchw(tops), nchw(bottoms)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64))

    def train_step(self):
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.loss(self.model(self.top, self.bottom), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def infer(self):
        self.model.eval()
        with self.torch.no_grad():
            return self.torch.softmax(self.model(self.top, self.bottom), dim=1)[:, 1].numpy()


# --------------------------------------------------------------------------
# Keras: the same network, and NeiPalette's training step
# --------------------------------------------------------------------------


def keras_same_network(size):
    """The peer's network in Keras: a shared KerasHub ResNet18, pooled, `Dense(2)` on `[f_top, f_bottom]`."""
    backbone, _ = build_backbone("resnet18", "none")
    normalise = ImageNormalizer(scale=1 / 255.0)
    pool = keras.layers.GlobalAveragePooling2D()
    top = keras.Input((size, size, 3), name="top")
    bottom = keras.Input((size, size, 3), name="bottom")
    features = [pool(backbone(normalise(x))) for x in (top, bottom)]
    logits = keras.layers.Dense(2)(keras.layers.Concatenate()(features))
    model = keras.Model({"top": top, "bottom": bottom}, logits, name="keras_same")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def synthetic_pairs(data, size, batch, log=print):
    """PairData (with colour targets) of `data`'s train split; None: 200 pairs rendered in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="neipalette-bench-") as tmp:
        if data is None:
            data = os.path.join(tmp, "synth")
            log("rendering 200 synthetic pairs ...")
            synth.generate(data, pairs=200, seed=0, image_size=96, workers=1, progress=False)
        manifest = os.path.join(data, "pairs.csv") if os.path.isdir(data) else data
        pairs = PairData(read_manifest(manifest).subset("train"), size)
    if len(pairs) < batch:
        raise ValueError(f"{manifest}: {len(pairs)} training pairs, fewer than the batch ({batch})")
    return pairs


def _timed(fn, repeats):
    """Seconds of each of `repeats` calls of `fn`."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(data=None, size=48, batch=32, threads=2, steps=10, rounds=3, warmup=3, log=print):
    """Training-step and inference rates (pairs/s) of the peer and of Keras; a dict with the ratios.

    Args:
        data: a synthetic data folder or pairs.csv with recorded colours
            (None: 200 synthetic pairs rendered in a temporary folder).
        steps: timed calls per round; `rounds` rounds alternate the peer and
            Keras (each round starting with the next stack), each rate is the
            median over rounds, and each ratio the median of the rounds' ratios
            (`ratio_ranges`: their lowest and highest).
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran an op in this process (a test, a notebook): pools stay
        log("note: TensorFlow's thread pools already exist in this process; its thread count is unchanged")
    pairs = synthetic_pairs(data, size, batch, log)
    keras.utils.set_random_seed(0)
    train_cfg = dict(DEFAULTS["train"], batch_size=batch)
    m = DEFAULTS["model"]
    model, _ = build_classifier("resnet18", size, "siamese", "none", m["head_units"], m["dropout"],
                                log=lambda s: None, head_projection=m["head_projection"])
    setup = TrainingSetup(model, {"train": pairs, "val": pairs}, train_cfg, seed=0)
    setup.compile(1e-3, 1000)
    x, y = next(iter(setup.train_ds))  # one augmented training batch, with its colour targets
    tops, bottoms = x["top"].numpy(), x["bottom"].numpy()
    labels = (y[LABEL_KEY] if isinstance(y, dict) else y).numpy()
    same = keras_same_network(size)
    same_matmul = keras_same_network(size)
    peer = TorchPeer(tops, bottoms, labels, threads)
    x_plain = {"top": tops, "bottom": bottoms}

    runs = {
        "torch_eager": {"train": peer.train_step, "infer": peer.infer},
        "keras_same": {"train": lambda: same.train_on_batch(x_plain, labels),
                       "infer": lambda: same.predict_on_batch(x_plain)},
        "keras_matmul": {"train": lambda: same_matmul.train_on_batch(x_plain, labels),
                         "infer": lambda: same_matmul.predict_on_batch(x_plain)},
        "neipalette": {"train": lambda: setup.trainee.train_on_batch(x, y),
                       "infer": lambda: model.predict_on_batch(x_plain)},
    }
    with setup.gradients():  # train's step is traced here, with train's gradients (training.conv_gradients)
        setup.trainee.train_on_batch(x, y)
    with matmul_conv_gradients(same_matmul):
        same_matmul.train_on_batch(x_plain, labels)
    for name, fns in runs.items():  # tracing, first-call allocations
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        log(f"warmed up {name}")
    times = {name: {"train": [], "infer": []} for name in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each round starts one stack later
            for kind, fn in runs[name].items():
                times[name][kind].append(float(np.median(_timed(fn, steps))))
        log(f"round {r + 1}/{rounds} done")
    rates = {name: {f"{kind}_pairs_per_s": round(batch / float(np.median(t)), 1) for kind, t in kinds.items()}
             for name, kinds in times.items()}
    for name in runs:
        rates[name]["infer_ms_per_pair"] = round(1e3 / rates[name]["infer_pairs_per_s"], 3)
    # A ratio is the median of the rounds' ratios: each round times every stack within seconds of
    # the others, so the host's drift between rounds (often 20 %) cancels; the range shows the rest.
    per_round = {f"{name}_over_torch_{kind}": [peer / own for peer, own in zip(times["torch_eager"][kind],
                                                                               times[name][kind], strict=True)]
                 for name in ("keras_same", "keras_matmul", "neipalette") for kind in ("train", "infer")}
    ratios = {key: round(float(np.median(v)), 2) for key, v in per_round.items()}
    ranges = {key: [round(min(v), 2), round(max(v), 2)] for key, v in per_round.items()}
    import torch  # the optional dependency: only here and in the peer

    return {"image_size": size, "batch_size": batch, "threads": threads, "steps": steps, "rounds": rounds,
            "torch": torch.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "rates": rates, "ratios": ratios, "ratio_ranges": ranges,
            "round_ratios": {key: [round(x, 3) for x in v] for key, v in per_round.items()}, "cpu": cpu_summary(as_dict=True)}
