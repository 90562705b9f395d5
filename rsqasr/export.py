"""The engine's model file (``src_arm/FORMAT.md``): writer, reader, and the checked export.

    im, ref = build_intmodel(model, conf, "wino", quant_json)     # or "int8_gemm" / "none"
    write_model("exp/x/export/model_wino.rsq", im, text, conf, model, meta)
    mf = read_model("exp/x/export/model_wino.rsq")               # ModelFile: meta, tokens, cmvn, intmodel
    logits = mf.intmodel.run(mf.normalize(feats))                 # the integer reference, from the file alone

``export(...)`` does all of it for an experiment dir and, before it reports success, reads the
written file back and checks on a few utterances that the file's integer reference gives
exactly the logits of the in-memory ``IntModel`` and that they match the quantized PyTorch
model (the integer layers' outputs exactly, the FP32 layers within float tolerance).

The file is one little-endian blob: a 64-byte header (magic, version, sizes, CRC-32s), a
section table, and sections META (JSON), TOKN (token list), CMVN (mean, std), GRPH (the traced
graph the integer reference runs), LAYR (per-layer plan records) and DATA (weights, biases,
multipliers, scales). The C loader (``src_arm/src/model.c``) validates every field listed in
FORMAT.md; this reader checks the same things.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsqasr.quant.graph import Graph, Node
from rsqasr.quant.intref import IntLayer, IntModel, _Q
from rsqasr.quant.plan import LayerPlan, QuantPlan
from rsqasr.utils.fileio import atomic_write_bytes, replaceable

log = logging.getLogger(__name__)

MAGIC = b"RSQMODEL"
VERSION = 1
HEADER_SIZE = 64
SECTION_ENTRY = 32
LAYER_RECORD = 128
NODE_RECORD = 24
ALIGN = 16
SECTIONS = ("META", "TOKN", "CMVN", "GRPH", "LAYR", "DATA")
VARIANTS = ("none", "int8_gemm", "wino")

NODE_OPS = ("input", "transpose", "pad", "relu", "add", "conv", "linear")
LAYER_OPS = ("conv", "linear")
SCHEMES = ("fp32", "int8", "wino23")
OUTS = ("float", "requant")
TOKEN_TYPES = ("char", "bpe")
FLAG_BIAS, FLAG_PER_CHANNEL, FLAG_RELU = 1, 2, 4

_HEADER = struct.Struct("<8sIIQIII24sI")         # magic .. reserved, header_crc32: 64 bytes
_ENTRY = struct.Struct("<4sIQQQ")                 # tag, reserved, offset, size, reserved
_NODE = struct.Struct("<Iiiiii")                  # op, in0, in1, layer, a0, a1
_LAYER = struct.Struct("<IIiiiiiiiiiIiiiIffIIQQQQQII")   # 128 bytes, FORMAT.md "LAYR"
assert _HEADER.size == HEADER_SIZE and _ENTRY.size == SECTION_ENTRY
assert _NODE.size == NODE_RECORD and _LAYER.size == LAYER_RECORD


class ModelFormatError(ValueError):
    """A model file that is not a valid rsqasr engine model; the message names the file."""


class ExportCheckError(ValueError):
    """The written file does not reproduce the quantized model's logits."""


@dataclass
class ModelFile:
    meta: dict
    tokens: list[str]
    token_type: str
    cmvn_mean: np.ndarray          # float32 [D]
    cmvn_std: np.ndarray           # float32 [D]
    intmodel: IntModel
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)   # tag -> (offset, size)

    @property
    def input_dim(self) -> int:
        return int(self.cmvn_mean.shape[0])

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        return apply_cmvn(feats, self.cmvn_mean, self.cmvn_std)


