"""Deployment exports of NeiPalette models (the commands: neipalette_tf/commands/export*.py).

| module          | what                                                              |
|-----------------|-------------------------------------------------------------------|
| `savedmodel`    | the exported functions (full model, encoder, head) and SavedModel |
| `tflite`        | LiteRT float32 / float16 / int8 files, from the SavedModel        |
| `onnx`          | ONNX files via tf2onnx (captures frozen: inputs exactly as declared) |
| `parity`        | every format against Keras on real test pairs                     |
| `model_card`    | `model_card.json`: tensors, preprocessing, source run, parity     |
| `exporter`      | the export: build in staging, check, publish atomically           |
| `bench`         | size / latency / throughput / accuracy of an export folder: the plan, goals |
| `bench_workers` | the benchmark's measurements, each in a fresh process         |
| `bench_report`  | `bench.md`: the benchmark as markdown tables                       |
| `profile`       | where a `.tflite` file's time goes, by layer scope                |
| `flatbuffer`    | `.tflite` files as LiteRT's object tree (read, edit, write), TF-free |

The formats are registered in `neipalette_tf.core.formats`. The TensorFlow-free runtime that reads these files is
`neipalette_tf.predictors.runtime`; the deployment guide is `docs/deployment.md`.
"""
