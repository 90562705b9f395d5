"""rsqasr.export (the engine's model file) and src_arm's rsq-decode: tiny random ConvDFSMN and
Wav2letter models exported as FP32 / INT8 GEMM / INT8 Winograd, decoded by the host binary and
the ARMv7 binary under qemu-arm, compared with the Python integer reference; the robustness
cases of the loader and the feature reader; the checked, atomic export of an experiment dir."""

from __future__ import annotations

import os
import platform
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from rsqasr.ctc_model import CTCModel, greedy_ids
from rsqasr.export import (ModelFormatError, apply_cmvn, fp32_intmodel, read_model, write_model)
from rsqasr.models import build_model
from rsqasr.quant import IntModel, calibrate, make_plan, quantize_model, save_quant

from conftest import REPO, RSQ_DECODE, need_binary
from test_quant import TINY_DFSMN, TINY_W2L, tiny

HOST, ARM = RSQ_DECODE["host"], RSQ_DECODE["armv7"]
BINARIES = RSQ_DECODE
ASAN = REPO / "src_arm/build-asan/rsq-decode"   # built by src_arm/test.sh (build.sh asan)
DIM, VOCAB = 20, 12
TOKENS = ["<blank>", "<unk>"] + list("的一是不了人我在有他")
LENGTHS = [37, 60, 91, 124]            # odd and even, several Winograd tile / subsampling phases


_need = need_binary


def _intmodel(conf: dict, variant: str) -> IntModel:
    """A tiny random model as the export builds it: fp32, or quantized with max calibration."""
    net = tiny(conf, seed=3, dim=DIM, vocab=VOCAB)
    with torch.no_grad():
        net.classifier.weight.mul_(30.0)          # confident logits: greedy output is not all blank
    if variant == "fp32":
        return fp32_intmodel(net)
    kw = {"gemm": {"kind": "int8_gemm"}, "wino": {"kind": "wino"},
          "wino_cls": {"kind": "wino", "quantize_classifier": True},
          "gemm_cls_pc": {"kind": "int8_gemm", "quantize_classifier": True, "weight_per_channel": True},
          "wino_dwfp32": {"kind": "wino", "depthwise": "fp32"}}[variant]
    plan = make_plan(net, **kw)
    torch.manual_seed(11)
    scales = calibrate(net, plan, [(torch.randn(3, 80, DIM), torch.full((3,), 80))], method="max")
    return IntModel.from_fake_quant(quantize_model(net, plan, scales))


CASES = [("dfsmn", TINY_DFSMN, v) for v in ("fp32", "gemm", "wino", "wino_cls", "gemm_cls_pc", "wino_dwfp32")] + \
        [("w2l", TINY_W2L, v) for v in ("fp32", "gemm", "wino", "wino_cls")] + \
        [("dfsmn_res", dict(TINY_DFSMN, context_residual=True, batch_norm=True, projection_norm=True), "wino_cls")]
EXACT = {"wino_cls", "gemm_cls_pc"}     # every layer integer: logits must be bit-identical


@pytest.fixture(scope="module")
def feats_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(5)
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for i, t in enumerate(LENGTHS):
            w[f"utt{i}"] = (rng.standard_normal((t, DIM)) * 3 + 1).astype(np.float32)
    with kaldiio.WriteHelper(f"ark,scp:{d}/short.ark,{d}/short.scp") as w:
        w["long"] = rng.standard_normal((40, DIM)).astype(np.float32)
        w["tiny"] = rng.standard_normal((2, DIM)).astype(np.float32)    # 2 frames: the padded convs still give 1
    return d


