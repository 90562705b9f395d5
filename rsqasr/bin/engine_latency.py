"""Latency of an exported model in rsq-decode at 600 input frames, batch 1 (the paper's Table 2
setting): host milliseconds per utterance at 1 and 2 threads, and optionally the ARMv7 build's
executed guest instructions per utterance under qemu-arm (deterministic; no ARM hardware here).

The 600-frame utterance is the first one of --feats_scp with at least 600 frames (cut to 600),
or the first one tiled to 600 frames. Host: --repeats copies in one ark, rsq-decode's summary
line gives the network time per 600 frames; the run is done --runs times and the median kept.
ARMv7: qemu-arm with the instruction-counting plugin (src_arm/tools/qemu_insn_count.c, built by
make install), for an ark of 1 and of 2 copies; the difference is one utterance (model loading
cancels out). Seconds per model. The ARMv7 build, the plugin and the ARM sysroot come from the
options, whose defaults are path.sh's RSQ_ARMV7_BUILD, RSQ_QEMU_PLUGIN and RSQ_ARMV7_SYSROOT.

Both also split the network's cost by layer kind (rsq-decode --profile; kinds in
src_arm/app/rsqm.h: front, conv_k3, pointwise, depthwise, classifier, glue): host milliseconds
at 1 thread (median over the runs), and ARMv7 instructions per kind from the counter's marker
buckets (the same two-ark difference, so the kinds sum to the per-utterance count up to the
instructions outside the network: CTC greedy search and text, reported as "outside").

--stream_chunks N ...: the same utterance decoded by rsq-decode --stream in chunks of N frames
(bit-identical output; what streaming costs: the layers run on fewer frames per call), host ms
at 1 thread and ARMv7 instructions, plus the model's lookahead (rsq-decode's summary line).

Writes --out (JSON): {"frames": 600, "host_ms": {"1": x, "2": x}, "armv7_instructions": n or null,
"host_profile_ms": {kind: ms}, "armv7_profile": {kind: n} or null, "stream": null or
{"lookahead_frames": n, "chunks": {"N": {"host_ms": x, "armv7_instructions": n or null}}}}.

Usage:
    python -m rsqasr.bin.engine_latency --model exp/x/export/fp32.rsq --feats_scp data/test/feats.scp \
        --out exp/x/export/latency.json [--armv7_instructions true]
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

import kaldiio
import numpy as np

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import read_kv
from rsqasr.utils.fileio import atomic_write_text

FRAMES = 600
SUMMARY_RE = re.compile(r"([0-9.]+) ms per utterance of 600 frames")
PROFILE_RE = re.compile(r"profile, ms per utterance of 600 frames:(( [a-z_0-9]+ [0-9.]+)+)")
KINDS = ("front", "conv_k3", "pointwise", "depthwise", "classifier", "glue")  # rsqm.h, in bucket order


def parse_profile(stderr: str) -> dict[str, float]:
    m = PROFILE_RE.search(stderr)
    if not m:
        raise RuntimeError(f"rsq-decode --profile: no profile line in its output: {stderr.strip()[-300:]}")
    f = m.group(1).split()
    return {f[i]: float(f[i + 1]) for i in range(0, len(f), 2)}


def utterance_600(feats_scp: Path) -> np.ndarray:
    entries = read_kv(feats_scp)
    if not entries:
        raise ValueError(f"{feats_scp}: empty")
    first = None
    for entry in entries.values():
        m = kaldiio.load_mat(entry)
        first = m if first is None else first
        if m.shape[0] >= FRAMES:
            return np.ascontiguousarray(m[:FRAMES], dtype=np.float32)
    reps = -(-FRAMES // first.shape[0])
    return np.ascontiguousarray(np.tile(first, (reps, 1))[:FRAMES], dtype=np.float32)


def write_copies(path: Path, mat: np.ndarray, n: int) -> None:
    with kaldiio.WriteHelper(f"ark:{path}") as w:
        for i in range(n):
            w(f"utt{i:03d}", mat)


LOOKAHEAD_RE = re.compile(r"the model looks (\d+) frames")


def host_ms(binary: str, model: Path, ark: Path, threads: int, runs: int, hyp: Path, extra: tuple[str, ...] = ()
            ) -> tuple[float, dict[str, float], str]:
    """Median of ``runs`` timings, per layer kind the median of the runs' profiles (none with
    ``extra`` options: streaming has no profile), and the last run's stderr; the hypotheses go to
    ``hyp``, a scratch file (never a device: see rsqasr.utils.fileio)."""
    times, profiles = [], []
    for _ in range(runs):
        opts = list(extra) if extra else ["--profile"]
        p = subprocess.run([binary, "--threads", str(threads), *opts, str(model), str(ark), str(hyp)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{binary} failed on {model}: {p.stderr.strip()[-500:]}")
        m = SUMMARY_RE.search(p.stderr)
        if not m:
            raise RuntimeError(f"{binary}: no summary line in its output: {p.stderr.strip()[-300:]}")
        times.append(float(m.group(1)))
        if not extra:
            profiles.append(parse_profile(p.stderr))
    prof = {k: statistics.median(pr[k] for pr in profiles) for k in profiles[0]} if profiles else {}
    return statistics.median(times), prof, p.stderr


def read_buckets(path: Path) -> tuple[int, dict[str, int]]:
    """The counter's file: the total, then "BUCKET N" lines and "unmarked N" (qemu_insn_count.c)."""
    lines = path.read_text().split("\n")
    total, buckets = int(lines[0]), {}
    for ln in lines[1:]:
        if ln.strip():
            b, n = ln.split()
            name = KINDS[int(b)] if b.isdigit() and int(b) < len(KINDS) else "outside"
            buckets[name] = buckets.get(name, 0) + int(n)
    return total, buckets


