"""Training (loss falls, exact resume after a kill, DDP with 2 CPU processes), decoding and the
bad-input paths of the training and decoding entry points, on a tiny corpus of tones."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, make_fake_aishell, pids_matching, recipe_copy, run, script_env

TINY_MODEL = {"kind": "convdfsmn", "front_channels": 16, "context_kernel": 5, "unit_widths": [24], "num_blocks": 1,
              "hidden_size": 32, "proj_size": 16, "memory_size": 3, "output_size": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Stages 0-2 of egs/aishell on the tone corpus (no speed perturbation)."""
    tmp = tmp_path_factory.mktemp("train")
    root = make_fake_aishell(tmp / "aishell")
    d = recipe_copy(tmp, "aishell")
    run(["./run.sh", "--stop_stage", "2", "--local_data_opts", f"--aishell_root {root}", "--nj", "1", "--speed_perturb", "false"], cwd=d)
    return d


def write_conf(path: Path, **train) -> Path:
    conf = {"model": TINY_MODEL, "specaug": None, "optim": {"lr": 0.005},
            "scheduler": {"name": "constant"},
            "train": {"epochs": 3, "batch_size": 2, "save_interval_steps": 1, "log_interval": 1, "keep_nbest": 2,
                      **train}}
    path.write_text(yaml.safe_dump(conf))
    return path


def train_cmd(d: Path, conf: Path, exp: Path, *extra) -> list:
    return ["python", "-m", "rsqasr.bin.train", "--config", conf, "--train_dir", d / "data/train",
            "--valid_dir", d / "data/dev", "--token_list", d / "data/token_list/char/tokens.txt",
            "--cmvn", d / "data/train/cmvn.ark", "--exp_dir", exp, *extra]


def history(exp: Path) -> list[dict]:
    lines = (exp / "history.tsv").read_text().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, map(float, line.split("\t")))) for line in lines[1:]]


def test_training_loss_falls_and_outputs_exist(corpus, tmp_path):
    exp = tmp_path / "exp"
    conf = write_conf(tmp_path / "c.yaml", epochs=8)
    run(train_cmd(corpus, conf, exp))
    h = history(exp)
    assert len(h) == 8
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"], h
    for f in ("checkpoint.pt", "1epoch.pth", "8epoch.pth", "valid.cer.ave.pth", "config.yaml", "tokens.txt",
              "cmvn.npy", "train.log", "images/loss.png", "images/cer.png"):
        assert (exp / f).exists(), f
    # decode and score the averaged model
    out = tmp_path / "dec"
    run(["python", "-m", "rsqasr.bin.decode", "--exp_dir", exp, "--feats_scp", corpus / "data/test/feats.scp",
         "--out", out / "hyp.txt", "--mode", "beam", "--beam", "4"])
    hyps = (out / "hyp.txt").read_text(encoding="utf-8").splitlines()
    assert [h.split()[0] for h in hyps] == ["BAC009S0764W0031", "BAC009S0764W0032"]
    run(["python", "-m", "rsqasr.bin.score", "--ref", corpus / "data/test/text", "--hyp", out / "hyp.txt",
         "--dir", out])
    assert 0.0 <= json.loads((out / "result.json").read_text())["cer"] <= 2.0


