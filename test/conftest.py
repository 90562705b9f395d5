"""Shared fixtures: the repo paths, an environment for running the shell scripts, and a small
AISHELL-1-layout tree made of synthetic tones (fast; the TTS corpus has its own tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parent.parent

# rsq-decode of each build (src_arm/build.sh host|armv7|aarch64), the ARM ones through qemu
RSQ_DECODE = {"host": REPO / "src_arm/build-host/rsq-decode",
              "armv7": REPO / "src_arm/build-armv7/bin/rsq-decode-armv7",
              "aarch64": REPO / "src_arm/build-aarch64/bin/rsq-decode-aarch64"}
QEMU = {"armv7": "qemu-arm", "aarch64": "qemu-aarch64"}


def need_binary(binary: Path) -> Path:
    """``binary``, or a skip when it is not built or its qemu is missing."""
    if not binary.exists():
        pytest.skip(f"{binary} not built (src_arm/build.sh host|armv7|aarch64)")
    for target, qemu in QEMU.items():
        if binary == RSQ_DECODE[target] and shutil.which(qemu) is None:
            pytest.skip(f"{qemu} not installed")
    return binary

# Utterances of the fake tree: split -> speaker -> [(utt number, words)]
FAKE_CORPUS = {
    "train": {"S0002": [(1, "而 对 楼市"), (2, "成交 抑制"), (3, "作用 最 大")],
              "S0003": [(11, "的 限 购"), (12, "楼市 成交")]},
    "dev": {"S0724": [(21, "抑制 作用")]},
    "test": {"S0764": [(31, "最 大 的"), (32, "限 购 楼市")]},
}


def script_env(**extra: str) -> dict[str, str]:
    """The environment a recipe has after sourcing path.sh: the venv's python first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{REPO / 'utils'}:{env.get('PATH', '')}"
    env["LC_ALL"] = "C"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def run(cmd: list[str] | str, cwd: Path | str | None = None, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run a command; on an unexpected exit status show its output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=script_env(**env), shell=isinstance(cmd, str),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def utt_id(spk: str, n: int) -> str:
    return f"BAC009{spk}W{n:04d}"


def tone(seconds: float, freq: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    return (x * 32767).astype(np.int16)


def make_fake_aishell(root: Path) -> Path:
    """Write <root>/data_aishell/{wav/<split>/<spk>/<utt>.wav, transcript/...} and resource_aishell/."""
    lines = []
    for split, spks in FAKE_CORPUS.items():
        for spk, utts in spks.items():
            d = root / "data_aishell" / "wav" / split / spk
            d.mkdir(parents=True, exist_ok=True)
            for n, words in utts:
                u = utt_id(spk, n)
                soundfile.write(d / f"{u}.wav", tone(0.5 + 0.1 * (n % 3), 200 + 10 * n, seed=n), 16000, subtype="PCM_16")
                lines.append(f"{u} {words}\n")
    (root / "data_aishell" / "transcript").mkdir(parents=True, exist_ok=True)
    (root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt").write_text("".join(sorted(lines)), encoding="utf-8")
    (root / "resource_aishell").mkdir(parents=True, exist_ok=True)
    (root / "resource_aishell" / "speaker.info").write_text("0002 F\n0003 M\n0724 F\n0764 M\n")
    return root


@pytest.fixture
def fake_aishell(tmp_path: Path) -> Path:
    return make_fake_aishell(tmp_path / "aishell")


def recipe_copy(tmp_path: Path, name: str) -> Path:
    """A copy of egs/<name> in tmp_path (run.sh and conf copied, shared parts linked), so the
    recipe's outputs land there and not in the repo; the way a user starts a new recipe."""
    import shutil

    egs = tmp_path / "egs"
    egs.mkdir(exist_ok=True)
    if not (egs / "TEMPLATE").exists():
        (egs / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    d = egs / name
    d.mkdir()
    shutil.copy2(REPO / "egs" / name / "run.sh", d / "run.sh")
    shutil.copytree(REPO / "egs" / name / "conf", d / "conf")
    for link in ("utils", "local", "path.sh", "cmd.sh"):
        (d / link).symlink_to(REPO / "egs" / name / link)
    return d


def pids_matching(pattern: str) -> list[int]:
    """Pids of the processes whose full command line matches ``pattern`` (pgrep -f)."""
    out = subprocess.run(["pgrep", "-f", pattern], stdout=subprocess.PIPE, text=True).stdout
    return [int(x) for x in out.split()]