def armv7_instructions(binary: Path, counter: Path, model: Path, arks: tuple[Path, Path], tmp: Path,
                       ld_prefix: str, extra: tuple[str, ...] = ("--profile",)) -> tuple[int, dict[str, int]]:
    """Guest instructions of one utterance, in all and per layer kind: the counts for ``arks[1]``
    (two copies) minus the ones for ``arks[0]`` (one copy), so that process start and model
    loading cancel out."""
    counts = []
    for i, ark in enumerate(arks):
        out = tmp / f"insns{i}"
        q = subprocess.run(["qemu-arm", "-L", ld_prefix, "-plugin", f"{counter},out={out}", str(binary),
                            "--threads", "1", *extra, str(model), str(ark), str(tmp / f"hyp{i}.txt")],
                           capture_output=True, text=True)
        if q.returncode != 0:
            raise RuntimeError(f"qemu-arm {binary} failed: {q.stderr.strip()[-500:]}")
        try:
            counts.append(read_buckets(out))
        except (OSError, IndexError, ValueError) as e:
            raise RuntimeError(f"{counter}: no instruction count in {out} ({e}); qemu said: "
                               f"{q.stderr.strip()[-300:]}") from e
    (t0, b0), (t1, b1) = counts
    kinds = {k: b1.get(k, 0) - b0.get(k, 0) for k in (*KINDS, "outside") if k in b1}
    return t1 - t0, kinds


