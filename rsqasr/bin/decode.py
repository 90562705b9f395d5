"""Decode features with a trained CTC model: greedy (best path) or prefix beam search.

Writes Kaldi text ("<utt> <hypothesis>") atomically. The recipe runs --nj jobs, one per split
of feats.scp, and concatenates their outputs.

Usage:
    python -m rsqasr.bin.decode --exp_dir exp/train_convdfsmn --model valid.cer.ave.pth \
        --feats_scp data/test/feats.scp --out exp/train_convdfsmn/decode_test/hyp.txt --mode beam --beam 10
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from rsqasr.bin._cli import make_parser, run
from rsqasr.ctc_model import greedy_ids
from rsqasr.data.datadir import DataDirError, read_kv
from rsqasr.decoding import ctc_prefix_beam_search
from rsqasr.inference import load_asr
from rsqasr.quant import resolve_quantization
from rsqasr.utils.fileio import atomic_open
from rsqasr.utils.log import progress_enabled


def main(args) -> None:
    torch.set_num_threads(args.num_threads)
    exp = Path(args.exp_dir)
    model_file = Path(args.model) if Path(args.model).is_absolute() or Path(args.model).exists() else exp / args.model
    model, text, conf = load_asr(exp, model_file)
    net = model.net
    intmodel = None
    # PTQ (an FP32 experiment and --quant) or RSQ (the experiment's own plan and learned scales);
    # None: an FP32 model, decoded as such
    q = resolve_quantization(net, quant_json=args.quant)
    if q is not None:
        if args.engine == "intref":
            intmodel = q.intmodel(net)
        else:   # torch fake quantization, the training-time forward
            q.torch_net(net, mode="fake", inplace=True)
    if intmodel is not None:
        logging.info("decoding through the integer reference (%s plan)", intmodel.plan.kind)
    feats_scp = Path(args.feats_scp)
    entries = read_kv(feats_scp)
    items = []
    for lineno, (utt, entry) in enumerate(entries.items(), 1):
        try:
            mat = kaldiio.load_mat(entry)
        except Exception as e:  # noqa: BLE001
            raise DataDirError(f"{feats_scp}:{lineno}: cannot read features of '{utt}': {e}") from e
        if mat.ndim != 2 or mat.shape[1] != conf["input_dim"]:
            raise DataDirError(f"{feats_scp}:{lineno}: '{utt}' has features of shape {mat.shape}; "
                               f"the model takes dimension {conf['input_dim']}")
        items.append((utt, np.asarray(mat, np.float32)))
    hyps: dict[str, str] = {}
    bad = {u: int((~np.isfinite(m)).sum()) for u, m in items}
    bad = {u: n for u, n in bad.items() if n}
    for u, n in bad.items():   # Kaldi style: warn, count, give the utterance an empty hypothesis, go on
        logging.warning("%s: '%s' has %d NaN/Inf feature values; skipped (empty hypothesis)", feats_scp, u, n)
        hyps[u] = ""
    if bad:
        logging.warning("%s: %d of %d utterances skipped for NaN/Inf features", feats_scp, len(bad), len(items))
        items = [(u, m) for u, m in items if u not in hyps]
    short = 0
    t0, frames = time.time(), 0
    order = sorted(range(len(items)), key=lambda i: items[i][1].shape[0])
    bar = tqdm(total=len(items), disable=not progress_enabled(), unit="utt", desc=feats_scp.name)
    with torch.no_grad():
        for s in range(0, len(order), args.batch_size):
            batch = [items[i] for i in order[s: s + args.batch_size]]
            ok = [(u, m) for u, m in batch if m.shape[0] >= net.min_input_frames]
            for u, m in batch:
                if m.shape[0] < net.min_input_frames:
                    short += 1
                    hyps[u] = ""
                    logging.warning("%s: '%s' has %d frames, fewer than the model's minimum %d; empty hypothesis",
                                    feats_scp, u, m.shape[0], net.min_input_frames)
            if ok:
                lens = torch.tensor([m.shape[0] for _, m in ok])
                x = torch.zeros(len(ok), int(lens.max()), conf["input_dim"])
                for i, (_, m) in enumerate(ok):
                    x[i, : m.shape[0]] = torch.from_numpy(m)
                if intmodel is None:
                    logits, out_lens = model.logits(x, lens)
                else:  # batch 1 per utterance, as the engine runs
                    outs = []
                    for i in range(len(ok)):
                        xi, _ = model.normalize(x[i: i + 1, : int(lens[i])], lens[i: i + 1])
                        outs.append(torch.from_numpy(intmodel.run(xi[0].numpy())))
                    out_lens = torch.tensor([o.shape[0] for o in outs])
                    logits = torch.zeros(len(outs), int(out_lens.max()), outs[0].shape[1])
                    for i, o in enumerate(outs):
                        logits[i, : o.shape[0]] = o
                if args.mode == "greedy":
                    seqs = greedy_ids(logits, out_lens)
                else:
                    lp = logits.log_softmax(-1).numpy()
                    seqs = [list(ctc_prefix_beam_search(lp[i, : int(out_lens[i])], beam=args.beam)[0][0])
                            for i in range(len(ok))]
                for (u, m), ids in zip(ok, seqs):
                    hyps[u] = text.decode(ids)
                    frames += m.shape[0]
            bar.update(len(batch))
    bar.close()
    with atomic_open(args.out) as f:
        for u in entries:
            f.write(f"{u} {hyps[u]}".rstrip() + "\n")
    dt = time.time() - t0
    logging.info("%s: %d utterances (%.1f s of audio) decoded (%s) in %.1f s, RTF %.4f", args.out, len(items),
                 frames / 100, args.mode, dt, dt / max(frames / 100, 1e-9))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_dir", required=True, help="training experiment dir")
    p.add_argument("--model", default="valid.cer.ave.pth", help="model file (relative to --exp_dir or a path)")
    p.add_argument("--feats_scp", required=True)
    p.add_argument("--out", required=True, help="hypotheses in Kaldi text format")
    p.add_argument("--mode", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--beam", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--num_threads", type=int, default=1, help="torch threads per job")
    p.add_argument("--quant", default=None, help="PTQ: quant.json (plan + scales) from rsqasr.bin.quantize")
    p.add_argument("--engine", choices=["intref", "torch"], default="intref",
                   help="quantized models: the bit-exact integer reference, or torch fake quantization")
    return p


if __name__ == "__main__":
    run(main, get_parser())