@pytest.fixture(scope="module")
def cmvn():
    rng = np.random.default_rng(9)
    return rng.standard_normal(DIM).astype(np.float32), (0.5 + rng.random(DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cmvn) -> dict:
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name, conf, variant in CASES:
        im = _intmodel(conf, variant)
        path = d / f"{name}_{variant}.rsq"
        write_model(path, im, TOKENS, "char", cmvn[0], cmvn[1], {"model": conf, "variant": variant})
        out[(name, variant)] = (path, im)
    return out


def _decode(binary: Path, model: Path, scp: Path, tmp: Path, *extra: str):
    hyp, logits = tmp / "hyp.txt", tmp / "logits.ark"
    proc = subprocess.run([str(binary), "--dump-logits", str(logits), *extra, str(model), str(scp), str(hyp)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return hyp.read_text(encoding="utf-8"), dict(kaldiio.load_ark(str(logits))), proc.stderr


def _expected(im: IntModel, feats_dir: Path, cmvn):
    logits, lines = {}, []
    for utt, m in kaldiio.load_scp(str(feats_dir / "feats.scp")).items():
        lg = im.run(apply_cmvn(m, *cmvn))
        logits[utt] = lg
        ids = greedy_ids(torch.from_numpy(lg)[None], torch.tensor([lg.shape[0]]))[0]
        lines.append(f"{utt} {''.join(TOKENS[i] for i in ids)}".rstrip())
    return logits, "\n".join(lines) + "\n"


@pytest.mark.parametrize("target", ["host", "armv7", "aarch64"])
@pytest.mark.parametrize("name,conf,variant", CASES, ids=[f"{n}-{v}" for n, _, v in CASES])
def test_binary_matches_integer_reference(exported, feats_dir, cmvn, tmp_path, name, conf, variant, target):
    binary = _need(BINARIES[target])
    path, im = exported[(name, variant)]
    # the Python reader reproduces the in-memory model exactly
    mf = read_model(path)
    want, want_text = _expected(im, feats_dir, cmvn)
    for utt, m in kaldiio.load_scp(str(feats_dir / "feats.scp")).items():
        assert np.array_equal(mf.intmodel.run(mf.normalize(m)), want[utt])
    # fused (the default: ReLU, residual add, quantize and dequantize in the kernels) and with every
    # step its own pass: both exact
    for extra in (("--threads", "2"), ("--no-fuse",)):
        text, got, err = _decode(binary, path, feats_dir / "feats.scp", tmp_path, *extra)
        assert set(got) == set(want)
        for utt in want:
            assert got[utt].shape == want[utt].shape, utt
            if variant in EXACT:
                assert np.array_equal(got[utt], want[utt]), \
                    f"{extra} {utt}: {np.argwhere(got[utt] != want[utt])[:3]} differ (integer layers must be exact)"
            else:   # FP32 layers: kernel summation order differs from BLAS
                scale = float(np.abs(want[utt]).max())
                assert np.abs(got[utt] - want[utt]).max() <= 2e-5 * scale, utt
        assert text == want_text           # greedy hypotheses identical
        assert f"{len(LENGTHS)} utterances" in err and "RTF" in err and "600 frames" in err


@pytest.mark.parametrize("cpu", ["cortex-a53", "cortex-a76", "max"])
def test_aarch64_kernel_sets_on_emulated_cores(exported, feats_dir, cmvn, tmp_path, monkeypatch, cpu):
    """The AArch64 binary picks its kernels at run time from the CPU's hwcaps: plain NEON on a
    Cortex-A53, SDOT on a Cortex-A76 (dotprod, no i8mm), SMMLA on qemu's `max` (i8mm). qemu-user
    emulates the core named by QEMU_CPU, so each kernel set decodes the all-integer models here,
    bit-exact with the integer reference."""
    binary = _need(BINARIES["aarch64"])
    if platform.machine() in ("aarch64", "arm64"):
        pytest.skip("native AArch64: the CPU is what it is")
    monkeypatch.setenv("QEMU_CPU", cpu)
    kernels = {"cortex-a53": "neon", "cortex-a76": "sdot", "max": "smmla"}[cpu]
    for key in (("dfsmn", "wino_cls"), ("dfsmn", "gemm_cls_pc"), ("w2l", "wino_cls")):
        path, im = exported[key]
        want, want_text = _expected(im, feats_dir, cmvn)
        text, got, err = _decode(binary, path, feats_dir / "feats.scp", tmp_path)
        line = next(x for x in err.splitlines() if "int8 kernels:" in x)
        assert f" {kernels} (" in line and line.count("conv") == 1, line   # every int8 conv on that set
        assert text == want_text
        for utt in want:
            assert np.array_equal(got[utt], want[utt]), (cpu, key, utt)


@pytest.mark.parametrize("target", ["host", "armv7", "aarch64"])
@pytest.mark.parametrize("name,conf,variant", CASES, ids=[f"{n}-{v}" for n, _, v in CASES])
def test_streaming_equals_whole_utterance(exported, feats_dir, tmp_path, name, conf, variant, target):
    """rsq-decode --stream feeds each utterance in chunks (stream.c caches every layer's past):
    logits and hypotheses are the whole-utterance ones bit for bit, at chunks of 1, 6 and 40
    frames, also for the too-short and 2-frame utterances; an output frame appears as soon as the
    claimed lookahead allows and not before."""
    binary = _need(BINARIES[target])
    path, im = exported[(name, variant)]
    for scp in ("feats.scp", "short.scp"):
        text, whole, _ = _decode(binary, path, feats_dir / scp, tmp_path)
        for chunk in ("1", "6", "40"):
            got_text, got, err = _decode(binary, path, feats_dir / scp, tmp_path, "--stream", "--chunk", chunk,
                                         "--show-partial")
            assert got_text == text and set(got) == set(whole)
            for utt in whole:
                assert got[utt].tobytes() == whole[utt].tobytes(), (scp, chunk, utt)
            look = int(err.split("the model looks ")[1].split(" frames")[0])
            sub = int(np.prod([lp.stride for lp in im.plan.layers.values()]))
            lines = [line.split(" ", 4) for line in err.splitlines() if line.startswith("partial ")]
            assert len(lines) >= len(whole)
            final_in = {utt: whole[utt].shape[0] for utt in whole}
            for _, utt, fed, out, *_ in lines:
                fed, out = int(fed), int(out)
                if out == final_in[utt] and fed == max(int(f) for _, u, f, *_ in lines if u == utt):
                    continue                                   # the last chunk: everything, with right padding
                assert out == max(0, (fed - 1 - look) // sub + 1), (utt, fed, out, look, sub)


def test_too_short_utterance_and_stdout(exported, feats_dir, tmp_path):
    path, _ = exported[("dfsmn", "wino")]
    proc = subprocess.run([str(_need(HOST)), "--timing", str(path), str(feats_dir / "short.scp")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "long" and lines[1].split()[0] == "tiny"
    assert "long 40 frames" in proc.stderr and "2 utterances" in proc.stderr
    # the same features read from the ark directly, and logits dumped as .npy per utterance
    (tmp_path / "npy").mkdir()
    proc = subprocess.run([str(HOST), "--dump-logits", str(tmp_path / "npy"), str(path),
                           str(feats_dir / "short.ark")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 0, proc.stderr
    assert np.load(tmp_path / "npy" / "long.npy").shape[1] == VOCAB


# ---------------------------------------------------------------- robustness
def _run_fail(args: list[str], *needles: str, binary: Path = HOST) -> str:
    return _run_fail_on(args, *needles, binary=binary)


def _run_fail_on(args: list[str], *needles: str, binary: Path = HOST) -> str:
    proc = subprocess.run([str(_need(binary)), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    for n in needles:
        assert n in proc.stderr, (n, proc.stderr)
    assert "Sanitizer" not in proc.stderr and "Segmentation" not in proc.stderr
    return proc.stderr


def _patched(src: Path, dst: Path, fix_crc: bool, **at: bytes) -> Path:
    b = bytearray(src.read_bytes())
    for off, val in at.items():
        o = int(off[1:])
        b[o:o + len(val)] = val
    if fix_crc:   # make the header checksum valid again so the deeper check is reached
        b[60:64] = struct.pack("<I", zlib.crc32(bytes(b[:60])))
    dst.write_bytes(bytes(b))
    return dst


@pytest.mark.parametrize("target", ["host", "armv7", "asan"])
def test_bad_model_files(exported, feats_dir, tmp_path, target):
    binary = {"host": HOST, "armv7": ARM, "asan": ASAN}[target]
    good, _ = exported[("w2l", "wino")]
    scp = feats_dir / "feats.scp"
    blob = good.read_bytes()
    trunc = tmp_path / "trunc.rsq"
    trunc.write_bytes(blob[: len(blob) // 2])
    _run_fail([trunc, scp], str(trunc), "truncated", binary=binary)
    tiny_file = tmp_path / "tiny.rsq"
    tiny_file.write_bytes(blob[:10])
    _run_fail([tiny_file, scp], "truncated", binary=binary)
    _run_fail([_patched(good, tmp_path / "magic.rsq", False, o0=b"GGUF"), scp], "magic", binary=binary)
    _run_fail([_patched(good, tmp_path / "ver.rsq", True, o8=struct.pack("<I", 2)), scp], "version 2",
              binary=binary)
    _run_fail([_patched(good, tmp_path / "hdr.rsq", False, o20=b"\x01"), scp], "header checksum", binary=binary)
    _run_fail([_patched(good, tmp_path / "body.rsq", False, **{f"o{len(blob) - 7}": b"\x55"}), scp],
              "payload checksum", binary=binary)
    _run_fail([tmp_path / "missing.rsq", scp], "missing.rsq", "cannot open", binary=binary)
    for p in (trunc, tmp_path / "magic.rsq", tmp_path / "ver.rsq", tmp_path / "body.rsq"):
        with pytest.raises(ModelFormatError, match=p.name):
            read_model(p)


@pytest.mark.parametrize("target", ["host", "asan"])
def test_bad_features(exported, feats_dir, tmp_path, target):
    good, _ = exported[("dfsmn", "gemm")]
    binary = {"host": HOST, "asan": ASAN}[target]
    _need(binary)

    def _run_fail(args, *needles):
        return _run_fail_on(args, *needles, binary=binary)

    rng = np.random.default_rng(1)
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/d21.ark,{tmp_path}/d21.scp") as w:
        w["wide"] = rng.standard_normal((50, DIM + 1)).astype(np.float32)
    _run_fail([good, tmp_path / "d21.scp"], "'wide'", "dimension 21", f"takes {DIM}")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/empty.ark,{tmp_path}/empty.scp") as w:
        w["nothing"] = np.zeros((0, DIM), dtype=np.float32)
    _run_fail([good, tmp_path / "empty.scp"], "'nothing'", "0 frames")
    # bad header at the offset, a missing ark, a truncated ark, a compressed matrix, a bad scp line
    ark = tmp_path / "bad.ark"
    ark.write_bytes(b"utt1 \0BXM \x04\x02\x00\x00\x00\x04\x14\x00\x00\x00" + b"\0" * 40)
    (tmp_path / "bad.scp").write_text(f"utt1 {ark}:5\n")
    _run_fail([good, tmp_path / "bad.scp"], "bad.scp:1", "utt1", "bad matrix type")
    (tmp_path / "bad2.scp").write_text(f"utt1 {ark}:1\n")
    _run_fail([good, tmp_path / "bad2.scp"], "not a binary Kaldi object")
    (tmp_path / "gone.scp").write_text(f"utt1 {tmp_path}/nowhere.ark:17\n")
    _run_fail([good, tmp_path / "gone.scp"], "gone.scp:1", "nowhere.ark", "cannot open")
    cut = tmp_path / "cut.ark"
    cut.write_bytes((feats_dir / "feats.ark").read_bytes()[:300])
    (tmp_path / "cut.scp").write_text(f"utt0 {cut}:5\n")
    _run_fail([good, tmp_path / "cut.scp"], "truncated matrix data")
    _run_fail([good, cut], "cut.ark", "truncated")
    cm = tmp_path / "cm.ark"
    cm.write_bytes(b"utt1 \0BCM " + b"\0" * 64)
    _run_fail([good, cm], "compressed")
    (tmp_path / "pipe.scp").write_text("utt1 gunzip -c x.ark.gz |\n")
    _run_fail([good, tmp_path / "pipe.scp"], "pipe.scp", "line 1")
    _run_fail([good, tmp_path / "no.scp"], "no.scp", "cannot open")


# ---------------------------------------------------------------- export of an experiment dir
@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory, feats_dir) -> Path:
    exp = tmp_path_factory.mktemp("exp")
    conf = {"model": TINY_DFSMN, "input_dim": DIM, "vocab_size": VOCAB, "token_type": "char"}
    (exp / "config.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    (exp / "tokens.txt").write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, DIM)) * 2 + 1
    stats = np.zeros((2, DIM + 1))
    stats[0, :DIM], stats[1, :DIM], stats[0, DIM] = x.sum(0), (x * x).sum(0), len(x)
    np.save(exp / "cmvn.npy", stats)
    torch.manual_seed(4)
    net = build_model(TINY_DFSMN, DIM, VOCAB)
    with torch.no_grad():
        net.classifier.weight.mul_(30.0)
    model = CTCModel(net, exp / "cmvn.npy", specaug=None)
    torch.save(model.state_dict(), exp / "model.pth")
    plan = make_plan(net.eval(), kind="wino")
    torch.manual_seed(5)
    scales = calibrate(net, plan, [(torch.randn(2, 80, DIM), torch.full((2,), 80))], method="max")
    save_quant(exp / "quant_wino.json", plan, scales)
    return exp


def test_export_cli_checks_and_is_atomic(exp_dir, feats_dir, tmp_path, monkeypatch):
    from rsqasr.export import check as ex
    from rsqasr.bin import export as cli

    out = tmp_path / "m.rsq"
    base = ["--exp_dir", str(exp_dir), "--model", str(exp_dir / "model.pth"), "--check_data_dir", str(feats_dir),
            "--check_utts", "2", "--out", str(out)]
    cli.run(cli.main, cli.get_parser(), base + ["--quant", "wino", "--quant_json", str(exp_dir / "quant_wino.json")])
    mf = read_model(out)
    assert mf.meta["variant"] == "wino" and mf.tokens == TOKENS and mf.intmodel.plan.layers["context.conv"].scheme \
        == "wino23"
    before = out.read_bytes()
    # an export that fails its check (or is interrupted) leaves the previous file as it was
    monkeypatch.setattr(ex, "check_model_file", lambda *a, **k: (_ for _ in ()).throw(ex.ExportCheckError("boom")))
    with pytest.raises(SystemExit):
        cli.run(cli.main, cli.get_parser(), base + ["--quant", "none"])
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.rsq"]
    monkeypatch.undo()
    cli.run(cli.main, cli.get_parser(), base + ["--quant", "none"])
    assert read_model(out).meta["variant"] == "none"
    # wrong inputs: one clear line, exit 1
    for bad in (["--quant", "wino"], ["--quant", "int8_gemm", "--quant_json", str(exp_dir / "quant_wino.json")]):
        with pytest.raises(SystemExit):
            cli.run(cli.main, cli.get_parser(), base + bad)
    # the exported file decodes to what the integer reference gives
    _, got, _ = _decode(_need(HOST), out, feats_dir / "feats.scp", tmp_path)
    fp = read_model(out)
    for utt, m in kaldiio.load_scp(str(feats_dir / "feats.scp")).items():
        want = fp.intmodel.run(fp.normalize(m))
        assert np.abs(got[utt] - want).max() <= 2e-5 * float(np.abs(want).max())


def test_export_rsq_experiment(exp_dir, feats_dir, tmp_path):
    """An RSQ experiment (config with a quant section): exported with its own plan and scales."""
    from rsqasr.bin import export as cli
    from rsqasr.inference import quantize_net

    rsq = tmp_path / "rsq_exp"
    rsq.mkdir()
    for f in ("tokens.txt", "cmvn.npy"):
        shutil.copy(exp_dir / f, rsq / f)
    conf = yaml.safe_load((exp_dir / "config.yaml").read_text(encoding="utf-8"))
    conf["quant"] = {"plan": "int8_gemm", "quantize_classifier": False, "depthwise": "int8"}
    (rsq / "config.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    torch.manual_seed(6)
    net = build_model(TINY_DFSMN, DIM, VOCAB)
    quantize_net(net, conf["quant"])
    torch.save(CTCModel(net, rsq / "cmvn.npy", specaug=None).state_dict(), rsq / "model.pth")
    out = tmp_path / "rsq.rsq"
    args = ["--exp_dir", str(rsq), "--model", "model.pth", "--check_data_dir", str(feats_dir), "--out", str(out)]
    cli.run(cli.main, cli.get_parser(), args + ["--quant", "int8_gemm"])
    assert read_model(out).intmodel.plan.layers["context.conv"].scheme == "int8"
    for bad in (["--quant", "wino"], ["--quant", "none"]):     # not this experiment's plan / not FP32
        with pytest.raises(SystemExit):
            cli.run(cli.main, cli.get_parser(), args[:-2] + ["--out", str(tmp_path / "x.rsq")] + bad)
    assert not (tmp_path / "x.rsq").exists()


# ---------------------------------------------------------------- outputs that are not regular files
def test_outputs_never_replace_a_device_node(exported, exp_dir, feats_dir, tmp_path):
    """As root a rename onto a device node replaces the node (how /dev/null once became a regular
    file): rsq-decode and the Python entry points must write through it instead."""
    from test_fileio import null_device

    from rsqasr.bin import export as cli

    dev = tmp_path / "null"
    null_device(dev)
    path, _ = exported[("dfsmn", "wino")]
    proc = subprocess.run([str(_need(HOST)), str(path), str(feats_dir / "feats.scp"), str(dev)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cli.run(cli.main, cli.get_parser(), ["--exp_dir", str(exp_dir), "--model", str(exp_dir / "model.pth"),
                                         "--check_data_dir", str(feats_dir), "--check_utts", "1",
                                         "--out", str(dev), "--quant", "none"])
    st = os.lstat(dev)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]
    # a symlink given as the output stays a symlink; its target gets the hypotheses
    target, link = tmp_path / "hyp.txt", tmp_path / "link.txt"
    target.write_text("old\n")
    link.symlink_to(target)
    proc = subprocess.run([str(HOST), str(path), str(feats_dir / "feats.scp"), str(link)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and target.read_text().startswith("utt0")


@pytest.mark.parametrize("target", ["host", "asan"])
def test_model_header_checked_before_reading(exported, feats_dir, tmp_path, target):
    """What is allocated is decided by a checked header and the file's own size: a device, a FIFO,
    a header declaring a huge size and pads beyond k-1 are refused at once."""
    binary = {"host": HOST, "asan": ASAN}[target]
    good, _ = exported[("dfsmn", "wino")]
    scp = feats_dir / "feats.scp"
    _run_fail(["/dev/zero", scp], "/dev/zero", "not a regular file", binary=binary)
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    _run_fail([fifo, scp], "not a regular file", binary=binary)        # must not block
    huge = _patched(good, tmp_path / "huge.rsq", True, o16=struct.pack("<Q", 1 << 40))
    _run_fail([huge, scp], "huge.rsq", "header declares 1099511627776 bytes", binary=binary)
    # a conv padded by 65535 frames, with every checksum valid
    conf, variant = TINY_DFSMN, "wino"
    im = _intmodel(conf, variant)
    layer = next(lp for lp in im.plan.layers.values() if lp.k > 1)
    layer.pad_left = 65535
    padded = tmp_path / "pad.rsq"
    write_model(padded, im, TOKENS, "char", np.zeros(DIM, np.float32), np.ones(DIM, np.float32), {})
    _run_fail([padded, scp], "pad.rsq", f"pads 65535/{layer.pad_right} invalid", binary=binary)
    with pytest.raises(ModelFormatError, match="pads=65535"):
        read_model(padded)


def test_nonfinite_features_are_counted_and_skipped(exported, exp_dir, feats_dir, tmp_path):
    """Kaldi style: an utterance with NaN/Inf features gets a warning and an empty hypothesis, the
    others are decoded, the summary counts it; rsq-decode and the Python decode agree."""
    rng = np.random.default_rng(1)
    scp = tmp_path / "nan.scp"
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/nan.ark,{scp}") as w:
        w["a_good"] = rng.standard_normal((40, DIM)).astype(np.float32)
        bad = rng.standard_normal((40, DIM)).astype(np.float32)
        bad[3, 5], bad[7, 1] = np.nan, np.inf
        w["b_bad"] = bad
    path, _ = exported[("dfsmn", "wino")]
    proc = subprocess.run([str(_need(HOST)), str(path), str(scp), str(tmp_path / "hyp.txt")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "'b_bad'" in proc.stderr and "2 NaN/Inf feature values" in proc.stderr
    assert "1 with NaN/Inf features" in proc.stderr
    lines = (tmp_path / "hyp.txt").read_text().splitlines()
    assert [l.split()[0] for l in lines] == ["a_good", "b_bad"] and lines[1] == "b_bad"
    from rsqasr.bin import decode

    decode.run(decode.main, decode.get_parser(), ["--exp_dir", str(exp_dir), "--model", "model.pth",
                                                  "--feats_scp", str(scp), "--out", str(tmp_path / "py.txt")])
    py = (tmp_path / "py.txt").read_text().splitlines()
    assert [l.split()[0] for l in py] == ["a_good", "b_bad"] and py[1] == "b_bad"


def test_scp_with_tabs_and_an_ark_named_otherwise(exported, feats_dir, tmp_path):
    path, _ = exported[("dfsmn", "wino")]
    lines = (feats_dir / "feats.scp").read_text().splitlines()
    tabbed = tmp_path / "tab.scp"
    tabbed.write_text("".join(l.replace(" ", "\t", 1) + "\n" for l in lines))
    proc = subprocess.run([str(_need(HOST)), str(path), str(tabbed)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == len(lines), proc.stderr
    renamed = tmp_path / "feats.bin"
    shutil.copyfile(feats_dir / "feats.ark", renamed)
    _run_fail([path, renamed], "feats.bin", "a Kaldi ark, not an scp?")


def test_quantize_refuses_a_negative_calibration_count(exp_dir, feats_dir, tmp_path, capsys):
    from rsqasr.bin import quantize

    with pytest.raises(SystemExit):
        quantize.run(quantize.main, quantize.get_parser(), ["--exp_dir", str(exp_dir), "--model", "model.pth",
                                                            "--calib_dir", str(feats_dir), "--calib_utts", "-3",
                                                            "--out", str(tmp_path / "q.json")])
    assert "--calib_utts must be >= 1, got -3" in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()


def test_qemu_instruction_counter_counts_the_armv7_engine(exported, tmp_path):
    """engine_latency's ARMv7 count (qemu-arm + src_arm/tools/qemu_insn_count.c): repeatable (to
    0.1%: the C library's copy routines take paths by address alignment, which varies from run to
    run by tens of instructions), one utterance more costs the same each time, rsq-decode
    --profile's markers split the count into every layer kind of the model (the kinds and the
    instructions outside the network add up to the total), and the plugin refuses an unknown
    argument."""
    from rsqasr.bin.engine_latency import armv7_instructions, write_copies

    _need(ARM)
    plugin = REPO / "src_arm/build-host/lib/qemu_insn_count.so"
    if not plugin.is_file():
        pytest.skip(f"{plugin} not built (src_arm/build.sh host)")
    binary = REPO / "src_arm/build-armv7/rsq-decode"
    path, _ = exported[("dfsmn", "wino")]
    torch.manual_seed(5)
    mat = torch.randn(120, DIM).numpy()
    arks = []
    for n in (1, 2, 3):
        arks.append(tmp_path / f"{n}.ark")
        write_copies(arks[-1], mat, n)
    ld = "/usr/arm-linux-gnueabihf"
    one, kinds = armv7_instructions(binary, plugin, path, (arks[0], arks[1]), tmp_path, ld)
    again, _ = armv7_instructions(binary, plugin, path, (arks[0], arks[1]), tmp_path, ld)
    next_one, _ = armv7_instructions(binary, plugin, path, (arks[1], arks[2]), tmp_path, ld)
    assert one > 10_000
    # plus printf of the run's timings (--profile, summary line): a few thousand instructions that
    # depend on the digits, which matter on this 1 M-instruction model, not on a real one (100 M)
    tol = max(0.001 * one, 5_000)
    assert abs(again - one) <= tol and abs(next_one - one) <= tol
    # the DFSMN test model has a layer of every kind (strided front, k=3 Winograd, 1x1,
    # depthwise memory, FP32 classifier) and float glue between them
    assert set(kinds) == {"front", "conv_k3", "pointwise", "depthwise", "classifier", "glue", "outside"}
    assert all(n > 0 for n in kinds.values()), kinds
    assert abs(sum(kinds.values()) - one) <= tol, (kinds, one)
    bad = subprocess.run(["qemu-arm", "-L", ld, "-plugin", f"{plugin},bogus=1", str(binary), "--help"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown or bad argument 'bogus=1'" in bad.stderr



def test_engine_latency_without_the_armv7_tools_is_one_clear_error(tmp_path):
    """engine_latency takes the ARMv7 build, plugin and sysroot from options defaulting to path.sh's
    variables: with neither, --armv7_instructions true stops before any work, naming what is
    missing, and writes no output."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RSQ_ARMV7_BUILD", "RSQ_QEMU_PLUGIN", "RSQ_ARMV7_SYSROOT")}
    out = tmp_path / "lat.json"
    p = subprocess.run([sys.executable, "-m", "rsqasr.bin.engine_latency", "--model", str(tmp_path / "m.rsq"),
                        "--feats_scp", str(tmp_path / "f.scp"), "--out", str(out), "--armv7_instructions", "true"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "--armv7_build is not set and neither is RSQ_ARMV7_BUILD" in p.stderr
    assert not out.exists()


def test_bench_counts_kernel_calls_with_the_plugin():
    """src_arm/bench/qemu_count.sh (make bench's ARMv7 column) counts with the plugin: one more
    call of a Table 3 kernel costs the same each time, and GEMM and Winograd differ."""
    _need(ARM)
    plugin = REPO / "src_arm/build-host/lib/qemu_insn_count.so"
    if not plugin.is_file() or not (REPO / "src_arm/build-armv7/bench_rsq").is_file():
        pytest.skip("plugin or ARMv7 bench_rsq not built (src_arm/build.sh host|armv7)")
    script = REPO / "src_arm/bench/qemu_count.sh"
    env = {**os.environ, "QEMU_INSN_COUNT": str(plugin)}
    env.pop("QEMU_ICOUNT_TOP", None)

    def count(algo):
        p = subprocess.run([str(script), str(REPO / "src_arm/build-armv7"), "0", algo], capture_output=True,
                           text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        return int(p.stdout.split()[-1])

    gemm, gemm_again, wino = count("gemm"), count("gemm"), count("wino")
    assert gemm > 1_000_000 and abs(gemm_again - gemm) <= 0.001 * gemm
    assert wino > 1_000_000 and wino != gemm
    # the AArch64 build (qemu-aarch64) with a chosen kernel set: SDOT runs fewer instructions than NEON,
    # SMMLA fewer than SDOT
    a64 = REPO / "src_arm/build-aarch64"
    if (a64 / "bench_rsq").is_file() and shutil.which("qemu-aarch64"):
        def count64(algo, impl):
            p = subprocess.run([str(script), str(a64), "0", algo, impl], capture_output=True, text=True, env=env,
                               timeout=120)
            assert p.returncode == 0, p.stderr
            return int(p.stdout.split()[-1])
        dot_gemm, dot_wino, neon_gemm = count64("gemm", "dot"), count64("wino", "dot"), count64("gemm", "neon")
        assert 1_000_000 < dot_gemm < neon_gemm and dot_wino not in (dot_gemm, neon_gemm)
        mm_gemm, mm_wino = count64("gemm", "i8mm"), count64("wino", "i8mm")   # SMMLA: fewer than SDOT
        assert 1_000_000 < mm_gemm < dot_gemm and mm_wino < dot_wino and mm_wino != mm_gemm