def main(args) -> None:
    if args.armv7_instructions:  # before any work: the ARMv7 tools come from options or path.sh
        for opt, env in (("armv7_build", "RSQ_ARMV7_BUILD"), ("insn_counter", "RSQ_QEMU_PLUGIN"),
                         ("qemu_ld_prefix", "RSQ_ARMV7_SYSROOT")):
            if not getattr(args, opt):
                raise ValueError(f"--{opt} is not set and neither is {env} (. ./path.sh sets it)")
    model = Path(args.model)
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no such model file")
    binary = shutil.which(args.binary)
    if binary is None:
        raise FileNotFoundError(f"{args.binary} not on PATH (make install builds it; . ./path.sh)")
    mat = utterance_600(Path(args.feats_scp))
    res: dict = {"frames": FRAMES, "model": str(model), "host_ms": {}, "armv7_instructions": None,
                 "host_profile_ms": None, "armv7_profile": None, "stream": None}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        write_copies(tmp / "rep.ark", mat, args.repeats)
        for t in args.threads:
            res["host_ms"][str(t)], prof, _ = host_ms(binary, model, tmp / "rep.ark", t, args.runs, tmp / "hyp.txt")
            if t == 1:
                res["host_profile_ms"] = prof
            logging.info("%s: host %.2f ms per 600 frames with %d thread(s)", model, res["host_ms"][str(t)], t)
        if args.armv7_instructions:
            arm = Path(args.armv7_build) / "rsq-decode"
            if not arm.is_file():
                raise FileNotFoundError(f"{arm} missing (src_arm/build.sh armv7)")
            counter = Path(args.insn_counter)
            if not counter.is_file():
                raise FileNotFoundError(f"{counter} missing: the qemu instruction-counting plugin "
                                        f"(src_arm/tools/qemu_insn_count.c; make install builds it)")
            write_copies(tmp / "one.ark", mat, 1)
            write_copies(tmp / "two.ark", mat, 2)
            res["armv7_instructions"], res["armv7_profile"] = armv7_instructions(
                arm, counter, model, (tmp / "one.ark", tmp / "two.ark"), tmp, args.qemu_ld_prefix)
            logging.info("%s: ARMv7 %d instructions per 600 frames", model, res["armv7_instructions"])
        if args.stream_chunks:
            res["stream"] = {"lookahead_frames": None, "chunks": {}}
            for c in args.stream_chunks:
                extra = ("--stream", "--chunk", str(c))
                ms, _, err = host_ms(binary, model, tmp / "rep.ark", 1, args.runs, tmp / "hyp.txt", extra)
                m = LOOKAHEAD_RE.search(err)
                if not m:
                    raise RuntimeError(f"{binary} --stream: no lookahead in its output: {err.strip()[-300:]}")
                res["stream"]["lookahead_frames"] = int(m.group(1))
                ins = None
                if args.armv7_instructions:
                    ins, _ = armv7_instructions(arm, counter, model, (tmp / "one.ark", tmp / "two.ark"), tmp,
                                                args.qemu_ld_prefix, extra)
                res["stream"]["chunks"][str(c)] = {"host_ms": ms, "armv7_instructions": ins}
                logging.info("%s: streaming in chunks of %d frames: host %.2f ms, ARMv7 %s instructions per 600 "
                             "frames", model, c, ms, ins)
    atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--model", required=True, help="exported model file (rsqasr.bin.export)")
    p.add_argument("--feats_scp", required=True, help="features to take the 600-frame utterance from")
    p.add_argument("--out", required=True, help="latency JSON to write")
    p.add_argument("--binary", default="rsq-decode", help="host rsq-decode")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=20, help="copies of the utterance per run")
    p.add_argument("--runs", type=int, default=3, help="runs per thread count (median kept)")
    p.add_argument("--stream_chunks", type=int, nargs="*", default=[],
                   help="also measure rsq-decode --stream with these chunk sizes (feature frames)")
    p.add_argument("--armv7_instructions", type=lambda v: v.lower() == "true", default=False,
                   help="also count the ARMv7 build's instructions under qemu-arm (seconds per model)")
    p.add_argument("--armv7_build", default=os.environ.get("RSQ_ARMV7_BUILD", ""),
                   help="the ARMv7 build dir holding rsq-decode (path.sh: RSQ_ARMV7_BUILD)")
    p.add_argument("--insn_counter", default=os.environ.get("RSQ_QEMU_PLUGIN", ""),
                   help="qemu plugin that counts guest instructions (src_arm/tools/qemu_insn_count.c; "
                        "path.sh: RSQ_QEMU_PLUGIN)")
    p.add_argument("--qemu_ld_prefix", default=os.environ.get("RSQ_ARMV7_SYSROOT", ""),
                   help="qemu-arm -L: the ARM sysroot (path.sh: RSQ_ARMV7_SYSROOT)")
    return p


if __name__ == "__main__":
    run(main, get_parser())
