"""Compute 80-dim Kaldi-compatible fbank features for a wav.scp, as a Kaldi ark/scp pair.

One call is one job of a stage; the recipe runs N of them with utils/run_local.sh (or Slurm).
Entries may be paths or pipe commands ending in "|" (speed perturbation). The ark and scp are
written under temporary names and renamed at the end, so a failed job leaves no half output.

Usage:
    python -m rsqasr.bin.compute_fbank --wav_scp data/train/split4/wav.1.scp \
        --out_ark fbank/train/raw_fbank.1.ark --out_scp fbank/train/raw_fbank.1.scp \
        --out_num_frames fbank/train/utt2num_frames.1
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import kaldiio
from tqdm import tqdm

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.audio import AudioError, read_wav_entry, wav_truncation
from rsqasr.data.datadir import read_kv
from rsqasr.features.fbank import compute_fbank, fbank_options
from rsqasr.utils.fileio import atomic_open, remove_dead_temps, replaceable
from rsqasr.utils.log import progress_enabled


def main(args) -> None:
    wav_scp = Path(args.wav_scp)
    entries = read_kv(wav_scp)
    opts = fbank_options(num_mel_bins=args.num_mel_bins, sample_rate=args.sample_rate)
    out_ark, out_scp = Path(args.out_ark).resolve(), Path(args.out_scp)
    if not replaceable(out_ark):
        raise ValueError(f"{out_ark}: exists and is not a regular file; the scp points into the ark, "
                         "so it must be a regular file")
    out_ark.parent.mkdir(parents=True, exist_ok=True)
    out_scp.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*remove_dead_temps(out_ark), *remove_dead_temps(out_scp)]:
        logging.info("removed %s, left by a killed run", stale)
    tmp_ark = out_ark.with_name(f".{out_ark.name}.{os.getpid()}.tmp")
    tmp_scp = out_scp.with_name(f".{out_scp.name}.{os.getpid()}.tmp")
    num_frames: dict[str, int] = {}
    t0, audio_sec, truncated = time.time(), 0.0, 0
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            keys = list(entries)
            for i, utt in enumerate(tqdm(keys, disable=not progress_enabled(), desc=wav_scp.name, unit="utt")):
                samples = read_wav_entry(entries[utt], where=f"{wav_scp}:{i + 1}", sample_rate=args.sample_rate)
                cut = wav_truncation(entries[utt])
                if cut:   # Kaldi style: warn and count, use what is there
                    truncated += 1
                    logging.warning("%s:%d: '%s': %s is truncated: its data chunk declares %d bytes, the file "
                                    "holds %d; using the %d samples present", wav_scp, i + 1, utt, entries[utt].strip(),
                                    cut[0], cut[1], len(samples))
                feats = compute_fbank(samples, opts)
                if feats.shape[0] == 0:
                    raise AudioError(f"{wav_scp}:{i + 1}: '{utt}' is shorter than one frame ({len(samples)} samples)")
                writer(utt, feats)
                num_frames[utt] = feats.shape[0]
                audio_sec += len(samples) / args.sample_rate
                if (i + 1) % max(1, len(keys) // 10) == 0:
                    logging.info("%s: %d/%d utterances", wav_scp, i + 1, len(keys))
        # The scp names the temporary ark: point it at the final name before renaming both.
        scp_text = Path(tmp_scp).read_text(encoding="utf-8").replace(str(tmp_ark), str(out_ark))
        with atomic_open(out_scp) as f:
            f.write(scp_text)
        if args.out_num_frames:
            with atomic_open(args.out_num_frames) as f:
                f.writelines(f"{u} {n}\n" for u, n in num_frames.items())
        os.replace(tmp_ark, out_ark)
    finally:
        for p in (tmp_ark, tmp_scp):
            if os.path.exists(p):
                os.unlink(p)
    if truncated:
        logging.warning("%s: %d of %d wav files truncated (see the warnings above)", wav_scp, truncated, len(num_frames))
    dt = time.time() - t0
    logging.info("%s: %d utterances, %.1f s of audio in %.1f s (%.0fx real time)", wav_scp, len(num_frames),
                 audio_sec, dt, audio_sec / max(dt, 1e-9))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--wav_scp", required=True)
    p.add_argument("--out_ark", required=True)
    p.add_argument("--out_scp", required=True)
    p.add_argument("--out_num_frames", default=None, help="also write '<utt> <frames>' lines here")
    p.add_argument("--num_mel_bins", type=int, default=80)
    p.add_argument("--sample_rate", type=int, default=16000)
    return p


if __name__ == "__main__":
    run(main, get_parser())
