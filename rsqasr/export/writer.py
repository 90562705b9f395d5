"""Writing the model file: an ``IntModel`` and its front and back ends as FORMAT.md bytes.

    write_model("exp/x/export/model_wino.rsq", im, tokens, "char", cmvn_mean, cmvn_std, meta)
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from rsqasr.export.format import (ALIGN, CMVN_FLAGS, FBANK_LOG, FBANK_POWER, FBANK_REMOVE_DC, FBANK_SNIP_EDGES,
                                  FLAG_BIAS, FLAG_PER_CHANNEL, FLAG_RELU, HEADER_CRC_OFFSET, HEADER_SIZE, LAYER_OPS,
                                  LAYER_RECORD, MAGIC, NODE_OPS, OPTIONAL_SECTIONS, OUTS, SCHEMES, SECTION_ENTRY,
                                  SECTION_HEAD, SECTIONS, TOKEN_TYPES, VERSION, WINDOWS, FbankRecord, Header,
                                  LayerRecord, NodeRecord, SectionEntry, pack)
from rsqasr.quant.graph import Graph
from rsqasr.quant.intref import IntLayer, IntModel
from rsqasr.quant.plan import LayerPlan
from rsqasr.utils.fileio import atomic_write_bytes


class _Blob:
    """The DATA section being built: arrays appended at offsets aligned to ALIGN."""

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


def _layer_record(lp: LayerPlan, il: IntLayer, index: dict[str, int], data: _Blob) -> LayerRecord:
    """The LAYR record of one layer; its name and arrays go into ``data``."""
    name_b = lp.name.encode("utf-8")
    name_off = data.add(name_b)
    k, stride, groups = (lp.k, lp.stride, lp.groups) if lp.op == "conv" else (1, 1, 1)
    pads = (lp.pad_left, lp.pad_right) if lp.op == "conv" else (0, 0)
    wshape = (lp.cout, lp.cin // groups, k) if lp.op == "conv" else (lp.cout, lp.cin)
    if tuple(il.w.shape) != wshape:
        raise ValueError(f"{lp.name}: weight shape {il.w.shape}, plan says {wshape}")
    m_off = sh_off = sw_off = 0
    s_in = s_out = 0.0
    lo = hi = 0
    consumer = -1
    if lp.quantized:
        w = np.asarray(il.w)
        if np.abs(w).max(initial=0) > lp.w_T:
            raise ValueError(f"{lp.name}: integer weights outside ±{lp.w_T}")
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
    flags = (FLAG_BIAS if il.b is not None else 0) | (FLAG_PER_CHANNEL if lp.per_channel else 0) \
        | (FLAG_RELU if lp.out_relu else 0)
    return LayerRecord(
        op=LAYER_OPS.index(lp.op), scheme=SCHEMES.index(lp.scheme), cin=lp.cin, cout=lp.cout, k=k, stride=stride,
        groups=groups, pad_left=pads[0], pad_right=pads[1], act_T=lp.act_T, w_T=lp.w_T, out=OUTS.index(lp.out),
        lo=lo, hi=hi, consumer=consumer, flags=flags, s_in=s_in, s_out=s_out, name_off=name_off,
        name_len=len(name_b), w_off=w_off, b_off=b_off, m_off=m_off, sh_off=sh_off, sw_off=sw_off,
        reserved0=0, reserved1=0)


def _graph_section(graph: Graph, index: dict[str, int]) -> bytes:
    """GRPH: node ids renumbered densely in (topological) order."""
    nid = {n.id: i for i, n in enumerate(graph.nodes)}
    grph = bytearray(SECTION_HEAD.pack(len(graph.nodes), nid[graph.output]))
    for n in graph.nodes:
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
        grph += pack(NodeRecord(op=NODE_OPS.index(n.op), in0=ins[0], in1=ins[1], layer=layer, a0=a0, a1=a1))
    return bytes(grph)


def _tokens_section(tokens: list[str], token_type: str) -> bytes:
    tokn = bytearray(SECTION_HEAD.pack(len(tokens), TOKEN_TYPES.index(token_type)))
    for t in tokens:
        tb = t.encode("utf-8")
        tokn += len(tb).to_bytes(4, "little") + tb
    return bytes(tokn)


def _cmvn_section(cmvn_mean: np.ndarray, cmvn_std: np.ndarray) -> bytes:
    mean = np.asarray(cmvn_mean, dtype=np.float32).reshape(-1)
    std = np.asarray(cmvn_std, dtype=np.float32).reshape(-1)
    return SECTION_HEAD.pack(mean.shape[0], CMVN_FLAGS) + _le(mean, "<f4") + _le(std, "<f4")


def fbank_record(settings: dict) -> FbankRecord:
    """FBNK from ``rsqasr.features.fbank.fbank_settings``: lengths in samples, the FFT size, the
    mel range in absolute Hz. Options the engine does not implement are refused here, naming
    the option, rather than exported into a model whose audio input would then be refused."""
    s = settings
    fixed = {"window_type": "povey", "remove_dc_offset": True, "snip_edges": True, "round_to_power_of_two": True,
             "use_power": True, "use_log_fbank": True, "use_energy": False, "dither": 0.0}
    for k, v in fixed.items():
        if s[k] != v:
            raise ValueError(f"fbank option {k}={s[k]!r}: the engine's audio front end implements only {v!r}")
    rate = int(s["sample_rate"])
    length = int(rate * s["frame_length_ms"] / 1000.0)
    shift = int(rate * s["frame_shift_ms"] / 1000.0)
    fft = 1 << max(0, (length - 1).bit_length())
    high = float(s["high_freq"]) if s["high_freq"] > 0 else rate / 2.0 + float(s["high_freq"])
    return FbankRecord(sample_rate=rate, num_bins=int(s["num_mel_bins"]), frame_length=length, frame_shift=shift,
                       fft_size=fft, window=WINDOWS.index("povey"),
                       flags=FBANK_REMOVE_DC | FBANK_SNIP_EDGES | FBANK_POWER | FBANK_LOG,
                       preemph=float(s["preemph_coeff"]), dither=0.0, low_freq=float(s["low_freq"]), high_freq=high,
                       log_floor=float(s["log_floor"]))


def _container(payloads: dict[str, bytes]) -> bytes:
    """Header, section table and the sections (in SECTIONS order, then the optional ones present,
    each aligned to ALIGN)."""
    table_end = HEADER_SIZE + SECTION_ENTRY * len(payloads)
    body = bytearray()
    entries = bytearray()
    pos = table_end
    for tag in SECTIONS + tuple(t for t in OPTIONAL_SECTIONS if t in payloads):
        pad = (-pos) % ALIGN
        body += b"\0" * pad
        pos += pad
        entries += pack(SectionEntry(tag=tag.encode("ascii"), reserved0=0, offset=pos, size=len(payloads[tag]),
                                     reserved1=0))
        body += payloads[tag]
        pos += len(payloads[tag])
    rest = bytes(entries) + bytes(body)
    head = pack(Header(magic=MAGIC, version=VERSION, header_size=HEADER_SIZE, file_size=HEADER_SIZE + len(rest),
                       n_sections=len(payloads), payload_crc32=zlib.crc32(rest), flags=0, reserved=b"\0" * 24,
                       header_crc32=0))
    head = head[:HEADER_CRC_OFFSET] + zlib.crc32(head[:HEADER_CRC_OFFSET]).to_bytes(4, "little")
    return head + rest


def encode_model(im: IntModel, tokens: list[str], token_type: str, cmvn_mean: np.ndarray,
                 cmvn_std: np.ndarray, meta: dict, fbank: dict | None = None) -> bytes:
    """The bytes of a model file (FORMAT.md) holding ``im`` and its front/back ends; ``fbank``
    (``rsqasr.features.fbank.fbank_settings``) adds the FBNK section (audio input)."""
    plan = im.plan
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
    index = {n: i for i, n in enumerate(plan.layers)}
    data = _Blob()
    layr = bytearray(SECTION_HEAD.pack(len(index), LAYER_RECORD))
    for name in plan.layers:
        layr += pack(_layer_record(plan.layers[name], im.layers[name], index, data))
    meta_b = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
    payloads = {"META": meta_b, "TOKN": _tokens_section(tokens, token_type),
                "CMVN": _cmvn_section(cmvn_mean, cmvn_std), "GRPH": _graph_section(plan.graph, index),
                "LAYR": bytes(layr), "DATA": bytes(data.buf)}
    if fbank is not None:
        rec = fbank_record(fbank)
        if rec.num_bins != len(np.asarray(cmvn_mean).reshape(-1)):
            raise ValueError(f"fbank has {rec.num_bins} mel bins, the model takes {len(cmvn_mean)} features")
        payloads["FBNK"] = pack(rec)
    return _container(payloads)


def write_model(path: str | Path, im: IntModel, tokens: list[str], token_type: str, cmvn_mean: np.ndarray,
                cmvn_std: np.ndarray, meta: dict, fbank: dict | None = None) -> int:
    """Write the model file atomically (temp file + rename); returns its size in bytes."""
    blob = encode_model(im, tokens, token_type, cmvn_mean, cmvn_std, meta, fbank)
    atomic_write_bytes(path, blob)
    return len(blob)
