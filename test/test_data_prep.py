"""AISHELL data preparation, data dir validation and fixing, and their bad-input paths."""

from __future__ import annotations

import numpy as np
import soundfile

from conftest import FAKE_CORPUS, REPO, run, tone, utt_id

PREP = str(REPO / "local" / "aishell_data_prep.sh")


def prep(root, data, check=True):
    return run([PREP, root / "data_aishell" / "wav", root / "data_aishell" / "transcript", data], check=check)


def read(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_data_dirs_are_sorted_and_character_level(fake_aishell, tmp_path):
    data = tmp_path / "data"
    p = prep(fake_aishell, data)
    assert "AISHELL data preparation succeeded" in p.stdout
    for split, spks in FAKE_CORPUS.items():
        d = data / split
        utts = sorted(utt_id(s, n) for s, us in spks.items() for n, _ in us)
        assert [line.split()[0] for line in read(d / "wav.scp")] == utts
        assert read(d / "utt2spk") == [f"{u} {u[6:11]}" for u in utts]
        assert read(d / "spk2utt") == [f"{s} " + " ".join(utt_id(s, n) for n, _ in us) for s, us in sorted(spks.items())]
        texts = {utt_id(s, n): w.replace(" ", "") for s, us in spks.items() for n, w in us}
        assert read(d / "text") == [f"{u} {texts[u]}" for u in utts]
    assert read(data / "train" / "text")[0] == "BAC009S0002W0001 而对楼市"


def test_bad_wav_format_is_an_error_naming_the_file_and_keeps_old_output(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    before = (data / "train" / "wav.scp").read_bytes()
    bad = fake_aishell / "data_aishell/wav/train/S0002" / f"{utt_id('S0002', 2)}.wav"
    for kind in ("rate", "stereo", "8bit", "empty", "garbage"):
        if kind == "rate":
            soundfile.write(bad, tone(0.5, 300, rate=8000), 8000, subtype="PCM_16")
        elif kind == "stereo":
            soundfile.write(bad, np.stack([tone(0.5, 300)] * 2, axis=1), 16000, subtype="PCM_16")
        elif kind == "8bit":
            soundfile.write(bad, tone(0.5, 300), 16000, subtype="PCM_U8")
        elif kind == "empty":
            soundfile.write(bad, np.zeros(0, np.int16), 16000, subtype="PCM_16")
        else:
            bad.write_bytes(b"RIFF\x00\x00not a wav")
        p = prep(fake_aishell, data, check=False)
        assert p.returncode != 0, kind
        assert str(bad) in p.stderr, (kind, p.stderr)
        assert (data / "train" / "wav.scp").read_bytes() == before, kind


def test_transcript_line_without_text_names_file_and_line(fake_aishell, tmp_path):
    tr = fake_aishell / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    lines = tr.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].split()[0]
    tr.write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = prep(fake_aishell, tmp_path / "data", check=False)
    assert p.returncode != 0
    assert f"{tr}:3: utterance '{lines[2]}' has no text" in p.stderr
    assert not (tmp_path / "data" / "train").exists()


def test_unmatched_audio_and_transcripts_are_dropped_and_counted(fake_aishell, tmp_path):
    tr = fake_aishell / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    with open(tr, "a", encoding="utf-8") as f:
        f.write("BAC009S0002W9998 没有 音频\nBAC009S0002W9999 也 没有\n")
    extra = fake_aishell / "data_aishell/wav/train/S0003" / "BAC009S0003W0500.wav"
    soundfile.write(extra, tone(0.5, 300), 16000, subtype="PCM_16")
    data = tmp_path / "data"
    p = prep(fake_aishell, data)
    assert "2 transcript lines have no audio" in p.stderr
    assert "1 audio files have no transcript" in p.stderr
    assert "BAC009S0003W0500" not in (data / "train" / "wav.scp").read_text()
    assert len(read(data / "train" / "wav.scp")) == 5


def test_validate_catches_missing_audio_unsorted_and_mismatch(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    d = data / "train"
    validate = ["python", "-m", "rsqasr.bin.validate_data_dir"]
    run([*validate, d])
    # a wav that disappeared after data prep
    wav = read(d / "wav.scp")[1].split()[1]
    (tmp_path / "moved.wav").write_bytes(open(wav, "rb").read())
    import os
    os.unlink(wav)
    p = run([*validate, d], check=False)
    assert p.returncode == 1 and f"{d / 'wav.scp'}:2: audio of 'BAC009S0002W0002' not found" in p.stderr
    os.rename(tmp_path / "moved.wav", wav)
    # unsorted text
    t = read(d / "text")
    (d / "text").write_text("\n".join([t[1], t[0], *t[2:]]) + "\n", encoding="utf-8")
    p = run([*validate, d], check=False)
    assert p.returncode == 1 and "not sorted" in p.stderr and str(d / "text") in p.stderr
    # fix_data_dir sorts and drops utterances missing from one file, keeping a backup
    (d / "text").write_text("\n".join(sorted(t)[:-1]) + "\n", encoding="utf-8")
    p = run([str(REPO / "utils" / "fix_data_dir.sh"), d])
    assert "dropping 1 of 5 utterances" in p.stderr
    assert len(read(d / "wav.scp")) == 4 and (d / ".backup" / "wav.scp").is_file()
    assert len(read(d / ".backup" / "wav.scp")) == 5
    assert "BAC009S0003W0012" not in (d / "spk2utt").read_text()


def test_speed_perturbation_and_combine(fake_aishell, tmp_path):
    data = tmp_path / "data"
    prep(fake_aishell, data)
    run([str(REPO / "utils" / "perturb_data_dir_speed.sh"), "0.9", data / "train", data / "train_sp0.9"])
    wav = read(data / "train_sp0.9" / "wav.scp")[0]
    assert wav.startswith("sp0.9-BAC009S0002W0001 sox -t wav ") and wav.endswith("speed 0.9 |")
    assert read(data / "train_sp0.9" / "utt2spk")[0] == "sp0.9-BAC009S0002W0001 sp0.9-S0002"
    run([str(REPO / "utils" / "combine_data.sh"), data / "train_sp", data / "train", data / "train_sp0.9"])
    run(["python", "-m", "rsqasr.bin.validate_data_dir", data / "train_sp"])
    assert len(read(data / "train_sp" / "text")) == 10
    p = run([str(REPO / "utils" / "combine_data.sh"), data / "x", data / "train", data / "train"], check=False)
    assert p.returncode == 1 and "duplicate utterance ids" in p.stderr


def test_train_and_test_sharing_an_utterance_is_refused(fake_aishell, tmp_path):
    import shutil

    data = tmp_path / "data"
    prep(fake_aishell, data)
    validate = ["python", "-m", "rsqasr.bin.validate_data_dir", "--check_audio", "false"]
    run([*validate, "--disjoint_from", f"{data / 'dev'} {data / 'test'}", data / "train"])
    # copy the test set into train: the leak is named
    leaky = tmp_path / "leaky"
    shutil.copytree(data / "train", leaky)
    for name in ("wav.scp", "text", "utt2spk"):
        lines = read(leaky / name) + read(data / "test" / name)
        (leaky / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    (leaky / "spk2utt").write_text((data / "train" / "spk2utt").read_text() + (data / "test" / "spk2utt").read_text())
    p = run([*validate, "--disjoint_from", f"{data / 'dev'} {data / 'test'}", leaky], check=False)
    assert p.returncode == 1 and "share 2 utterance id(s)" in p.stderr and str(data / "test" / "utt2spk") in p.stderr