def test_killed_training_resumes_to_the_same_end(corpus, tmp_path):
    conf = write_conf(tmp_path / "c.yaml", epochs=8)   # several epochs: several mid-epoch windows to kill in
    ref = tmp_path / "ref"
    run(train_cmd(corpus, conf, ref))
    ref_ck = torch.load(ref / "checkpoint.pt", weights_only=False)
    exp = tmp_path / "exp"
    proc = subprocess.Popen([str(x) for x in train_cmd(corpus, conf, exp)], env=script_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill it mid-epoch (epoch 2 or later), right after a mid-epoch checkpoint
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (exp / "1epoch.pth").exists() and (exp / "checkpoint.pt").exists():
            try:
                st = torch.load(exp / "checkpoint.pt", weights_only=False)["state"]
            except Exception:  # being replaced right now
                continue
            if 2 <= st["epoch"] < 8 and st["batch"] >= 1:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    st = torch.load(exp / "checkpoint.pt", weights_only=False)["state"]
    assert 2 <= st["epoch"] < 8 and 1 <= st["batch"], st
    p = run(train_cmd(corpus, conf, exp))
    assert "resumed from" in p.stderr
    ck = torch.load(exp / "checkpoint.pt", weights_only=False)
    assert ck["state"]["step"] == ref_ck["state"]["step"]
    for k, v in ref_ck["model"].items():
        torch.testing.assert_close(ck["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_changed_config_is_not_resumed_and_resume_false_starts_over(corpus, tmp_path):
    exp = tmp_path / "exp"
    run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=2), exp))
    first = torch.load(exp / "checkpoint.pt", weights_only=False)["model"]
    # a finished run with the same settings: resumed, nothing retrained
    p = run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=2), exp))
    assert "resumed from" in p.stderr
    # another batch size: refused, naming the checkpoint and what to do; nothing changed
    p = run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=2, batch_size=3), exp), check=False)
    assert p.returncode == 1 and "checkpoint.pt" in p.stderr and "--resume false" in p.stderr
    for k, v in torch.load(exp / "checkpoint.pt", weights_only=False)["model"].items():
        assert torch.equal(v, first[k]), k
    # --resume false: trained again from scratch with the new settings (1 epoch: 1epoch.pth only)
    p = run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=1, batch_size=3), exp, "--resume", "false"))
    assert "training from scratch" in p.stderr and "resumed from" not in p.stderr
    ck = torch.load(exp / "checkpoint.pt", weights_only=False)
    assert ck["state"]["epoch"] == 2 and not (exp / "2epoch.pth").exists()


def test_ddp_two_cpu_processes(corpus, tmp_path):
    conf = write_conf(tmp_path / "c.yaml", epochs=2)
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "rsqasr.bin.train", *[str(x) for x in train_cmd(corpus, conf, exp)[3:]], "--ngpu", "0"]
    p = run(cmd)
    assert "2 process(es)" in p.stderr
    ck = torch.load(exp / "checkpoint.pt", weights_only=False)
    # 5 train utterances in batches of 2 -> 3 batches, 1 per rank per epoch (rounded down to pairs)
    assert ck["state"]["step"] == 2 and ck["state"]["epoch"] == 3
    assert len(history(exp)) == 2


def test_bf16_autocast_training_learns_and_a_bad_amp_is_refused(corpus, tmp_path):
    """train.amp: bf16 runs the training forward under a bfloat16 autocast (CTC and validation in
    float32): the loss still falls like float32 training's; an unknown value is one clear error."""
    exp = tmp_path / "exp"
    run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=8, amp="bf16"), exp))
    h = history(exp)
    assert len(h) == 8 and h[-1]["train_loss"] < 0.5 * h[0]["train_loss"], h
    assert all(r["valid_loss"] == r["valid_loss"] for r in h)  # finite (not NaN)
    p = run(train_cmd(corpus, write_conf(tmp_path / "bad.yaml", epochs=1, amp="fp16"), tmp_path / "e2"), check=False)
    assert p.returncode == 1 and "train.amp must be none, bf16 or auto, not 'fp16'" in p.stderr