def apply_cmvn(feats: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Global CMVN exactly as espnet2's GlobalMVN in float32: (x - mean) / std (a division)."""
    x = np.asarray(feats, dtype=np.float32)
    return ((x - mean.astype(np.float32)[None, :]) / std.astype(np.float32)[None, :]).astype(np.float32)


# ---------------------------------------------------------------- plans
def fp32_plan(net) -> QuantPlan:
    """The plan of the FP32 export: the traced graph of ``net`` (BatchNorm folded in place, as
    for quantization) with every layer ``fp32``."""
    from rsqasr.quant.plan import make_plan

    plan = make_plan(net, kind="int8_gemm")
    for lp in plan.layers.values():
        lp.scheme, lp.act_T, lp.w_T, lp.per_channel = "fp32", 0, 0, False
        lp.out, lp.out_consumer, lp.out_relu = "float", None, False
    plan.kind = "fp32"
    return plan


def fp32_intmodel(net) -> IntModel:
    """An ``IntModel`` whose layers are all FP32 (runs the float network in numpy)."""
    plan = fp32_plan(net)
    layers = {}
    for lp in plan.layers.values():
        m = net.get_submodule(lp.name)
        w = m.weight.detach().float().cpu().numpy().copy()
        b = m.bias.detach().float().cpu().numpy().copy() if m.bias is not None else None
        layers[lp.name] = IntLayer(lp, w, b)
    return IntModel(plan, layers)


# ---------------------------------------------------------------- writing
class _Blob:
    def __init__(self):
        self.buf = bytearray()

    def add(self, data: bytes) -> int:
        pad = (-len(self.buf)) % ALIGN
        self.buf += b"\0" * pad
        off = len(self.buf)
        self.buf += data
        return off


def _le(a: np.ndarray, dtype: str) -> bytes:
    return np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def encode_model(im: IntModel, tokens: list[str], token_type: str, cmvn_mean: np.ndarray,
                 cmvn_std: np.ndarray, meta: dict) -> bytes:
    """The bytes of a model file (FORMAT.md) holding ``im`` and its front/back ends."""
    plan = im.plan
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
    names = list(plan.layers)
    index = {n: i for i, n in enumerate(names)}
    data = _Blob()
    layr = bytearray(struct.pack("<II", len(names), LAYER_RECORD))
    for name in names:
        lp, il = plan.layers[name], im.layers[name]
        flags = (FLAG_BIAS if il.b is not None else 0) | (FLAG_PER_CHANNEL if lp.per_channel else 0) \
            | (FLAG_RELU if lp.out_relu else 0)
        name_b = name.encode("utf-8")
        name_off = data.add(name_b)
        k, stride, groups = (lp.k, lp.stride, lp.groups) if lp.op == "conv" else (1, 1, 1)
        pads = (lp.pad_left, lp.pad_right) if lp.op == "conv" else (0, 0)
        cin_g = lp.cin // groups
        wshape = (lp.cout, cin_g, k) if lp.op == "conv" else (lp.cout, lp.cin)
        if tuple(il.w.shape) != wshape:
            raise ValueError(f"{name}: weight shape {il.w.shape}, plan says {wshape}")
        m_off = sh_off = sw_off = 0
        s_in = s_out = 0.0
        lo = hi = 0
        consumer = -1
        if lp.quantized:
            w = np.asarray(il.w)
            if np.abs(w).max(initial=0) > lp.w_T:
                raise ValueError(f"{name}: integer weights outside ±{lp.w_T}")
            w_off = data.add(_le(w.astype(np.int8), "i1"))
            b_off = data.add(_le(np.asarray(il.b, dtype=np.int64).astype(np.int32), "<i4"))
            s_in = float(np.float32(il.s_in))
            s_w = np.broadcast_to(np.asarray(il.s_w, dtype=np.float32).reshape(-1), (lp.cout,))
            sw_off = data.add(_le(s_w, "<f4"))
            if lp.out == "requant":
                m_off = data.add(_le(np.asarray(il.M, dtype=np.int64).astype(np.int32), "<i4"))
                sh_off = data.add(_le(np.asarray(il.shift, dtype=np.int64).astype(np.int32), "<i4"))
                lo, hi, s_out = int(il.lo), int(il.hi), float(np.float32(il.s_out))
                consumer = index[lp.out_consumer]
            else:
                m_off = data.add(_le(np.asarray(il.deq, dtype=np.float32), "<f4"))
        else:
            w_off = data.add(_le(np.asarray(il.w, dtype=np.float32), "<f4"))
            b_off = data.add(_le(np.asarray(il.b, dtype=np.float32), "<f4")) if il.b is not None else 0
        layr += _LAYER.pack(LAYER_OPS.index(lp.op), SCHEMES.index(lp.scheme), lp.cin, lp.cout, k, stride, groups,
                            pads[0], pads[1], lp.act_T, lp.w_T, OUTS.index(lp.out), lo, hi, consumer, flags,
                            s_in, s_out, name_off, len(name_b), w_off, b_off, m_off, sh_off, sw_off, 0, 0)
    # graph: node ids renumbered densely in (topological) order
    nid = {n.id: i for i, n in enumerate(plan.graph.nodes)}
    grph = bytearray(struct.pack("<II", len(plan.graph.nodes), nid[plan.graph.output]))
    for n in plan.graph.nodes:
        ins = [nid[i] for i in n.inputs] + [-1, -1]
        layer, a0, a1 = -1, 0, 0
        if n.op in ("conv", "linear"):
            layer = index[n.module]
        elif n.op == "pad":
            a0, a1 = int(n.attrs["left"]), int(n.attrs["right"])
        elif n.op == "transpose" and list(n.attrs.get("dims", [])) != [1, 2]:
            raise ValueError(f"transpose {n.attrs.get('dims')} is not supported by the engine")
        elif n.op not in NODE_OPS:
            raise ValueError(f"graph node op {n.op!r} is not supported by the engine")
        grph += _NODE.pack(NODE_OPS.index(n.op), ins[0], ins[1], layer, a0, a1)
    tokn = bytearray(struct.pack("<II", len(tokens), TOKEN_TYPES.index(token_type)))
    for t in tokens:
        tb = t.encode("utf-8")
        tokn += struct.pack("<I", len(tb)) + tb
    mean = np.asarray(cmvn_mean, dtype=np.float32).reshape(-1)
    std = np.asarray(cmvn_std, dtype=np.float32).reshape(-1)
    cmvn = struct.pack("<II", mean.shape[0], 3) + _le(mean, "<f4") + _le(std, "<f4")
    meta_b = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
    payloads = {"META": meta_b, "TOKN": bytes(tokn), "CMVN": cmvn, "GRPH": bytes(grph), "LAYR": bytes(layr),
                "DATA": bytes(data.buf)}
    table_end = HEADER_SIZE + SECTION_ENTRY * len(payloads)
    body = bytearray()
    entries = bytearray()
    pos = table_end
    for tag in SECTIONS:
        pad = (-pos) % ALIGN
        body += b"\0" * pad
        pos += pad
        entries += _ENTRY.pack(tag.encode("ascii"), 0, pos, len(payloads[tag]), 0)
        body += payloads[tag]
        pos += len(payloads[tag])
    rest = bytes(entries) + bytes(body)
    file_size = HEADER_SIZE + len(rest)
    head = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, file_size, len(payloads), zlib.crc32(rest), 0, b"\0" * 24, 0)
    head = head[:60] + struct.pack("<I", zlib.crc32(head[:60]))
    return head + rest


