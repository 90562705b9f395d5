"""Parameters and multiply-adds of a model config (as the paper's Table 1), and its Winograd-candidate convs.

Usage:
    python -m rsqasr.bin.model_info --config egs/aishell/conf/train_convdfsmn_b.yaml
    python -m rsqasr.bin.model_info --config conf/train_convdfsmn.yaml --vocab_size 850 --json

The vocabulary size comes from --vocab_size, else from the config's top-level
``model_info_vocab_size`` key (set in the paper configs to the vocabulary assumed for Table 1).
MACs count Conv1d and Linear multiply-accumulates at --frames input frames, batch 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from rsqasr.bin._cli import make_parser, run
from rsqasr.models import build_model, count_params_macs
from rsqasr.models.common import fold_batchnorm
from rsqasr.quant.plan import winograd_candidates


def load_model_conf(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        conf = yaml.safe_load(f)
    if not isinstance(conf, dict) or not isinstance(conf.get("model"), dict):
        raise ValueError(f"{path}: no 'model:' mapping")
    return conf


def main(args) -> None:
    conf = load_model_conf(args.config)
    vocab_size = args.vocab_size or conf.get("model_info_vocab_size")
    if not vocab_size:
        raise ValueError(f"{args.config}: no vocabulary size: pass --vocab_size or set model_info_vocab_size")
    if not isinstance(vocab_size, int):
        raise ValueError(f"{args.config}: model_info_vocab_size must be an integer, got {vocab_size!r}")
    model = build_model(conf["model"], input_dim=args.input_dim, vocab_size=vocab_size)
    fold_batchnorm(model.eval())   # count the inference model: BatchNorm folds into the convs
    counts = count_params_macs(model, frames=args.frames, input_dim=args.input_dim)
    if args.json:
        print(json.dumps(counts))
        return
    print(f"{args.config}: kind={conf['model']['kind']} input_dim={args.input_dim} vocab_size={vocab_size} "
          f"frames={args.frames}")
    print(f"  parameters  {counts['params'] / 1e6:8.2f} M   (classifier {counts['classifier_params'] / 1e6:.2f} M)")
    print(f"  MACs        {counts['macs'] / 1e9:8.2f} G   (classifier {counts['classifier_macs'] / 1e9:.2f} G)")
    print(f"  subsampling {model.subsampling}, receptive field {model.receptive_field} frames, "
          f"output frames {model.output_lengths(args.frames)}")
    print("  Winograd-shaped convs (k >= 3, stride 1): name (k, cin, cout)")
    for name, conv in winograd_candidates(model, include_depthwise=True):
        note = f"  depthwise (groups={conv.groups})" if conv.groups > 1 else ""
        print(f"    {name:24s} ({conv.kernel_size[0]}, {conv.in_channels}, {conv.out_channels}){note}")


def get_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--config", required=True, help="training YAML with a model: section")
    parser.add_argument("--frames", type=int, default=600, help="input frames for the MAC count")
    parser.add_argument("--input_dim", type=int, default=80, help="feature dimension")
    parser.add_argument("--vocab_size", type=int, default=None,
                        help="vocabulary size incl. <blank>; default: the config's model_info_vocab_size")
    parser.add_argument("--json", action="store_true", help="print one JSON object of plain counts")
    return parser


if __name__ == "__main__":
    run(main, get_parser())