def test_amp_auto_takes_bf16_only_where_the_cpu_has_it_and_never_for_rsq(tmp_path):
    """amp: auto reads the CPU's flags: bf16 with AVX-512 BF16, AMX-BF16 or AArch64 BF16, float32
    on an AVX2-only CPU or an unreadable cpuinfo; RSQ fine-tuning is float32 whatever the CPU,
    and an explicit bf16 there is refused (LSQ's rounding needs float32)."""
    from rsqasr.train.trainer import resolve_amp

    cpu = torch.device("cpu")
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n")
    zen3 = tmp_path / "zen3"
    zen3.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    a64 = tmp_path / "a64"
    a64.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp bf16 i8mm\n")
    assert resolve_amp("auto", cpu, False, zen4)[0] is True
    assert resolve_amp("auto", cpu, False, a64)[0] is True
    on, why = resolve_amp("auto", cpu, False, zen3)
    assert on is False and "no native bf16" in why
    assert resolve_amp("auto", cpu, False, tmp_path / "missing")[0] is False
    assert resolve_amp("auto", cpu, True, zen4) == (False, "RSQ fine-tuning runs in float32")
    assert resolve_amp("bf16", cpu, False, zen3)[0] is True    # asked for: the user's choice
    assert resolve_amp("none", cpu, False, zen4)[0] is False
    with pytest.raises(ValueError, match="cannot be used for RSQ fine-tuning"):
        resolve_amp("bf16", cpu, True, zen4)


def test_bad_config_and_mismatched_inputs(corpus, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": TINY_MODEL, "train": {"epochs": 1, "bacth_size": 2}}))
    p = run(train_cmd(corpus, bad, tmp_path / "e1"), check=False)
    assert p.returncode == 1 and f"{bad}: unknown key 'train.bacth_size'" in p.stderr
    bad.write_text(yaml.safe_dump({"model": {**TINY_MODEL, "hiden_size": 3}}))
    p = run(train_cmd(corpus, bad, tmp_path / "e2"), check=False)
    assert p.returncode == 1 and "hiden_size" in p.stderr
    # a checkpoint of another model in the exp dir
    conf = write_conf(tmp_path / "c.yaml", epochs=1)
    exp = tmp_path / "e3"
    run(train_cmd(corpus, conf, exp))
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"model": {**TINY_MODEL, "hidden_size": 40}, "train": {"epochs": 2}}))
    before = {f: (exp / f).read_bytes() for f in ("config.yaml", "checkpoint.pt", "cmvn.npy")}
    p = run(train_cmd(corpus, other, exp), check=False)
    assert p.returncode == 1 and "checkpoint was made for another model" in p.stderr
    assert {f: (exp / f).read_bytes() for f in before} == before  # the experiment is left as it was
    # decoding features of the wrong dimension
    import kaldiio
    import numpy as np
    kaldiio.save_ark(str(tmp_path / "f.ark"), {"u1": np.zeros((50, 40), np.float32)}, scp=str(tmp_path / "f.scp"))
    p = run(["python", "-m", "rsqasr.bin.decode", "--exp_dir", exp, "--feats_scp", tmp_path / "f.scp",
             "--out", tmp_path / "h.txt"], check=False)
    assert p.returncode == 1 and f"{tmp_path / 'f.scp'}:1: 'u1' has features of shape (50, 40)" in p.stderr
    assert not (tmp_path / "h.txt").exists()
    # a model file of another model
    p = run(["python", "-m", "rsqasr.bin.decode", "--exp_dir", exp, "--model", tmp_path / "f.ark",
             "--feats_scp", corpus / "data/test/feats.scp", "--out", tmp_path / "h.txt"], check=False)
    assert p.returncode == 1 and "cannot load model" in p.stderr