def write_model(path: str | Path, im: IntModel, tokens: list[str], token_type: str, cmvn_mean: np.ndarray,
                cmvn_std: np.ndarray, meta: dict) -> int:
    """Write the model file atomically (temp file + rename); returns its size in bytes."""
    blob = encode_model(im, tokens, token_type, cmvn_mean, cmvn_std, meta)
    atomic_write_bytes(path, blob)
    return len(blob)


# ---------------------------------------------------------------- reading
def _fail(path, msg: str):
    raise ModelFormatError(f"{path}: {msg}")


def _arr(path, data: bytes, off: int, count: int, dtype: str, what: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if off % dt.itemsize or off < 0 or off + count * dt.itemsize > len(data):
        _fail(path, f"{what}: {count} x {dt} at DATA offset {off} is out of the section ({len(data)} bytes) "
                    f"or misaligned")
    return np.frombuffer(data, dtype=dt, count=count, offset=off).copy()


def read_model(path: str | Path) -> ModelFile:
    """Parse and validate a model file; raises ``ModelFormatError`` naming the file."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read: {e.strerror or e}") from e
    if len(blob) < HEADER_SIZE:
        _fail(path, f"truncated: {len(blob)} bytes, the header alone is {HEADER_SIZE}")
    magic, version, hsize, fsize, nsec, pcrc, flags, _, hcrc = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        _fail(path, f"not an rsqasr model file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        _fail(path, f"format version {version}, this reader supports {VERSION}")
    if zlib.crc32(blob[:60]) != hcrc:
        _fail(path, "header checksum mismatch (corrupt header)")
    if hsize != HEADER_SIZE or flags != 0:
        _fail(path, f"header size {hsize} / flags {flags} unsupported")
    if fsize != len(blob):
        _fail(path, f"file is {len(blob)} bytes, the header says {fsize} (truncated or padded)")
    if nsec > 64 or HEADER_SIZE + nsec * SECTION_ENTRY > fsize:
        _fail(path, f"{nsec} sections do not fit the file")
    if zlib.crc32(blob[HEADER_SIZE:]) != pcrc:
        _fail(path, "payload checksum mismatch (corrupt file)")
    secs: dict[str, tuple[int, int]] = {}
    table_end = HEADER_SIZE + nsec * SECTION_ENTRY
    for i in range(nsec):
        tag, _, off, size, _ = _ENTRY.unpack_from(blob, HEADER_SIZE + i * SECTION_ENTRY)
        t = tag.decode("latin-1")
        if t in secs:
            _fail(path, f"section {t} appears twice")
        if off < table_end or off % ALIGN or off + size > fsize:
            _fail(path, f"section {t}: offset {off} size {size} outside the file or misaligned")
        secs[t] = (off, size)
    for t in SECTIONS:
        if t not in secs:
            _fail(path, f"section {t} missing")
    sec = {t: blob[o:o + s] for t, (o, s) in secs.items()}
    try:
        meta = json.loads(sec["META"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"META is not UTF-8 JSON: {e}")
    # tokens
    tk = sec["TOKN"]
    if len(tk) < 8:
        _fail(path, "TOKN too short")
    ntok, ttype = struct.unpack_from("<II", tk)
    if ttype >= len(TOKEN_TYPES):
        _fail(path, f"TOKN: token type {ttype} unknown")
    tokens, pos = [], 8
    for i in range(ntok):
        if pos + 4 > len(tk):
            _fail(path, f"TOKN: token {i} truncated")
        (n,) = struct.unpack_from("<I", tk, pos)
        if n == 0 or n > 1024 or pos + 4 + n > len(tk):
            _fail(path, f"TOKN: token {i} has length {n}")
        try:
            tokens.append(tk[pos + 4:pos + 4 + n].decode("utf-8"))
        except UnicodeDecodeError:
            _fail(path, f"TOKN: token {i} is not UTF-8")
        pos += 4 + n
    # cmvn
    cm = sec["CMVN"]
    if len(cm) < 8:
        _fail(path, "CMVN too short")
    dim, cflags = struct.unpack_from("<II", cm)
    if dim < 1 or dim > 65536 or cflags != 3 or len(cm) != 8 + 8 * dim:
        _fail(path, f"CMVN: dim {dim} flags {cflags} size {len(cm)} inconsistent")
    mean = np.frombuffer(cm, "<f4", dim, 8).astype(np.float32)
    std = np.frombuffer(cm, "<f4", dim, 8 + 4 * dim).astype(np.float32)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        _fail(path, "CMVN: mean/std not finite or std <= 0")
    # layers
    ly, data = sec["LAYR"], sec["DATA"]
    if len(ly) < 8:
        _fail(path, "LAYR too short")
    nl, rec = struct.unpack_from("<II", ly)
    if rec != LAYER_RECORD or len(ly) != 8 + nl * rec or nl > 4096:
        _fail(path, f"LAYR: {nl} records of {rec} bytes do not fill {len(ly)} bytes")
    recs = [_LAYER.unpack_from(ly, 8 + i * rec) for i in range(nl)]
    names = []
    for i, r in enumerate(recs):
        noff, nlen = r[18], r[19]
        if nlen == 0 or noff + nlen > len(data):
            _fail(path, f"layer {i}: name out of DATA")
        names.append(data[noff:noff + nlen].decode("utf-8", "replace"))
    layers: dict[str, LayerPlan] = {}
    ilayers: dict[str, IntLayer] = {}
    for i, r in enumerate(recs):
        (op, scheme, cin, cout, k, stride, groups, pl, pr, act_T, w_T, out, lo, hi, consumer, flags,
         s_in, s_out, _, _, w_off, b_off, m_off, sh_off, sw_off, _, _) = r
        name = names[i]
        where = f"layer {i} ({name})"
        if op >= len(LAYER_OPS) or scheme >= len(SCHEMES) or out >= len(OUTS):
            _fail(path, f"{where}: op/scheme/out code {op}/{scheme}/{out} unknown")
        if not (1 <= cin <= 1 << 20 and 1 <= cout <= 1 << 20 and 1 <= k <= 4096 and stride in (1, 2)
                and groups >= 1 and cin % groups == 0 and cout % groups == 0 and 0 <= pl < k and 0 <= pr < k):
            _fail(path, f"{where}: shape cin={cin} cout={cout} k={k} stride={stride} groups={groups} "
                        f"pads={pl},{pr} invalid")
        sch = SCHEMES[scheme]
        lp = LayerPlan(name, LAYER_OPS[op], sch, cin, cout, k, stride, groups, pl, pr, act_T, w_T,
                       per_channel=bool(flags & FLAG_PER_CHANNEL), out=OUTS[out],
                       out_consumer=names[consumer] if 0 <= consumer < nl else None, out_relu=bool(flags & FLAG_RELU))
        nw = cout * (cin // groups) * k
        wshape = (cout, cin // groups, k) if lp.op == "conv" else (cout, cin)
        if sch == "fp32":
            w = _arr(path, data, w_off, nw, "<f4", f"{where} weight").reshape(wshape)
            b = _arr(path, data, b_off, cout, "<f4", f"{where} bias") if flags & FLAG_BIAS else None
            il = IntLayer(lp, w.astype(np.float32), None if b is None else b.astype(np.float32))
        else:
            if not (1 <= w_T <= 127 and 1 <= act_T <= 127) or (sch == "wino23" and (w_T > 42 or act_T > 63)):
                _fail(path, f"{where}: ranges act ±{act_T} / w ±{w_T} invalid for {sch}")
            w = _arr(path, data, w_off, nw, "i1", f"{where} weight").astype(np.int64)
            if np.abs(w).max(initial=0) > w_T:
                _fail(path, f"{where}: integer weights outside ±{w_T}")
            b = _arr(path, data, b_off, cout, "<i4", f"{where} bias").astype(np.int64)
            s_w = _arr(path, data, sw_off, cout, "<f4", f"{where} weight scales")
            if not (np.isfinite(s_in) and s_in > 0):
                _fail(path, f"{where}: input scale {s_in} invalid")
            il = IntLayer(lp, w.reshape(wshape), b, np.float32(s_in), s_w if lp.per_channel else s_w[:1])
            if lp.out == "requant":
                il.M = _arr(path, data, m_off, cout, "<i4", f"{where} multipliers").astype(np.int64)
                il.shift = _arr(path, data, sh_off, cout, "<i4", f"{where} shifts").astype(np.int64)
                if np.any(il.M < 2 ** 30) or np.any(np.abs(il.shift) > 31):
                    _fail(path, f"{where}: requantization multipliers out of range")
                if not (0 <= consumer < nl) or not (-127 <= lo <= hi <= 127):
                    _fail(path, f"{where}: requant consumer {consumer} / range [{lo}, {hi}] invalid")
                il.lo, il.hi, il.s_out = int(lo), int(hi), np.float32(s_out)
            else:
                il.deq = _arr(path, data, m_off, cout, "<f4", f"{where} dequant scales")
        layers[name] = lp
        ilayers[name] = il
    # graph
    g = sec["GRPH"]
    if len(g) < 8:
        _fail(path, "GRPH too short")
    nn_, outn = struct.unpack_from("<II", g)
    if len(g) != 8 + nn_ * NODE_RECORD or nn_ == 0 or outn >= nn_:
        _fail(path, f"GRPH: {nn_} nodes / output {outn} / size {len(g)} inconsistent")
    nodes = []
    for i in range(nn_):
        op, in0, in1, layer, a0, a1 = _NODE.unpack_from(g, 8 + i * NODE_RECORD)
        if op >= len(NODE_OPS):
            _fail(path, f"GRPH node {i}: op {op} unknown")
        o = NODE_OPS[op]
        nin = {"input": 0, "add": 2}.get(o, 1)
        ins = [in0, in1][:nin]
        if any(not 0 <= j < i for j in ins):
            _fail(path, f"GRPH node {i} ({o}): inputs {ins} are not earlier nodes")
        attrs: dict = {}
        module = None
        if o in ("conv", "linear"):
            if not 0 <= layer < nl or LAYER_OPS[recs[layer][0]] != o:
                _fail(path, f"GRPH node {i} ({o}): layer {layer} invalid")
            module = names[layer]
            lp = layers[module]
            attrs = {"pad_left": lp.pad_left, "pad_right": lp.pad_right} if o == "conv" else {}
        elif o == "pad":
            if not (0 <= a0 < 65536 and 0 <= a1 < 65536):
                _fail(path, f"GRPH node {i}: pad {a0},{a1} invalid")
            attrs = {"left": a0, "right": a1}
        elif o == "transpose":
            attrs = {"dims": [1, 2]}
        nodes.append(Node(i, o, ins, module, attrs))
    plan = QuantPlan(str(meta.get("plan_kind", "?")), layers, Graph(nodes, outn), dict(meta.get("plan_options", {})))
    return ModelFile(meta, tokens, TOKEN_TYPES[ttype], mean, std, IntModel(plan, ilayers), secs)


# ---------------------------------------------------------------- building from an experiment
def build_intmodel(model, conf: dict, quant: str, quant_json: str | Path | None = None):
    """The ``IntModel`` of the requested variant and the PyTorch network it must reproduce.

    ``quant``: ``none`` (FP32 experiment: every layer fp32), ``int8_gemm`` or ``wino``: an RSQ
    experiment (its own plan and learned scales, as ``rsqasr.bin.decode`` uses it) or an FP32
    experiment plus ``quant_json`` (PTQ plan and scales from ``rsqasr.bin.quantize``).
    Returns ``(intmodel, torch_net)``; ``torch_net`` is in eval mode, quantized ones in the
    "exact" fake-quant mode (the integer reference's rounding points)."""
    import copy

    from rsqasr.quant import load_quant, quantize_model, set_mode

    net = model.net
    if quant not in VARIANTS:
        raise ValueError(f"--quant must be one of {VARIANTS}, got {quant!r}")
    rsq = hasattr(net, "quant_plan")
    if quant == "none":
        if rsq:
            raise ValueError("--quant none exports an FP32 experiment; this one is quantization-aware (RSQ)")
        im = fp32_intmodel(net)             # folds BatchNorm of net in place: net is the reference
        return im, net.eval()
    if rsq:
        if quant_json:
            raise ValueError("--quant_json is for FP32 experiments (PTQ); this experiment is RSQ")
        if net.quant_plan.kind != quant:
            raise ValueError(f"this RSQ experiment has a {net.quant_plan.kind!r} plan, not {quant!r}")
        qnet = net
    else:
        if not quant_json:
            raise ValueError(f"--quant {quant} of an FP32 experiment needs --quant_json (PTQ plan + scales "
                             f"from rsqasr.bin.quantize)")
        try:
            plan, scales = load_quant(quant_json)
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"{quant_json}: cannot read the quantization plan: {e}") from e
        if plan.kind != quant:
            raise ValueError(f"{quant_json}: a {plan.kind!r} plan, not {quant!r}")
        qnet = quantize_model(copy.deepcopy(net).cpu(), plan, scales)
    im = IntModel.from_fake_quant(qnet)
    set_mode(qnet, "exact")
    return im, qnet.eval()


def _token_type(conf: dict) -> str:
    tt = conf.get("token_type", "char")
    if tt not in TOKEN_TYPES:
        raise ValueError(f"token_type {tt!r} is not supported by the engine ({TOKEN_TYPES})")
    return tt


def make_meta(conf: dict, im: IntModel, variant: str, source: dict) -> dict:
    return {"format": "rsqasr-engine-model", "format_version": VERSION, "variant": variant,
            "model": conf["model"], "input_dim": int(conf["input_dim"]), "vocab_size": int(conf["vocab_size"]),
            "token_type": conf.get("token_type", "char"), "plan_kind": im.plan.kind,
            "plan_options": im.plan.options, "frame_shift_ms": 10, "source": source,
            "layers": {n: {"scheme": lp.scheme, "out": lp.out} for n, lp in im.plan.layers.items()}}


# ---------------------------------------------------------------- the check
def _dequant(v) -> np.ndarray:
    return v.q.astype(np.float32) * v.s if isinstance(v, _Q) else np.asarray(v, dtype=np.float32)


def check_model_file(mf: ModelFile, im: IntModel, model, torch_net, utts: list[tuple[str, np.ndarray]],
                     rtol: float = 1e-4) -> dict:
    """Run the file's integer reference on ``utts`` (raw features) and compare with ``im`` (exact)
    and the PyTorch network (integer layers exact, FP32 layers within ``rtol`` of max |logit|).
    Returns a summary; raises ``ExportCheckError`` on a mismatch."""
    import torch

    from rsqasr.ctc_model import greedy_ids

    quantized = any(lp.quantized for lp in im.plan.layers.values())
    fp32_nodes = [n for n in mf.intmodel.plan.graph.nodes
                  if n.op in ("conv", "linear") and not mf.intmodel.plan.layers[n.module].quantized]
    worst, n_greedy = 0.0, 0
    for utt, feats in utts:
        x = torch.from_numpy(np.array(feats, dtype=np.float32))[None]
        with torch.no_grad():
            xn, _ = model.normalize(x.clone(), torch.tensor([x.shape[1]]))
        xn = xn[0].numpy()
        mine = mf.normalize(feats)
        if not np.array_equal(mine, xn):
            raise ExportCheckError(f"{utt}: the file's CMVN differs from the model's GlobalMVN")
        got, vals = mf.intmodel.run(mine, return_values=True)
        want = im.run(xn)
        if got.shape != want.shape or not np.array_equal(got, want):
            raise ExportCheckError(f"{utt}: logits of the file's integer reference differ from the in-memory model")
        # PyTorch: capture the inputs of FP32 layers (the integer layers' outputs)
        caught: dict[str, np.ndarray] = {}
        hooks = [torch_net.get_submodule(n.module).register_forward_pre_hook(
            lambda m, i, name=n.module: caught.__setitem__(name, i[0][0].detach().numpy().copy()))
            for n in fp32_nodes] if quantized else []
        try:
            with torch.no_grad():
                out = torch_net(torch.from_numpy(xn)[None], torch.tensor([xn.shape[0]]))
        finally:
            for h in hooks:
                h.remove()
        ref = (out[0] if isinstance(out, (tuple, list)) else out)[0].numpy()
        if quantized and fp32_nodes:   # the first FP32 layer sees only integer-layer outputs: exact
            first = fp32_nodes[0]
            v = _dequant(vals[first.inputs[0]])
            if not np.array_equal(v, caught[first.module]):
                raise ExportCheckError(f"{utt}: input of FP32 layer {first.module} differs from the quantized "
                                       f"PyTorch model's (integer layers must be exact)")
        scale = max(float(np.abs(ref).max()), 1e-30)
        diff = float(np.abs(got - ref).max()) / scale if got.shape == ref.shape else float("inf")
        if diff > rtol:
            raise ExportCheckError(f"{utt}: logits differ from the PyTorch model by {diff:.2e} of max|logit| "
                                   f"(tolerance {rtol:g})")
        worst = max(worst, diff)
        n_greedy += greedy_ids(torch.from_numpy(got)[None], torch.tensor([got.shape[0]])) == \
            greedy_ids(torch.from_numpy(ref)[None], torch.tensor([ref.shape[0]]))
    return {"utterances": len(utts), "max_rel_diff_vs_torch": worst, "greedy_equal_vs_torch": n_greedy}


def check_utterances(data_dir: str | Path, num: int, min_frames: int) -> list[tuple[str, np.ndarray]]:
    """The first ``num`` utterances (sorted keys) of ``data_dir/feats.scp`` with >= min_frames frames."""
    import kaldiio

    from rsqasr.data.datadir import DataDirError, read_kv

    scp = Path(data_dir) / "feats.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp}: not found (--check_data_dir needs feats.scp)")
    out = []
    for utt, entry in sorted(read_kv(scp).items()):
        try:
            m = np.asarray(kaldiio.load_mat(entry), dtype=np.float32)
        except Exception as e:  # noqa: BLE001
            raise DataDirError(f"{scp}: cannot read features of '{utt}': {e}") from e
        if m.ndim == 2 and m.shape[0] >= min_frames:
            out.append((utt, m))
        if len(out) >= num:
            break
    if not out:
        raise DataDirError(f"{scp}: no utterance with at least {min_frames} frames to check the export on")
    return out


