"""Features (against kaldi-native-fbank called directly), global CMVN and token lists."""

from __future__ import annotations

import kaldi_native_fbank as knf
import kaldiio
import numpy as np
import soundfile

from conftest import REPO, run
from rsqasr.features.cmvn import CMVNStats, mean_std


def prep(root, data):
    run([str(REPO / "local" / "aishell_data_prep.sh"), root / "data_aishell/wav", root / "data_aishell/transcript", data])


def test_fbank_matches_kaldi_native_fbank_and_scp_is_readable(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    out = tmp_path / "fbank"
    run(["python", "-m", "rsqasr.bin.compute_fbank", "--wav_scp", data / "train/wav.scp",
         "--out_ark", out / "raw.ark", "--out_scp", out / "raw.scp", "--out_num_frames", out / "n"])
    feats = dict(kaldiio.load_scp_sequential(str(out / "raw.scp")))
    assert len(feats) == 5
    utt, wav = (data / "train/wav.scp").read_text().splitlines()[0].split()
    samples, rate = soundfile.read(wav, dtype="int16")
    # The reference: kaldi-native-fbank with Kaldi's defaults, 80 bins, no dither.
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, samples.astype(np.float32).tolist())
    fb.input_finished()
    ref = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
    got = feats[utt]
    assert got.shape == (1 + (len(samples) - 400) // 160, 80) == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    assert (out / "n").read_text().splitlines()[0] == f"{utt} {got.shape[0]}"
    # every scp entry points at the final ark, not a temporary one
    assert all(str(out / "raw.ark") + ":" in line for line in (out / "raw.scp").read_text().splitlines())


def test_fbank_bad_entry_names_the_line_and_writes_nothing(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    scp = tmp_path / "wav.scp"
    lines = (data / "train/wav.scp").read_text().splitlines()
    lines[3] = lines[3].split()[0] + " /no/such/file.wav"
    scp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fbank"
    out.mkdir()
    (out / "raw.scp").write_text("previous\n")
    p = run(["python", "-m", "rsqasr.bin.compute_fbank", "--wav_scp", scp, "--out_ark", out / "raw.ark",
             "--out_scp", out / "raw.scp"], check=False)
    assert p.returncode == 1
    assert f"{scp}:4: audio file not found: /no/such/file.wav" in p.stderr
    assert (out / "raw.scp").read_text() == "previous\n"
    assert sorted(x.name for x in out.iterdir()) == ["raw.scp"]


def test_fbank_reads_speed_perturbed_pipes(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    run([str(REPO / "utils" / "perturb_data_dir_speed.sh"), "1.1", data / "train", data / "sp"])
    run(["python", "-m", "rsqasr.bin.compute_fbank", "--wav_scp", data / "sp/wav.scp",
         "--out_ark", tmp_path / "sp.ark", "--out_scp", tmp_path / "sp.scp"])
    run(["python", "-m", "rsqasr.bin.compute_fbank", "--wav_scp", data / "train/wav.scp",
         "--out_ark", tmp_path / "o.ark", "--out_scp", tmp_path / "o.scp"])
    sp = dict(kaldiio.load_scp_sequential(str(tmp_path / "sp.scp")))
    orig = dict(kaldiio.load_scp_sequential(str(tmp_path / "o.scp")))
    for utt, m in orig.items():
        # 1.1x speed: about 1/1.1 of the frames
        assert abs(sp["sp1.1-" + utt].shape[0] - m.shape[0] / 1.1) <= 2


def test_cmvn_stats_are_kaldi_format(tmp_path):
    rng = np.random.default_rng(0)
    mats = {f"u{i}": rng.normal(3.0, 2.0, size=(50 + i, 4)).astype(np.float32) for i in range(3)}
    kaldiio.save_ark(str(tmp_path / "f.ark"), mats, scp=str(tmp_path / "f.scp"))
    run(["python", "-m", "rsqasr.bin.compute_cmvn", "--feats_scp", tmp_path / "f.scp", "--out", tmp_path / "cmvn.ark"])
    stats = kaldiio.load_mat(str(tmp_path / "cmvn.ark"))
    allx = np.concatenate(list(mats.values())).astype(np.float64)
    assert stats.shape == (2, 5)
    assert stats[0, -1] == allx.shape[0] and stats[1, -1] == 0
    np.testing.assert_allclose(stats[0, :-1], allx.sum(0), rtol=1e-12)
    np.testing.assert_allclose(stats[1, :-1], (allx ** 2).sum(0), rtol=1e-12)
    mean, std = mean_std(stats)
    np.testing.assert_allclose(mean, allx.mean(0), rtol=1e-10)
    np.testing.assert_allclose(std, allx.std(0), rtol=1e-8)


def test_cmvn_rejects_dimension_change(tmp_path):
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"a": np.zeros((3, 4), np.float32), "b": np.zeros((3, 5), np.float32)},
                     scp=str(tmp_path / "f.scp"))
    p = run(["python", "-m", "rsqasr.bin.compute_cmvn", "--feats_scp", tmp_path / "f.scp", "--out", tmp_path / "c.ark"],
            check=False)
    assert p.returncode == 1 and f"{tmp_path / 'f.scp'}:2: 'b'" in p.stderr and not (tmp_path / "c.ark").exists()
    s = CMVNStats(4)
    s.accumulate(np.ones((2, 4)))
    assert s.stats[0, -1] == 2


def test_char_token_list_order(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 好好学习\nu2 天天向上\nu3 好天\n", encoding="utf-8")
    run(["python", "-m", "rsqasr.bin.make_token_list", "--text", text, "--out", tmp_path / "tokens.txt"])
    tokens = (tmp_path / "tokens.txt").read_text(encoding="utf-8").splitlines()
    # counts: 好3 天3 学1 习1 向1 上1 -> by count, ties in code-point order
    assert tokens == ["<blank>", "<unk>", "天", "好", "上", "习", "向", "学"]


def test_bpe_token_list(tmp_path):
    text = tmp_path / "text"
    rng = np.random.default_rng(0)
    chars = list("我们今天学习语音识别模型量化")
    text.write_text("".join(f"u{i:03d} {''.join(rng.choice(chars, 8))}\n" for i in range(200)), encoding="utf-8")
    run(["python", "-m", "rsqasr.bin.make_token_list", "--text", text, "--token_type", "bpe", "--nbpe", "30",
         "--bpe_model_prefix", tmp_path / "bpe/bpe", "--out", tmp_path / "bpe/tokens.txt"])
    tokens = (tmp_path / "bpe/tokens.txt").read_text(encoding="utf-8").splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and len(tokens) == 30 + 1  # 30 pieces incl. <unk>, plus <blank>
    assert len(set(tokens)) == len(tokens)
    assert (tmp_path / "bpe/bpe.model").is_file()


def test_truncated_wav_is_warned_and_counted(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    lines = (data / "train/wav.scp").read_text().splitlines()
    utt, wav = lines[1].split()
    cut = tmp_path / "cut.wav"
    blob = open(wav, "rb").read()
    cut.write_bytes(blob[: len(blob) - 3000])        # the header still declares the full data chunk
    lines[1] = f"{utt} {cut}"
    scp = tmp_path / "wav.scp"
    scp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fbank"
    p = run(["python", "-m", "rsqasr.bin.compute_fbank", "--wav_scp", scp, "--out_ark", out / "raw.ark",
             "--out_scp", out / "raw.scp"])
    assert f"{scp}:2: '{utt}': {cut} is truncated" in p.stderr and "1 of 5 wav files truncated" in p.stderr
    assert len(dict(kaldiio.load_scp_sequential(str(out / "raw.scp")))) == 5