def test_recipe_stages_3_and_4_train_decode_and_fill_results(corpus):
    conf = write_conf(corpus / "conf" / "train_tiny.yaml", epochs=2)
    args = ["./run.sh", "--stage", "3", "--stop_stage", "4", "--train_config", "conf/train_tiny.yaml", "--nj", "2",
            "--speed_perturb", "false", "--decode_mode", "beam", "--beam", "3"]
    p = run(args, cwd=corpus)
    assert "Stage 3: pretrain" in p.stdout and "Stage 4: decode" in p.stdout
    for s in ("dev", "test"):
        d = corpus / f"exp/train_tiny/decode_{s}_beam3"
        assert (d / "result.txt").is_file() and (d / "align.txt").is_file()
        assert len((d / "hyp.txt").read_text(encoding="utf-8").splitlines()) == len((corpus / f"data/{s}/text").read_text(encoding="utf-8").splitlines())
    results = (corpus / "RESULTS.md").read_text(encoding="utf-8")
    assert "### train_tiny (convdfsmn, " in results
    row = [line for line in results.splitlines() if line.startswith("| FP32 |")]
    assert len(row) == 1 and "beam 3" in row[0]
    p = run(args, cwd=corpus)
    assert "already trained; skipping" in p.stdout
    assert (corpus / "RESULTS.md").read_text(encoding="utf-8").count("### train_tiny") == 1

    # stages 5 (PTQ) and 6 (RSQ with beta 0 and 0.25), decoded through the integer reference
    rsq = corpus / "conf" / "rsq_tiny.yaml"
    rsq.write_text(yaml.safe_dump({"rsq": {"calib_utts": 3}, "optim": {"lr": 0.001},
                                   "train": {"epochs": 1, "keep_nbest": 1}}))
    p = run([*args[:2], "5", args[3], "6", *args[5:], "--rsq_config", "conf/rsq_tiny.yaml", "--calib_utts", "4"],
            cwd=corpus)
    assert "Stage 5: post-training quantization" in p.stdout and "RSQ fine-tuning" in p.stdout
    plan = json.loads((corpus / "exp/train_tiny/ptq_wino/quant.json").read_text())["plan"]
    schemes = {lp["scheme"] for lp in plan["layers"]}
    assert {"wino23", "int8", "fp32"} <= schemes
    rsq_conf = yaml.safe_load((corpus / "exp/train_tiny_rsq_beta0.25/config.yaml").read_text())
    assert rsq_conf["quant"]["beta"] == 0.25 and rsq_conf["model"] == TINY_MODEL
    assert "decoding through the integer reference" in \
        (corpus / "exp/train_tiny_rsq_beta0/decode_test_beam3/log/decode.1.log").read_text()
    table = (corpus / "RESULTS.md").read_text(encoding="utf-8")
    main_table, rest = table.split("Paired differences")
    rows = [line for line in main_table.splitlines() if line.startswith("| ") and "beam 3" in line]
    assert [r.split(" | ")[:2] for r in rows] == [["| FP32", "-"], ["| INT8 GEMM", "PTQ"], ["| INT8 Wino", "PTQ"],
                                                  ["| INT8 Wino", "RSQ† (beta=0)"], ["| INT8 Wino", "RSQ"]]
    assert "- RSQ vs PTQ (Winograd) (beam 3): dev " in rest and "- Winograd PTQ vs GEMM PTQ (beam 3): dev " in rest
    # every quantized decode was compared with the fake-quantized PyTorch model
    agree = [line for line in rest.splitlines() if line.startswith("| INT8")]
    assert len(agree) == 4 * 2
    for line in agree:
        assert "integer reference vs fake-quant PyTorch" in line
        n_diff, n_utts = line.rstrip(" |").rsplit("| ", 1)[1].split(" of ")
        assert 0 <= int(n_diff) <= int(n_utts)
    g = json.loads((corpus / "exp/train_tiny/ptq_wino/decode_test_beam3/engine_agreement.json").read_text())
    r = json.loads((corpus / "exp/train_tiny/ptq_wino/decode_test_beam3/result.json").read_text())
    assert g["cer_a"] == pytest.approx(r["cer"]) and g["utts"] == r["utts"]


    # stages 7 (export, each file checked against the integer reference) and 8 (rsq-decode for
    # ARMv7 under qemu-arm, compared with the Python greedy decode of the same model; latency)
    p = run([*args[:2], "7", args[3], "8", *args[5:], "--rsq_config", "conf/rsq_tiny.yaml",
             "--decode_target", "armv7", "--count_armv7_instructions", "true"], cwd=corpus)
    variants = {"exp/train_tiny/export/fp32.rsq": "exp/train_tiny",
                "exp/train_tiny/ptq_int8_gemm/export/model.rsq": "exp/train_tiny/ptq_int8_gemm",
                "exp/train_tiny/ptq_wino/export/model.rsq": "exp/train_tiny/ptq_wino",
                "exp/train_tiny_rsq_beta0/export/model.rsq": "exp/train_tiny_rsq_beta0",
                "exp/train_tiny_rsq_beta0.25/export/model.rsq": "exp/train_tiny_rsq_beta0.25"}
    for file, out in variants.items():
        assert (corpus / file).read_bytes()[:8] == b"RSQMODEL", file
        for s in ("dev", "test"):
            g = json.loads((corpus / out / f"decode_{s}_rsqdecode_armv7/engine_agreement.json").read_text())
            assert g["utts"] == len((corpus / f"data/{s}/text").read_text().splitlines())
            assert g["differ"] == 0, (file, s, g["examples"])  # the binary decodes what Python decodes
            # audio in: rsq-decode's fbank from wav.scp vs stage 2's features, and its hypotheses
            f = json.loads((corpus / out / f"decode_{s}_rsqdecode_armv7/wav_features.json").read_text())
            assert f["utts"] == g["utts"] and f["max_abs_diff"] < 1e-2, f
            w = json.loads((corpus / out / f"decode_{s}_rsqdecode_armv7/wav_agreement.json").read_text())
            assert w["utts"] == g["utts"] and w["differ"] <= w["utts"] // 10, w
        lat = json.loads((corpus / file).with_name("latency.json").read_text())
        assert lat["frames"] == 600 and lat["host_ms"]["1"] > 0 and lat["host_ms"]["2"] > 0
        assert lat["armv7_instructions"] > 0
        assert set(lat["host_profile_ms"]) == {"front", "conv_k3", "pointwise", "depthwise", "classifier", "glue"}
        assert sum(lat["armv7_profile"][k] for k in lat["host_profile_ms"]) <= lat["armv7_instructions"]
        st = lat["stream"]     # rsq-decode --stream at the default chunk sizes: same cost order as whole
        assert st["lookahead_frames"] > 0 and sorted(st["chunks"]) == ["10", "100", "40"]
        for c in st["chunks"].values():
            assert c["host_ms"] > 0 and c["armv7_instructions"] > 0.5 * lat["armv7_instructions"]
    table = (corpus / "RESULTS.md").read_text(encoding="utf-8")
    assert len([r for r in table.splitlines() if r.startswith("| ") and "greedy, rsq-decode armv7" in r]) >= 5
    lat_rows = [r for r in table.split("Latency of rsq-decode")[1].split("\n\n")[1].splitlines()[2:]
                if not r.startswith(("| PyTorch", "| onnxruntime"))]
    assert [r.split(" | ")[:2] for r in lat_rows] == [["| FP32", "-"], ["| INT8 GEMM", "PTQ"], ["| INT8 Wino", "PTQ"],
                                                      ["| INT8 Wino", "RSQ† (beta=0)"], ["| INT8 Wino", "RSQ"]]
    assert lat_rows[1].endswith("| 1.000x |")
    kind_rows = table.split("Where the time goes, per layer kind")[1].split("\n\n")[1].splitlines()[2:]
    assert [r.split(" | ")[:2] for r in kind_rows] == [r.split(" | ")[:2] for r in lat_rows]
    e2e = json.loads((corpus / "exp/train_tiny/export/e2e_latency.json").read_text())
    assert e2e["torch_fp32_ms"]["1"] > 0 and e2e["ort_fp32_ms"]["2"] > 0
    assert "| onnxruntime FP32 (same model, ONNX export) | - |" in table
    stream_rows = table.split("Streaming (rsq-decode --stream")[1].split("\n\n")[1].splitlines()[2:]
    assert [r.split(" | ")[:2] for r in stream_rows] == [r.split(" | ")[:2] for r in lat_rows]
    audio_rows = table.split("Audio in: rsq-decode's own fbank")[1].split("\n\n")[1].splitlines()[2:]
    assert len(audio_rows) == 5 * 2 and all("greedy, rsq-decode armv7" in r for r in audio_rows)
    # the same models on the AArch64 build (SDOT kernels under qemu-aarch64): the same hypotheses
    if shutil.which("qemu-aarch64") and (REPO / "src_arm/build-aarch64/bin/rsq-decode-aarch64").exists():
        run([*args[:2], "8", args[3], "8", *args[5:], "--rsq_config", "conf/rsq_tiny.yaml",
             "--decode_target", "aarch64", "--count_armv7_instructions", "false", "--stream_chunks", ""], cwd=corpus)
        for out in variants.values():
            for s in ("dev", "test"):
                g = json.loads((corpus / out / f"decode_{s}_rsqdecode_aarch64/engine_agreement.json").read_text())
                assert g["utts"] > 0 and g["differ"] == 0, (out, s, g["examples"])


