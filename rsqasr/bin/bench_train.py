"""Measure training speed of a model config on random features: seconds per step (forward,
CTC loss, backward, optimizer step) for a batch of a given shape, and the epoch time that
implies for a corpus of a given size. A benchmark, not a test.

Usage:
    python -m rsqasr.bin.bench_train --config egs/aishell/conf/train_convdfsmn_b.yaml \
        --vocab_size 4235 --batch_size 32 --frames 600 --steps 5 --corpus_frames 2.6e8
"""

from __future__ import annotations

import logging
import statistics
import time

import torch
import torch.nn.functional as F

from rsqasr.bin._cli import make_parser, run
from rsqasr.models import build_model
from rsqasr.train.config import load_config


def main(args) -> None:
    torch.set_num_threads(args.num_threads)
    torch.manual_seed(0)
    conf = load_config(args.config)
    net = build_model(conf["model"], input_dim=args.input_dim, vocab_size=args.vocab_size)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch_size, args.frames, args.input_dim)
    lens = torch.full((args.batch_size,), args.frames, dtype=torch.long)
    tlen = max(1, args.frames // 4 // 3)
    targets = torch.randint(1, args.vocab_size, (args.batch_size * tlen,))
    tlens = torch.full((args.batch_size,), tlen, dtype=torch.long)
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        logits, out_lens = net(x, lens)
        loss = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, out_lens, tlens, reduction="sum")
        opt.zero_grad()
        (loss / args.batch_size).backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    frames_per_step = args.batch_size * args.frames
    line = (f"{args.config}: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M params, batch "
            f"{args.batch_size} x {args.frames} frames, {args.num_threads} thread(s): median {step:.3f} s/step "
            f"(min {min(times):.3f}, {len(times)} steps)")
    if args.corpus_frames:
        line += f"; an epoch of {args.corpus_frames:.3g} frames ~ {args.corpus_frames / frames_per_step * step / 60:.1f} min"
    print(line)
    logging.info("%s", line)


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--vocab_size", type=int, required=True)
    p.add_argument("--input_dim", type=int, default=80)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--num_threads", type=int, default=2)
    p.add_argument("--corpus_frames", type=float, default=0.0, help="frames in an epoch, for the estimate")
    return p


if __name__ == "__main__":
    run(main, get_parser())
