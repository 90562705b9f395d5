"""Audio in, text out: rsq-decode computes the model's fbank from wav files (src_arm/app/wav.c,
fbank.c) with the options the export writes into the file (FBNK). Checked against
kaldi-native-fbank (what stage 2 uses) on synthetic speech-like audio, host and ARMv7; bad audio
is refused with one line naming the file; a model without FBNK is refused for audio."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from rsqasr.export import ModelFormatError, encode_model, fp32_intmodel, read_model, write_model
from rsqasr.export.writer import fbank_record
from rsqasr.features.fbank import compute_fbank, fbank_options, fbank_settings

from conftest import RSQ_DECODE, need_binary
from test_quant import TINY_DFSMN, tiny

HOST = RSQ_DECODE["host"]
DIM = 80
TOKENS = ["<blank>", "<unk>"] + list("的一是不了人我在有他")
RATE = 16000


_need = need_binary


def _speechlike(seconds: float, seed: int, quiet: bool = False) -> np.ndarray:
    """Voiced-like audio: harmonics of a gliding pitch under a syllable-rate envelope, plus noise;
    quiet: 40 dB down with a silent stretch (the low mel bins of such frames are where float
    FFTs disagree most)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(h * phase) / h for h in range(1, 12))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(t.shape)
    x = 0.25 * x / np.abs(x).max() * (0.01 if quiet else 1.0)
    if quiet:
        x[len(x) // 3: len(x) // 2] = 0.0
    return np.round(x * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    lines = []
    for i, (sec, quiet) in enumerate([(0.6, False), (1.13, False), (0.9, True), (1.7, False)]):
        p = d / f"utt{i}.wav"
        sf.write(p, _speechlike(sec, i, quiet), RATE, subtype="PCM_16")
        lines.append(f"utt{i} {p}")
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    opts = fbank_options(num_mel_bins=DIM)
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for line in lines:
            utt, path = line.split()
            x, _ = sf.read(path, dtype="int16")
            w[utt] = compute_fbank(x, opts)
    net = tiny(TINY_DFSMN, seed=3, dim=DIM, vocab=len(TOKENS))
    im = fp32_intmodel(net)
    rng = np.random.default_rng(0)
    mean, std = (rng.standard_normal(DIM) + 10).astype(np.float32), (rng.random(DIM) + 2).astype(np.float32)
    write_model(d / "model.rsq", im, TOKENS, "char", mean, std, {"test": 1}, fbank=fbank_settings(num_mel_bins=DIM))
    write_model(d / "nofbank.rsq", im, TOKENS, "char", mean, std, {"test": 1})
    return d


def _run(binary: Path, *args, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([str(binary), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_fbnk_section_round_trips_and_unsupported_options_are_refused(audio):
    mf = read_model(audio / "model.rsq")
    assert mf.fbank is not None and read_model(audio / "nofbank.rsq").fbank is None
    f = mf.fbank
    assert (f.sample_rate, f.num_bins, f.frame_length, f.frame_shift, f.fft_size) == (16000, DIM, 400, 160, 512)
    assert (f.low_freq, f.high_freq, f.dither) == (20.0, 8000.0, 0.0) and abs(f.preemph - 0.97) < 1e-7
    for key, value in [("dither", 1.0), ("window_type", "hamming"), ("snip_edges", False)]:
        with pytest.raises(ValueError, match=f"fbank option {key}="):
            fbank_record({**fbank_settings(), key: value})
    net = tiny(TINY_DFSMN, seed=3, dim=DIM, vocab=len(TOKENS))
    with pytest.raises(ValueError, match="40 mel bins, the model takes 80"):
        encode_model(fp32_intmodel(net), TOKENS, "char", np.zeros(DIM, np.float32), np.ones(DIM, np.float32), {},
                     fbank_settings(num_mel_bins=40))
    # a corrupt FBNK (FFT size 500) is refused by both readers, naming the section
    blob = bytearray((audio / "model.rsq").read_bytes())
    i = blob.index(struct.pack("<iiiii", 16000, DIM, 400, 160, 512))
    blob[i + 16:i + 20] = struct.pack("<i", 500)
    import zlib
    blob[28:32] = struct.pack("<I", zlib.crc32(bytes(blob[64:])))
    blob[60:64] = struct.pack("<I", zlib.crc32(bytes(blob[:60])))
    bad = audio / "badfbnk.rsq"
    bad.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError, match="FBNK: FFT size 500"):
        read_model(bad)
    p = _run(_need(HOST), bad, audio / "wav.scp", check=False)
    assert p.returncode == 1 and "FBNK: FFT size 500" in p.stderr


@pytest.mark.parametrize("target", ["host", "armv7", "aarch64"])
def test_wav_scp_features_match_kaldi_native_fbank_and_hypotheses_match_feats(audio, tmp_path, target):
    binary = _need(RSQ_DECODE[target])
    _run(binary, "--dump-feats", tmp_path / "f.ark", "--dump-logits", tmp_path / "lw.ark", audio / "model.rsq",
         audio / "wav.scp", tmp_path / "hyp_wav.txt")
    _run(binary, "--dump-logits", tmp_path / "lf.ark", audio / "model.rsq", audio / "feats.scp",
         tmp_path / "hyp_feats.txt")
    mine = dict(kaldiio.load_ark(str(tmp_path / "f.ark")))
    ref = dict(kaldiio.load_scp(str(audio / "feats.scp")))
    assert sorted(mine) == sorted(ref) == ["utt0", "utt1", "utt2", "utt3"]
    for utt in ref:
        assert mine[utt].shape == ref[utt].shape, utt
        assert np.abs(mine[utt] - ref[utt]).max() < 1e-3, (utt, np.abs(mine[utt] - ref[utt]).max())
    assert (tmp_path / "hyp_wav.txt").read_text() == (tmp_path / "hyp_feats.txt").read_text()
    lw, lf = dict(kaldiio.load_ark(str(tmp_path / "lw.ark"))), dict(kaldiio.load_ark(str(tmp_path / "lf.ark")))
    for utt in lf:
        assert np.allclose(lw[utt], lf[utt], atol=1e-2), utt


def test_single_wav_file_is_one_utterance_named_after_it(audio, tmp_path):
    p = _run(_need(HOST), audio / "model.rsq", audio / "utt1.wav")
    full = _run(HOST, audio / "model.rsq", audio / "wav.scp").stdout.splitlines()
    assert p.stdout.splitlines() == [line for line in full if line.split()[0] == "utt1"]


def _wav_bytes(fmt_tag=1, channels=1, rate=RATE, bits=16, data=b"\0\1" * 800, cut=0, riff=b"RIFF"):
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    blob = riff + struct.pack("<I", len(body)) + body
    return blob[:len(blob) - cut] if cut else blob


@pytest.mark.parametrize("name,blob,needle", [
    ("text.wav", b"hello, this is not audio at all\n", "not a RIFF/WAVE file"),
    ("float.wav", _wav_bytes(fmt_tag=3, bits=32), "audio format 3 is not PCM"),
    ("u8.wav", _wav_bytes(bits=8), "8-bit samples: only 16-bit PCM"),
    ("stereo.wav", _wav_bytes(channels=2), "2 channels: only mono"),
    ("8k.wav", _wav_bytes(rate=8000), "sample rate 8000 Hz; the model takes 16000 Hz"),
    ("cut.wav", _wav_bytes(cut=100), "truncated: the data chunk says 1600 bytes, the file holds 1500"),
    ("short.wav", _wav_bytes(data=b"\0\0" * 100), "100 samples, shorter than one frame (400 samples)"),
])
def test_bad_audio_is_refused_naming_the_file(audio, tmp_path, name, blob, needle):
    wav = tmp_path / name
    wav.write_bytes(blob)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"good {audio / 'utt0.wav'}\nbad {wav}\n")
    out = tmp_path / "hyp.txt"
    out.write_text("kept\n")
    binary = _need(HOST)
    if name == "text.wav":   # not RIFF: as an scp entry it would make the scp a feats.scp, so give it alone
        p = _run(binary, audio / "model.rsq", wav, out, check=False)
    else:
        p = _run(binary, audio / "model.rsq", scp, out, check=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and needle in lines[0] and str(wav) in lines[0], p.stderr
    assert out.read_text() == "kept\n"          # nothing half-written over the old output
    assert not list(tmp_path.glob("hyp.txt.tmp*"))


def test_audio_needs_a_model_with_fbank_options(audio):
    p = _run(_need(HOST), audio / "nofbank.rsq", audio / "wav.scp", check=False)
    assert p.returncode == 1 and "has no FBNK section" in p.stderr and "nofbank.rsq" in p.stderr


def test_compare_feats_reports_the_worst_value_and_refuses_mismatches():
    from rsqasr.bin.compare_feats import compare
    from rsqasr.data.datadir import DataDirError

    a = {"u1": np.zeros((3, 2), np.float32), "u2": np.ones((2, 2), np.float32)}
    b = {"u1": np.zeros((3, 2), np.float32), "u2": np.array([[1, 1], [1, 1.004]], np.float32)}
    r = compare(a, b)
    assert (r["utts"], r["frames"], r["frames_over_1e-3"]) == (2, 5, 1)
    assert r["max_abs_diff"] == pytest.approx(0.004, rel=1e-3) and r["worst"][:3] == ["u2", 1, 1]
    with pytest.raises(DataDirError, match="u2: shapes"):
        compare(a, {**b, "u2": np.ones((3, 2), np.float32)})
    with pytest.raises(DataDirError, match="different utterances"):
        compare(a, {"u1": a["u1"]})