class _Payload:
    """Unpickling this runs a function: what a crafted checkpoint could do with weights_only=False."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_checkpoints_load_without_running_pickled_code(tmp_path):
    from rsqasr.train.trainer import TrainingError, load_checkpoint

    bad = tmp_path / "checkpoint.pt"
    marker = tmp_path / "pickle-ran"
    torch.save({"format": 1, "payload": _Payload(marker)}, bad)
    with pytest.raises(TrainingError, match="checkpoint.pt"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_second_trainer_into_a_busy_exp_dir_is_refused(corpus, tmp_path):
    conf = write_conf(tmp_path / "c.yaml", epochs=50)
    exp = tmp_path / "exp"
    first = subprocess.Popen([str(x) for x in train_cmd(corpus, conf, exp)], env=script_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (exp / "config.yaml").exists():
            time.sleep(0.05)
        p = run(train_cmd(corpus, conf, exp), check=False)
        assert p.returncode == 1 and f"in use by pid {first.pid}" in p.stderr, p.stderr
    finally:
        first.kill()
        first.wait()
    # the lock dies with its process (SIGKILL): a new run may start at once
    p = run(train_cmd(corpus, write_conf(tmp_path / "c.yaml", epochs=1), exp, "--resume", "false"))
    assert "in use by" not in p.stderr and (exp / "1epoch.pth").is_file()


def test_killed_recipe_stops_its_trainer(corpus, tmp_path):
    """kill -TERM of run.sh during stage 3 stops the trainer too (no orphan keeps writing exp/)."""
    conf = write_conf(tmp_path / "killme.yaml", epochs=500)
    p = subprocess.Popen(["./run.sh", "--stage", "3", "--stop_stage", "3", "--train_config", str(conf),
                          "--speed_perturb", "false"], cwd=corpus, env=script_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = "exp/killme"
    deadline = time.time() + 60
    while time.time() < deadline and not (corpus / marker / "1epoch.pth").exists():
        time.sleep(0.1)
    assert pids_matching(marker), "the trainer did not start"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 143 and "killed" in out
    deadline = time.time() + 10
    while time.time() < deadline and pids_matching(marker):
        time.sleep(0.1)
    assert pids_matching(marker) == []



def test_missing_init_checkpoint_writes_nothing(corpus, tmp_path):
    exp = tmp_path / "exp"
    p = run(train_cmd(corpus, write_conf(tmp_path / "c.yaml"), exp, "--init_checkpoint", tmp_path / "nope.pth"),
            check=False)
    assert p.returncode == 1 and "nope.pth: --init_checkpoint not found" in p.stderr and "Traceback" not in p.stderr
    assert not exp.exists()
