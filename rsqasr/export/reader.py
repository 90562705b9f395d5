"""Reading and validating the model file: every FORMAT.md rule the C loader
(``src_arm/app/model.c``) checks, checked here too, then the file's own integer reference.

    mf = read_model("exp/x/export/model_wino.rsq")    # ModelFile: meta, tokens, cmvn, intmodel
    logits = mf.intmodel.run(mf.normalize(feats))     # from the file alone
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from rsqasr.export.format import (ALIGN, CMVN_FLAGS, FBANK_LOG, FBANK_POWER, FBANK_RECORD, FBANK_REMOVE_DC,
                                  FBANK_SNIP_EDGES, FLAG_BIAS, FLAG_PER_CHANNEL, FLAG_RELU, HEADER_CRC_OFFSET,
                                  HEADER_SIZE, LAYER_OPS, LAYER_RECORD, MAGIC, MAX_SECTIONS, NODE_OPS, NODE_RECORD,
                                  OUTS, SCHEMES, SECTION_ENTRY, SECTION_HEAD, SECTIONS, TOKEN_TYPES, VERSION, WINDOWS,
                                  FbankRecord, Header, LayerRecord, ModelFormatError, NodeRecord, SectionEntry, unpack)
from rsqasr.quant.graph import Graph, Node
from rsqasr.quant.intref import IntLayer, IntModel
from rsqasr.quant.plan import LayerPlan, QuantPlan


@dataclass
class ModelFile:
    meta: dict
    tokens: list[str]
    token_type: str
    cmvn_mean: np.ndarray          # float32 [D]
    cmvn_std: np.ndarray           # float32 [D]
    intmodel: IntModel
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)   # tag -> (offset, size)
    fbank: FbankRecord | None = None   # FBNK (audio input), None in files without it

    @property
    def input_dim(self) -> int:
        return int(self.cmvn_mean.shape[0])

    def normalize(self, feats: np.ndarray) -> np.ndarray:
        return apply_cmvn(feats, self.cmvn_mean, self.cmvn_std)


def apply_cmvn(feats: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Global CMVN exactly as espnet2's GlobalMVN in float32: (x - mean) / std (a division)."""
    x = np.asarray(feats, dtype=np.float32)
    return ((x - mean.astype(np.float32)[None, :]) / std.astype(np.float32)[None, :]).astype(np.float32)


def _fail(path, msg: str) -> NoReturn:
    raise ModelFormatError(f"{path}: {msg}")


def _arr(path, data: bytes, off: int, count: int, dtype: str, what: str) -> np.ndarray:
    dt = np.dtype(dtype)
    if off % dt.itemsize or off < 0 or off + count * dt.itemsize > len(data):
        _fail(path, f"{what}: {count} x {dt} at DATA offset {off} is out of the section ({len(data)} bytes) "
                    f"or misaligned")
    return np.frombuffer(data, dtype=dt, count=count, offset=off).copy()


def _sections(path: Path, blob: bytes) -> dict[str, tuple[int, int]]:
    """The header's checks (FORMAT.md's order) and the section table: tag -> (offset, size)."""
    if len(blob) < HEADER_SIZE:
        _fail(path, f"truncated: {len(blob)} bytes, the header alone is {HEADER_SIZE}")
    h = unpack(Header, blob)
    if h.magic != MAGIC:
        _fail(path, f"not an rsqasr model file (magic {h.magic!r}, expected {MAGIC!r})")
    if h.version != VERSION:
        _fail(path, f"format version {h.version}, this reader supports {VERSION}")
    if zlib.crc32(blob[:HEADER_CRC_OFFSET]) != h.header_crc32:
        _fail(path, "header checksum mismatch (corrupt header)")
    if h.header_size != HEADER_SIZE or h.flags != 0:
        _fail(path, f"header size {h.header_size} / flags {h.flags} unsupported")
    if h.file_size != len(blob):
        _fail(path, f"file is {len(blob)} bytes, the header says {h.file_size} (truncated or padded)")
    if h.n_sections > MAX_SECTIONS or HEADER_SIZE + h.n_sections * SECTION_ENTRY > h.file_size:
        _fail(path, f"{h.n_sections} sections do not fit the file")
    if zlib.crc32(blob[HEADER_SIZE:]) != h.payload_crc32:
        _fail(path, "payload checksum mismatch (corrupt file)")
    secs: dict[str, tuple[int, int]] = {}
    table_end = HEADER_SIZE + h.n_sections * SECTION_ENTRY
    for i in range(h.n_sections):
        e = unpack(SectionEntry, blob, HEADER_SIZE + i * SECTION_ENTRY)
        t = e.tag.decode("latin-1")
        if t in secs:
            _fail(path, f"section {t} appears twice")
        if e.offset < table_end or e.offset % ALIGN or e.offset + e.size > h.file_size:
            _fail(path, f"section {t}: offset {e.offset} size {e.size} outside the file or misaligned")
        secs[t] = (e.offset, e.size)
    for t in SECTIONS:
        if t not in secs:
            _fail(path, f"section {t} missing")
    return secs


