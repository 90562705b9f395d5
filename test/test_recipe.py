"""egs/aishell/run.sh stages 0-2 on an AISHELL-layout tree (the real download cannot run here)."""

from __future__ import annotations

import kaldiio
import numpy as np

from conftest import FAKE_CORPUS, run, recipe_copy


def test_help_lists_every_stage_and_unknown_option_fails(tmp_path):
    d = recipe_copy(tmp_path, "aishell")
    out = run(["./run.sh", "--help"], cwd=d).stdout
    for stage in ("0  corpus", "1  data", "2  features"):
        assert stage in out
    p = run(["./run.sh", "--no_such_option", "1"], cwd=d, check=False)
    assert p.returncode == 2 and "unknown option '--no_such_option'" in p.stderr
    p = run(["./run.sh", "--speed_perturb", "maybe"], cwd=d, check=False)
    assert p.returncode == 2


def test_bad_stage_ranges_and_job_counts_are_usage_errors(tmp_path):
    d = recipe_copy(tmp_path, "aishell")
    for args, why in ((["--stage", "9"], "the stages are 0..8"), (["--stage", "-1", "--stop_stage", "-1"], "0..8"),
                      (["--stage", "2", "--stop_stage", "1"], "nothing to run"),
                      (["--stage", "abc"], "must be an integer"), (["--stop_stage", "xyz"], "must be an integer"),
                      (["--nj", "0"], "positive integer"), (["--force", "yes"], "--force")):
        p = run(["./run.sh", *args], cwd=d, check=False)
        assert p.returncode == 2 and why in p.stdout + p.stderr, (args, p.stdout, p.stderr)
        assert "Successfully" not in p.stdout
    assert not (d / "data").exists()


def test_stages_0_to_2_on_an_aishell_tree_then_skip_on_rerun(fake_aishell, tmp_path):
    d = recipe_copy(tmp_path, "aishell")
    p = run(["./run.sh", "--stage", "0", "--stop_stage", "2", "--local_data_opts", f"--aishell_root {fake_aishell}", "--nj", "2"], cwd=d)
    assert "Stage 2: features, CMVN and tokens" in p.stdout
    # speed perturbation is on in conf/asr.conf for aishell: train_sp has 3 copies
    counts = {s: sum(len(u) for u in FAKE_CORPUS[s].values()) for s in FAKE_CORPUS}
    counts["train_sp"] = 3 * counts.pop("train")
    for s, n in counts.items():
        feats = dict(kaldiio.load_scp_sequential(str(d / f"data/{s}/feats.scp")))
        assert len(feats) == n and all(m.shape[1] == 80 and m.shape[0] > 10 for m in feats.values())
        frames = dict(line.split() for line in (d / f"data/{s}/utt2num_frames").read_text().splitlines())
        assert {u: int(f) for u, f in frames.items()} == {u: m.shape[0] for u, m in feats.items()}
    stats = kaldiio.load_mat(str(d / "data/train_sp/cmvn.ark"))
    assert stats.shape == (2, 81) and stats[0, -1] > 0 and np.all(stats[1, :-1] > 0)
    tokens = (d / "data/token_list/char/tokens.txt").read_text(encoding="utf-8").splitlines()
    # 交 市 成 楼 occur twice in train, every other character once; ties in code-point order
    assert tokens[:6] == ["<blank>", "<unk>", "交", "市", "成", "楼"]
    p = run(["./run.sh", "--stage", "0", "--stop_stage", "2", "--local_data_opts", f"--aishell_root {fake_aishell}", "--nj", "2"], cwd=d)
    assert p.stdout.count("already done") == 3 and "fbank for" not in p.stdout
    # other settings are not "done": changing --nj does not matter, changing the tokens redoes stage 2
    p = run(["./run.sh", "--stage", "2", "--stop_stage", "2", "--local_data_opts", f"--aishell_root {fake_aishell}", "--token_type", "bpe",
             "--nbpe", "19"], cwd=d)
    assert "Stage 2: features, CMVN and tokens" in p.stdout
    assert (d / "data/token_list/bpe_unigram19/bpe.model").is_file()
    # a vocabulary smaller than the character set is a clear error, and the char list stays
    p = run(["./run.sh", "--stage", "2", "--stop_stage", "2", "--local_data_opts", f"--aishell_root {fake_aishell}", "--token_type", "bpe", "--nbpe", "5"],
            cwd=d, check=False)
    assert p.returncode != 0 and "sentencepiece training" in p.stderr and "Vocabulary size is smaller" in p.stderr
    assert (d / "data/token_list/char/tokens.txt").is_file()


def test_missing_aishell_root_is_a_clear_error(tmp_path):
    d = recipe_copy(tmp_path, "aishell")
    p = run(["./run.sh", "--stop_stage", "0", "--local_data_opts", f"--aishell_root {tmp_path / 'nowhere'}"], cwd=d, check=False)
    assert p.returncode == 1 and "has no" in p.stdout + p.stderr


def test_mini_recipe_stages_0_to_2_tiny_corpus_then_skip(tmp_path):
    d = recipe_copy(tmp_path, "mini_aishell")
    args = ["./run.sh", "--stage", "0", "--stop_stage", "2", "--local_data_opts", "--scale 0.0015", "--nj", "2"]
    p = run(args, cwd=d)
    assert "Stage 0: corpus (local/data.sh" in p.stdout and "make_mini_aishell.sh: synthesizing" in p.stdout
    assert (d / "db/data_aishell/transcript/aishell_transcript_v0.8.txt").is_file()
    for s in ("train", "dev", "test"):
        run(["python", "-m", "rsqasr.bin.validate_data_dir", "--check_feats", "true", "--feat_dim", "80", d / "data" / s])
    assert (d / "data/train/cmvn.ark").is_file()
    tokens = (d / "data/token_list/char/tokens.txt").read_text(encoding="utf-8").splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and len(tokens) > 10
    p = run(args, cwd=d)
    assert p.stdout.count("already done") == 3


def test_a_failed_forced_stage_is_not_left_marked_done(fake_aishell, tmp_path):
    d = recipe_copy(tmp_path, "aishell")
    run(["./run.sh", "--stage", "0", "--stop_stage", "1", "--local_data_opts", f"--aishell_root {fake_aishell}"], cwd=d)
    stamp = d / "exp/stamps/stage1_data.done"
    assert stamp.is_file()
    # a forced re-run that dies (here: its input went away) must not leave the old stamp behind
    moved = tmp_path / "moved"
    (fake_aishell / "data_aishell").rename(moved)
    try:
        p = run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--local_data_opts", f"--aishell_root {fake_aishell}", "--force", "true"],
                cwd=d, check=False)
    finally:
        moved.rename(fake_aishell / "data_aishell")
    assert p.returncode != 0 and not stamp.exists()
    p = run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--local_data_opts", f"--aishell_root {fake_aishell}"], cwd=d)
    assert "Stage 1: data preparation" in p.stdout