def export(exp_dir: str | Path, model_file: str | Path, out: str | Path, quant: str = "none",
           quant_json: str | Path | None = None, check_data_dir: str | Path | None = None,
           check_utts: int = 3) -> dict:
    """Export a trained model to ``out`` and check it (see the module docstring)."""
    from rsqasr.inference import load_asr

    exp_dir = Path(exp_dir)
    model, text, conf = load_asr(exp_dir, model_file)
    im, torch_net = build_intmodel(model, conf, quant, quant_json)
    if len(text.tokens) != conf["vocab_size"]:
        raise ValueError(f"{exp_dir}/tokens.txt has {len(text.tokens)} tokens, the model {conf['vocab_size']}")
    mean = model.normalize.mean.detach().cpu().numpy().astype(np.float32)
    std = model.normalize.std.detach().cpu().numpy().astype(np.float32)
    meta = make_meta(conf, im, quant, {"exp_dir": str(exp_dir), "model": str(model_file),
                                       "quant_json": str(quant_json) if quant_json else None})
    blob = encode_model(im, list(text.tokens), _token_type(conf), mean, std, meta)
    out = Path(out)
    tmp_check = out.with_name(f".{out.name}.check")
    report = {"file": str(out), "bytes": len(blob), "variant": quant}
    try:
        atomic_write_bytes(tmp_check, blob)      # check the bytes as they lie on disk, then publish
        mf = read_model(tmp_check)
        if check_data_dir:
            utts = check_utterances(check_data_dir, check_utts, model.net.min_input_frames)
            report["check"] = check_model_file(mf, im, model, torch_net, utts)
        if replaceable(out):
            tmp_check.replace(out)               # rename: atomic, the old file stays until here
        else:
            atomic_write_bytes(out, blob)        # a device, FIFO or symlink: written through, never renamed over
    finally:
        tmp_check.unlink(missing_ok=True)
    return report