def _tokens(path: Path, tk: bytes) -> tuple[list[str], str]:
    if len(tk) < SECTION_HEAD.size:
        _fail(path, "TOKN too short")
    ntok, ttype = SECTION_HEAD.unpack_from(tk)
    if ttype >= len(TOKEN_TYPES):
        _fail(path, f"TOKN: token type {ttype} unknown")
    tokens, pos = [], SECTION_HEAD.size
    for i in range(ntok):
        if pos + 4 > len(tk):
            _fail(path, f"TOKN: token {i} truncated")
        n = int.from_bytes(tk[pos:pos + 4], "little")
        if n == 0 or n > 1024 or pos + 4 + n > len(tk):
            _fail(path, f"TOKN: token {i} has length {n}")
        try:
            tokens.append(tk[pos + 4:pos + 4 + n].decode("utf-8"))
        except UnicodeDecodeError:
            _fail(path, f"TOKN: token {i} is not UTF-8")
        pos += 4 + n
    return tokens, TOKEN_TYPES[ttype]


def _cmvn(path: Path, cm: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(cm) < SECTION_HEAD.size:
        _fail(path, "CMVN too short")
    dim, cflags = SECTION_HEAD.unpack_from(cm)
    if dim < 1 or dim > 65536 or cflags != CMVN_FLAGS or len(cm) != SECTION_HEAD.size + 8 * dim:
        _fail(path, f"CMVN: dim {dim} flags {cflags} size {len(cm)} inconsistent")
    mean = np.frombuffer(cm, "<f4", dim, SECTION_HEAD.size).astype(np.float32)
    std = np.frombuffer(cm, "<f4", dim, SECTION_HEAD.size + 4 * dim).astype(np.float32)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        _fail(path, "CMVN: mean/std not finite or std <= 0")
    return mean, std


def _fbank(path: Path, fb: bytes, dim: int) -> FbankRecord:
    """FBNK, with the checks of src_arm/app/fbank.c (rsqm_fbank_opts_check) and model.c."""
    if len(fb) != FBANK_RECORD:
        _fail(path, f"FBNK section of {len(fb)} bytes ({FBANK_RECORD} expected)")
    r = unpack(FbankRecord, fb)
    n = r.fft_size
    flags = FBANK_REMOVE_DC | FBANK_SNIP_EDGES | FBANK_POWER | FBANK_LOG
    if not (1000 <= r.sample_rate <= 384000 and 1 <= r.num_bins <= 1024 and 2 <= r.frame_length <= 65536
            and 1 <= r.frame_shift <= 65536):
        _fail(path, f"FBNK: sample rate {r.sample_rate}, {r.num_bins} bins, frame length {r.frame_length}, "
                    f"shift {r.frame_shift}: out of range")
    if n < r.frame_length or n > 65536 or n & (n - 1):
        _fail(path, f"FBNK: FFT size {n} is not a power of two >= the frame length {r.frame_length}")
    if r.window != WINDOWS.index("povey") or r.flags != flags or r.dither != 0.0:
        _fail(path, f"FBNK: window {r.window}, flags {r.flags:#x}, dither {r.dither}: not what the engine implements")
    if not (0.0 <= r.preemph <= 1.0 and 0.0 <= r.low_freq < r.high_freq <= r.sample_rate / 2
            and 0.0 < r.log_floor < float("inf")):
        _fail(path, f"FBNK: pre-emphasis {r.preemph}, mel range [{r.low_freq}, {r.high_freq}] Hz, log floor "
                    f"{r.log_floor}: out of range")
    if r.num_bins != dim:
        _fail(path, f"FBNK: {r.num_bins} mel bins, the CMVN section (the model's input) has dimension {dim}")
    return r


def _layer(path: Path, i: int, r: LayerRecord, names: list[str], data: bytes) -> tuple[LayerPlan, IntLayer]:
    """One LAYR record checked, with its arrays from DATA."""
    nl = len(names)
    name = names[i]
    where = f"layer {i} ({name})"
    if r.op >= len(LAYER_OPS) or r.scheme >= len(SCHEMES) or r.out >= len(OUTS):
        _fail(path, f"{where}: op/scheme/out code {r.op}/{r.scheme}/{r.out} unknown")
    cin, cout, k, groups, pl, pr = r.cin, r.cout, r.k, r.groups, r.pad_left, r.pad_right
    if not (1 <= cin <= 1 << 20 and 1 <= cout <= 1 << 20 and 1 <= k <= 4096 and r.stride in (1, 2)
            and groups >= 1 and cin % groups == 0 and cout % groups == 0 and 0 <= pl < k and 0 <= pr < k):
        _fail(path, f"{where}: shape cin={cin} cout={cout} k={k} stride={r.stride} groups={groups} "
                    f"pads={pl},{pr} invalid")
    sch = SCHEMES[r.scheme]
    lp = LayerPlan(name, LAYER_OPS[r.op], sch, cin, cout, k, r.stride, groups, pl, pr, r.act_T, r.w_T,
                   per_channel=bool(r.flags & FLAG_PER_CHANNEL), out=OUTS[r.out],
                   out_consumer=names[r.consumer] if 0 <= r.consumer < nl else None,
                   out_relu=bool(r.flags & FLAG_RELU))
    nw = cout * (cin // groups) * k
    wshape = (cout, cin // groups, k) if lp.op == "conv" else (cout, cin)
    if sch == "fp32":
        w = _arr(path, data, r.w_off, nw, "<f4", f"{where} weight").reshape(wshape)
        b = _arr(path, data, r.b_off, cout, "<f4", f"{where} bias") if r.flags & FLAG_BIAS else None
        return lp, IntLayer(lp, w.astype(np.float32), None if b is None else b.astype(np.float32))
    if not (1 <= r.w_T <= 127 and 1 <= r.act_T <= 127) or (sch == "wino23" and (r.w_T > 42 or r.act_T > 63)):
        _fail(path, f"{where}: ranges act ±{r.act_T} / w ±{r.w_T} invalid for {sch}")
    w = _arr(path, data, r.w_off, nw, "i1", f"{where} weight").astype(np.int64)
    if np.abs(w).max(initial=0) > r.w_T:
        _fail(path, f"{where}: integer weights outside ±{r.w_T}")
    b = _arr(path, data, r.b_off, cout, "<i4", f"{where} bias").astype(np.int64)
    s_w = _arr(path, data, r.sw_off, cout, "<f4", f"{where} weight scales")
    if not (np.isfinite(r.s_in) and r.s_in > 0):
        _fail(path, f"{where}: input scale {r.s_in} invalid")
    il = IntLayer(lp, w.reshape(wshape), b, np.float32(r.s_in), s_w if lp.per_channel else s_w[:1])
    if lp.out == "requant":
        il.M = _arr(path, data, r.m_off, cout, "<i4", f"{where} multipliers").astype(np.int64)
        il.shift = _arr(path, data, r.sh_off, cout, "<i4", f"{where} shifts").astype(np.int64)
        if np.any(il.M < 2 ** 30) or np.any(np.abs(il.shift) > 31):
            _fail(path, f"{where}: requantization multipliers out of range")
        if not (0 <= r.consumer < nl) or not (-127 <= r.lo <= r.hi <= 127):
            _fail(path, f"{where}: requant consumer {r.consumer} / range [{r.lo}, {r.hi}] invalid")
        il.lo, il.hi, il.s_out = int(r.lo), int(r.hi), np.float32(r.s_out)
    else:
        il.deq = _arr(path, data, r.m_off, cout, "<f4", f"{where} dequant scales")
    return lp, il


def _layers(path: Path, ly: bytes, data: bytes) -> tuple[list[LayerRecord], list[str], dict, dict]:
    """LAYR: the records, the layer names, and {name: LayerPlan}, {name: IntLayer}."""
    if len(ly) < SECTION_HEAD.size:
        _fail(path, "LAYR too short")
    nl, rec = SECTION_HEAD.unpack_from(ly)
    if rec != LAYER_RECORD or len(ly) != SECTION_HEAD.size + nl * rec or nl > 4096:
        _fail(path, f"LAYR: {nl} records of {rec} bytes do not fill {len(ly)} bytes")
    recs = [unpack(LayerRecord, ly, SECTION_HEAD.size + i * rec) for i in range(nl)]
    names = []
    for i, r in enumerate(recs):
        if r.name_len == 0 or r.name_off + r.name_len > len(data):
            _fail(path, f"layer {i}: name out of DATA")
        names.append(data[r.name_off:r.name_off + r.name_len].decode("utf-8", "replace"))
    layers: dict[str, LayerPlan] = {}
    ilayers: dict[str, IntLayer] = {}
    for i, r in enumerate(recs):
        layers[names[i]], ilayers[names[i]] = _layer(path, i, r, names, data)
    return recs, names, layers, ilayers


def _graph(path: Path, g: bytes, recs: list[LayerRecord], names: list[str], layers: dict[str, LayerPlan]) -> Graph:
    if len(g) < SECTION_HEAD.size:
        _fail(path, "GRPH too short")
    nn_, outn = SECTION_HEAD.unpack_from(g)
    if len(g) != SECTION_HEAD.size + nn_ * NODE_RECORD or nn_ == 0 or outn >= nn_:
        _fail(path, f"GRPH: {nn_} nodes / output {outn} / size {len(g)} inconsistent")
    nodes = []
    for i in range(nn_):
        r = unpack(NodeRecord, g, SECTION_HEAD.size + i * NODE_RECORD)
        if r.op >= len(NODE_OPS):
            _fail(path, f"GRPH node {i}: op {r.op} unknown")
        o = NODE_OPS[r.op]
        nin = {"input": 0, "add": 2}.get(o, 1)
        ins = [r.in0, r.in1][:nin]
        if any(not 0 <= j < i for j in ins):
            _fail(path, f"GRPH node {i} ({o}): inputs {ins} are not earlier nodes")
        attrs: dict = {}
        module = None
        if o in ("conv", "linear"):
            if not 0 <= r.layer < len(recs) or LAYER_OPS[recs[r.layer].op] != o:
                _fail(path, f"GRPH node {i} ({o}): layer {r.layer} invalid")
            module = names[r.layer]
            lp = layers[module]
            attrs = {"pad_left": lp.pad_left, "pad_right": lp.pad_right} if o == "conv" else {}
        elif o == "pad":
            if not (0 <= r.a0 < 65536 and 0 <= r.a1 < 65536):
                _fail(path, f"GRPH node {i}: pad {r.a0},{r.a1} invalid")
            attrs = {"left": r.a0, "right": r.a1}
        elif o == "transpose":
            attrs = {"dims": [1, 2]}
        nodes.append(Node(i, o, ins, module, attrs))
    return Graph(nodes, outn)


def read_model(path: str | Path) -> ModelFile:
    """Parse and validate a model file; raises ``ModelFormatError`` naming the file."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read: {e.strerror or e}") from e
    secs = _sections(path, blob)
    sec = {t: blob[o:o + s] for t, (o, s) in secs.items()}
    try:
        meta = json.loads(sec["META"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _fail(path, f"META is not UTF-8 JSON: {e}")
    tokens, token_type = _tokens(path, sec["TOKN"])
    mean, std = _cmvn(path, sec["CMVN"])
    recs, names, layers, ilayers = _layers(path, sec["LAYR"], sec["DATA"])
    graph = _graph(path, sec["GRPH"], recs, names, layers)
    plan = QuantPlan(str(meta.get("plan_kind", "?")), layers, graph, dict(meta.get("plan_options", {})))
    fbank = _fbank(path, sec["FBNK"], len(mean)) if "FBNK" in sec else None
    return ModelFile(meta, tokens, token_type, mean, std, IntModel(plan, ilayers), secs, fbank)
