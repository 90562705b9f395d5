"""rsqasr.export.format: the records' named fields sit at FORMAT.md's offsets, and the codes are
the on-disk encoding."""

from __future__ import annotations

import struct

from rsqasr.export import format as fmt
from rsqasr.quant import plan

# src_arm/FORMAT.md, LAYR record table: offset of each field
LAYR_OFFSETS = {"op": 0, "scheme": 4, "cin": 8, "cout": 12, "k": 16, "stride": 20, "groups": 24, "pad_left": 28,
                "pad_right": 32, "act_T": 36, "w_T": 40, "out": 44, "lo": 48, "hi": 52, "consumer": 56, "flags": 60,
                "s_in": 64, "s_out": 68, "name_off": 72, "name_len": 76, "w_off": 80, "b_off": 88, "m_off": 96,
                "sh_off": 104, "sw_off": 112, "reserved0": 120, "reserved1": 124}
HEADER_OFFSETS = {"magic": 0, "version": 8, "header_size": 12, "file_size": 16, "n_sections": 24,
                  "payload_crc32": 28, "flags": 32, "reserved": 36, "header_crc32": 60}
NODE_OFFSETS = {"op": 0, "in0": 4, "in1": 8, "layer": 12, "a0": 16, "a1": 20}
ENTRY_OFFSETS = {"tag": 0, "reserved0": 4, "offset": 8, "size": 16, "reserved1": 24}


def _offsets(cls, zero: dict) -> dict[str, int]:
    """Where each field lands: pack a record that is zero but for one field set to a marker."""
    out = {}
    for f in cls._fields:
        if isinstance(zero[f], bytes):
            marker = b"\xab" * len(zero[f])
        elif isinstance(zero[f], float):
            marker = struct.unpack("<f", b"\x5a\x5a\x5a\x3f")[0]     # a float32 with a non-zero low byte
        else:
            marker = 0x5A
        blob = fmt.pack(cls(**{**zero, f: marker}))
        out[f] = next(i for i, b in enumerate(blob) if b)
    return out


def test_records_match_format_md():
    lz = {f: 0 for f in fmt.LayerRecord._fields} | {"s_in": 0.0, "s_out": 0.0}
    assert _offsets(fmt.LayerRecord, lz) == LAYR_OFFSETS and len(fmt.pack(fmt.LayerRecord(**lz))) == 128
    hz = {f: 0 for f in fmt.Header._fields} | {"magic": b"\0" * 8, "reserved": b"\0" * 24}
    assert _offsets(fmt.Header, hz) == HEADER_OFFSETS and len(fmt.pack(fmt.Header(**hz))) == fmt.HEADER_SIZE
    assert _offsets(fmt.NodeRecord, {f: 0 for f in fmt.NodeRecord._fields}) == NODE_OFFSETS
    ez = {f: 0 for f in fmt.SectionEntry._fields} | {"tag": b"\0" * 4}
    assert _offsets(fmt.SectionEntry, ez) == ENTRY_OFFSETS


def test_pack_unpack_round_trip():
    rec = fmt.LayerRecord(*range(16), 0.25, 0.5, *range(100, 109))
    blob = b"xx" + fmt.pack(rec)
    assert fmt.unpack(fmt.LayerRecord, blob, 2) == rec
    node = fmt.NodeRecord(op=5, in0=3, in1=-1, layer=2, a0=0, a1=0)
    assert fmt.pack(node) == struct.pack("<Iiiiii", 5, 3, -1, 2, 0, 0)
    assert fmt.unpack(fmt.NodeRecord, fmt.pack(node)) == node


def test_codes_are_the_on_disk_encoding():
    assert fmt.SCHEMES is plan.SCHEMES                       # declared once, in the encoding's order
    assert [fmt.SCHEMES.index(s) for s in ("fp32", "int8", "wino23")] == [0, 1, 2]
    assert fmt.LAYER_OPS == ("conv", "linear") and fmt.OUTS == ("float", "requant")
    assert fmt.NODE_OPS == ("input", "transpose", "pad", "relu", "add", "conv", "linear")
    assert fmt.TOKEN_TYPES == ("char", "bpe")
    assert (fmt.FLAG_BIAS, fmt.FLAG_PER_CHANNEL, fmt.FLAG_RELU) == (1, 2, 4)


def test_fuzz_seeds_are_written_from_python_and_read_back(tmp_path):
    """rsqasr.bin.make_fuzz_seeds writes the files of src_arm/fuzz/corpus (the engine's fuzzers
    read them; the engine itself never runs Python), each model one that read_model accepts."""
    from pathlib import Path

    from rsqasr.bin import make_fuzz_seeds
    from rsqasr.export import read_model

    corpus = Path(__file__).resolve().parents[1] / "src_arm/fuzz/corpus"
    make_fuzz_seeds.run(make_fuzz_seeds.main, make_fuzz_seeds.get_parser(), ["--out", str(tmp_path)])
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file())
    models = [n for n in names if n.startswith("model/")]
    assert len(models) == 9
    for n in models:
        m = read_model(tmp_path / n)
        assert m.tokens == ["<blank>", "<unk>", "a", "<space>", "b"] and m.input_dim == 6, n
