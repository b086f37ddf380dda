"""Read and write `.tflite` flatbuffers as LiteRT's object tree (`schema.ModelT`), without TensorFlow.

Used by the graph edits of `export.tflite` (float16 files' small constants)
and `export.profile` (cuts of a graph), and by the tests that look inside
exported files.
"""

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

OPS = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def load(model_bytes):
    """`.tflite` bytes -> `schema.ModelT` (mutable: operators, tensors, buffers)."""
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))


def dump(model):
    """`schema.ModelT` -> `.tflite` bytes."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def opcodes(model, ops=None):
    """The builtin operator codes of `ops` (default: the first subgraph's), in order."""
    codes = model.operatorCodes
    ops = model.subgraphs[0].operators if ops is None else ops
    return [max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode) for op in ops]


def op_names(model_bytes):
    """The builtin op names of a `.tflite` file's first subgraph, in execution order."""
    return [OPS[code] for code in opcodes(load(model_bytes))]
