"""The built-in scorer against sclite, pinyin error rates, and the CTC prefix beam search."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from conftest import run
from rsqasr.decoding import ctc_prefix_beam_search
from rsqasr.scoring import Counts, align, find_sclite, pinyin_syllables, sclite_counts


def test_align_counts_and_pairs():
    a = align(list("今天天气"), list("今天去啊气"))
    assert (a.counts.cor, a.counts.sub, a.counts.dele, a.counts.ins) == (3, 1, 0, 1)
    assert a.counts.ref == 4 and a.counts.rate == 0.5
    assert align([], list("ab")).counts.ins == 2 and align(list("ab"), []).counts.dele == 2


@pytest.mark.skipif(find_sclite() is None, reason="sctk not installed")
def test_builtin_scorer_agrees_with_sclite(tmp_path):
    rng = np.random.default_rng(0)
    alphabet = list("我们你好天气今去啊")
    refs, hyps = {}, {}
    for i in range(300):
        r = list(rng.choice(alphabet, rng.integers(1, 12)))
        h = list(r)
        for _ in range(rng.integers(0, 5)):  # random edits
            op = rng.integers(3)
            pos = int(rng.integers(len(h) + 1))
            if op == 0:
                h.insert(pos, str(rng.choice(alphabet)))
            elif op == 1 and h:
                h.pop(min(pos, len(h) - 1))
            elif h:
                h[min(pos, len(h) - 1)] = str(rng.choice(alphabet))
        refs[f"u{i:03d}"], hyps[f"u{i:03d}"] = r, h
    total = Counts()
    for u in refs:
        total += align(refs[u], hyps[u]).counts
    s = sclite_counts(refs, hyps, tmp_path, find_sclite())
    assert (s.ref, s.cor, s.sub, s.dele, s.ins) == (total.ref, total.cor, total.sub, total.dele, total.ins)


def test_score_cli_writes_results_and_pinyin(tmp_path):
    (tmp_path / "ref").write_text("u1 今天天气好\nu2 我们去\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("u1 今天天汽好\nu2 我门\n", encoding="utf-8")
    run(["python", "-m", "rsqasr.bin.score", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--dir", tmp_path / "d"])
    r = json.loads((tmp_path / "d/result.json").read_text())
    assert (r["ref_chars"], r["sub"], r["del"], r["ins"]) == (8, 2, 1, 0)
    assert r["cer"] == pytest.approx(3 / 8)
    # 汽/气 (qi4) and 门/们 (men2 vs men5): toneless both right, with tones 们 differs
    assert r["pinyin_ser_notone"] == pytest.approx(1 / 8)
    assert r["pinyin_ser_tone"] == pytest.approx(2 / 8)
    if find_sclite():
        assert r["sclite_cer"] == r["cer"]
    assert "REF: 我 们 去" in (tmp_path / "d/align.txt").read_text(encoding="utf-8")


def test_score_rejects_hypotheses_of_unknown_utterances(tmp_path):
    (tmp_path / "ref").write_text("u1 好\n", encoding="utf-8")
    (tmp_path / "hyp").write_text("u1 好\nu9 坏\n", encoding="utf-8")
    p = run(["python", "-m", "rsqasr.bin.score", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--dir",
             tmp_path / "d"], check=False)
    assert p.returncode == 1 and "u9" in p.stderr and str(tmp_path / "hyp") in p.stderr


def test_pinyin_syllables():
    assert pinyin_syllables("你好吗", True) == ["ni3", "hao3", "ma5"]
    assert pinyin_syllables("你好吗", False) == ["ni", "hao", "ma"]


def collapse(path):
    out, prev = [], None
    for t in path:
        if t != prev and t != 0:
            out.append(t)
        prev = t
    return tuple(out)


def test_prefix_beam_search_matches_exhaustive_search():
    rng = np.random.default_rng(1)
    for _ in range(20):
        T, V = int(rng.integers(1, 6)), 4
        lp = np.log(rng.dirichlet(np.ones(V), size=T))
        exact: dict = {}
        for path in itertools.product(range(V), repeat=T):
            k = collapse(path)
            exact[k] = np.logaddexp(exact.get(k, -np.inf), sum(lp[t, path[t]] for t in range(T)))
        best = max(exact, key=exact.get)
        got = ctc_prefix_beam_search(lp, beam=V ** T, token_beam=V)
        assert got[0][0] == best
        assert got[0][1] == pytest.approx(exact[best])
        assert {k: v for k, v in got} == pytest.approx(exact)
        # beam 1 is not greedy in general, but the greedy path's prefix is found with a wide beam
        assert collapse(lp.argmax(1)) in dict(got)


def test_bootstrap_intervals():
    from rsqasr.scoring import bootstrap_ci, paired_bootstrap

    refs = [10] * 200
    errs = [1] * 100 + [3] * 100  # rate 0.2
    lo, hi = bootstrap_ci(refs, errs)
    assert lo < 0.2 < hi and hi - lo < 0.05
    assert bootstrap_ci(refs, [2] * 200) == (0.2, 0.2)  # no spread, no interval
    lo, hi, p = paired_bootstrap(refs, errs, [e - 1 for e in errs])  # b one error fewer everywhere
    assert lo == pytest.approx(-0.1) and hi == pytest.approx(-0.1) and p == 0.0
    lo, hi, p = paired_bootstrap(refs, errs, errs)
    assert lo == hi == 0.0 and p == 1.0


def test_bootstrap_over_sentences():
    from rsqasr.scoring import bootstrap_ci, paired_bootstrap

    # 20 sentences, each said by 10 speakers with the same errors: 20 independent units, not 200
    sent = [f"s{i % 20}" for i in range(200)]
    refs = [10] * 200
    errs = [1 if i % 20 < 10 else 3 for i in range(200)]
    lo_u, hi_u = bootstrap_ci(refs, errs)
    lo_s, hi_s = bootstrap_ci(refs, errs, groups=sent)
    assert lo_s < 0.2 < hi_s
    assert 2.0 < (hi_s - lo_s) / (hi_u - lo_u) < 4.5  # about sqrt(10) wider
    lo_1, hi_1 = bootstrap_ci(refs, errs, groups=[str(i) for i in range(200)])  # one utterance per group
    assert hi_1 - lo_1 == pytest.approx(hi_u - lo_u, rel=0.2)
    lo, hi, p = paired_bootstrap(refs, errs, [e - 1 for e in errs], groups=sent)
    assert lo == pytest.approx(-0.1) and hi == pytest.approx(-0.1) and p == 0.0
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(refs, errs, groups=sent[:10])


def test_compare_hyps_counts_and_rejects_other_utterances(tmp_path):
    import sys

    (tmp_path / "ref").write_text("u1 你好吗\nu2 我很好\nu3 谢谢\n", encoding="utf-8")
    (tmp_path / "a").write_text("u1 你好吗\nu2 我很\nu3 谢谢\n", encoding="utf-8")
    (tmp_path / "b").write_text("u1 你 好 吗\nu2 我很好\nu3 谢\n", encoding="utf-8")
    out = tmp_path / "agree.json"
    cmd = [sys.executable, "-m", "rsqasr.bin.compare_hyps", "--ref", tmp_path / "ref", "--out", out]
    run([*cmd, "--a", tmp_path / "a", "--b", tmp_path / "b"])
    g = json.loads(out.read_text(encoding="utf-8"))
    assert (g["utts"], g["differ"]) == (3, 2)  # spaces do not count as a difference
    assert g["cer_a"] == pytest.approx(1 / 8) and g["cer_b"] == pytest.approx(1 / 8)
    before = out.read_bytes()
    (tmp_path / "c").write_text("u1 你好吗\nu9 我很好\nu3 谢谢\n", encoding="utf-8")
    p = run([*cmd, "--a", tmp_path / "a", "--b", tmp_path / "c"], check=False)
    assert p.returncode == 1 and "different utterances" in p.stderr
    assert out.read_bytes() == before  # the earlier result is left as it was


def test_score_refuses_empty_or_non_utf8_files(tmp_path):
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.write_text("u1 你好\n", encoding="utf-8")
    hyp.write_text("", encoding="utf-8")
    p = run(["python", "-m", "rsqasr.bin.score", "--ref", ref, "--hyp", hyp, "--dir", tmp_path / "out"], check=False)
    assert p.returncode == 1 and f"{hyp}: empty" in p.stderr and "Traceback" not in p.stderr
    hyp.write_bytes("u1 你好\n".encode("gbk"))
    p = run(["python", "-m", "rsqasr.bin.score", "--ref", ref, "--hyp", hyp, "--dir", tmp_path / "out"], check=False)
    assert p.returncode == 1 and f"{hyp}:1: not UTF-8" in p.stderr and "Traceback" not in p.stderr
