"""The engine's model file, version 1 (``src_arm/FORMAT.md``): constants, codes and records.

The file is one little-endian blob: a 64-byte header (magic, version, sizes, CRC-32s), a section
table, and sections META (JSON), TOKN (token list), CMVN (mean, std), GRPH (the traced graph the
integer reference runs), LAYR (per-layer plan records), DATA (weights, biases, multipliers,
scales) and, optional, FBNK (the fbank options, for audio input). The fixed-size records are NamedTuples whose fields are FORMAT.md's, in its order;
``pack(record)`` and ``unpack(Record, buf, offset)`` convert them. Codes are positions in the
tuples below (``LAYER_OPS.index("conv") == 0``); they are the on-disk encoding, so the tuples are
append-only. The layer schemes are ``rsqasr.quant.plan.SCHEMES``, declared there once in this
encoding's order.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from rsqasr.quant.plan import SCHEMES

MAGIC = b"RSQMODEL"
VERSION = 1
HEADER_SIZE = 64
HEADER_CRC_OFFSET = 60            # header_crc32 covers bytes [0, 60)
SECTION_ENTRY = 32
LAYER_RECORD = 128
NODE_RECORD = 24
ALIGN = 16
MAX_SECTIONS = 64
SECTIONS = ("META", "TOKN", "CMVN", "GRPH", "LAYR", "DATA")     # required, written in this order
OPTIONAL_SECTIONS = ("FBNK",)     # written after them when present; readers skip tags they do not know

NODE_OPS = ("input", "transpose", "pad", "relu", "add", "conv", "linear")
LAYER_OPS = ("conv", "linear")
OUTS = ("float", "requant")
TOKEN_TYPES = ("char", "bpe")
FLAG_BIAS, FLAG_PER_CHANNEL, FLAG_RELU = 1, 2, 4
CMVN_FLAGS = 3                    # means and variances
WINDOWS = ("none", "povey")       # FBNK window codes (only povey is implemented by the engine)
FBANK_REMOVE_DC, FBANK_SNIP_EDGES, FBANK_POWER, FBANK_LOG = 1, 2, 4, 8

__all__ = ["MAGIC", "VERSION", "HEADER_SIZE", "HEADER_CRC_OFFSET", "SECTION_ENTRY", "LAYER_RECORD", "NODE_RECORD",
           "ALIGN", "MAX_SECTIONS", "SECTIONS", "NODE_OPS", "LAYER_OPS", "SCHEMES", "OUTS", "TOKEN_TYPES",
           "FLAG_BIAS", "FLAG_PER_CHANNEL", "FLAG_RELU", "CMVN_FLAGS", "SECTION_HEAD", "ModelFormatError", "Header",
           "SectionEntry", "NodeRecord", "LayerRecord", "FbankRecord", "OPTIONAL_SECTIONS", "WINDOWS",
           "FBANK_REMOVE_DC", "FBANK_SNIP_EDGES", "FBANK_POWER", "FBANK_LOG", "FBANK_RECORD", "pack", "unpack"]


class ModelFormatError(ValueError):
    """A model file that is not a valid rsqasr engine model; the message names the file."""


# every section but META and DATA starts with two u32: (count, record size | output | token type | flags)
SECTION_HEAD = struct.Struct("<II")


class Header(NamedTuple):
    magic: bytes
    version: int
    header_size: int
    file_size: int
    n_sections: int
    payload_crc32: int
    flags: int
    reserved: bytes                # 24 zero bytes
    header_crc32: int


class SectionEntry(NamedTuple):
    tag: bytes
    reserved0: int
    offset: int
    size: int
    reserved1: int


class NodeRecord(NamedTuple):
    op: int                        # NODE_OPS code
    in0: int                       # input node indices, -1 where the op has fewer inputs
    in1: int
    layer: int                     # conv / linear: the LAYR record, else -1
    a0: int                        # pad: left, right
    a1: int


class LayerRecord(NamedTuple):
    op: int                        # LAYER_OPS code
    scheme: int                    # SCHEMES code
    cin: int
    cout: int
    k: int
    stride: int
    groups: int
    pad_left: int
    pad_right: int
    act_T: int
    w_T: int
    out: int                       # OUTS code
    lo: int                        # requant clamp range
    hi: int
    consumer: int                  # requant: the consuming layer's index, else -1
    flags: int                     # FLAG_*
    s_in: float
    s_out: float
    name_off: int                  # offsets into DATA
    name_len: int
    w_off: int
    b_off: int
    m_off: int                     # requant: M; quantized float output: dequant scales
    sh_off: int
    sw_off: int
    reserved0: int
    reserved1: int


class FbankRecord(NamedTuple):
    """FBNK: the fbank options of the features the model was trained on (rsq-decode computes
    them from audio with these; ``rsqasr.features.fbank.fbank_settings`` is where they come from)."""
    sample_rate: int               # Hz
    num_bins: int                  # mel bins = the CMVN dimension
    frame_length: int              # samples (25 ms)
    frame_shift: int               # samples (10 ms)
    fft_size: int                  # the frame length rounded up to a power of two
    window: int                    # WINDOWS code
    flags: int                     # FBANK_*
    preemph: float
    dither: float
    low_freq: float                # Hz
    high_freq: float               # Hz, absolute (Kaldi's <= 0 "relative to Nyquist" resolved)
    log_floor: float               # log(max(energy, log_floor))


_STRUCTS = {Header: struct.Struct("<8sIIQIII24sI"),
            SectionEntry: struct.Struct("<4sIQQQ"),
            NodeRecord: struct.Struct("<Iiiiii"),
            LayerRecord: struct.Struct("<IIiiiiiiiiiIiiiIffIIQQQQQII"),
            FbankRecord: struct.Struct("<iiiiiiIfffff")}
FBANK_RECORD = 48
assert _STRUCTS[Header].size == HEADER_SIZE and _STRUCTS[SectionEntry].size == SECTION_ENTRY
assert _STRUCTS[NodeRecord].size == NODE_RECORD and _STRUCTS[LayerRecord].size == LAYER_RECORD
assert _STRUCTS[FbankRecord].size == FBANK_RECORD


def pack(rec: Header | SectionEntry | NodeRecord | LayerRecord | FbankRecord) -> bytes:
    """The record's bytes, little-endian, as FORMAT.md lays them out."""
    return _STRUCTS[type(rec)].pack(*rec)


def unpack(cls: type, buf: bytes, offset: int = 0):
    """The record of type ``cls`` at ``offset`` of ``buf`` (which must hold it)."""
    return cls._make(_STRUCTS[cls].unpack_from(buf, offset))
