"""Load a trained model from its experiment dir for decoding (config.yaml, cmvn.npy,
tokens.txt and a model file written by rsqasr.bin.train)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from rsqasr.ctc_model import CTCModel
from rsqasr.dataio.text import TextProcessor
from rsqasr.models import build_model


class ModelLoadError(ValueError):
    """A model file or experiment dir does not hold what decoding needs; names the file."""


def quantize_net(net: torch.nn.Module, q: dict, scales: dict | None = None) -> torch.nn.Module:
    """Wrap ``net``'s layers for quantization as described by an ``rsq`` config section."""
    from rsqasr.quant import make_plan, quantize_model

    plan = make_plan(net, kind=q["plan"], quantize_classifier=bool(q["quantize_classifier"]),
                     depthwise=q["depthwise"])
    return quantize_model(net, plan, scales)


def calibration_batches(model: CTCModel, data_dir: str | Path, num_utts: int, seed: int = 0):
    """``num_utts`` utterances of ``data_dir`` (a seeded random choice), each as a batch of one
    after global CMVN: what ``rsqasr.quant.calibrate`` expects."""
    import numpy as np

    from rsqasr.dataio.dataset import FeatsTextDataset

    ds = FeatsTextDataset(data_dir, text=None)
    keys = sorted(ds.keys)
    if num_utts and num_utts < len(keys):
        keys = sorted(np.random.default_rng(seed).choice(keys, size=num_utts, replace=False).tolist())
    out = []
    with torch.no_grad():
        for u in keys:
            x = torch.from_numpy(np.array(ds.load(u).feats))[None]
            lens = torch.tensor([x.shape[1]])
            out.append(model.normalize(x, lens))
    return out


def load_asr(exp_dir: str | Path, model_file: str | Path) -> tuple[CTCModel, TextProcessor, dict]:
    exp_dir, model_file = Path(exp_dir), Path(model_file)
    cfg_path = exp_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ModelLoadError(f"{cfg_path}: not found; is {exp_dir} a training experiment dir?")
    conf = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    bpe = exp_dir / "bpe.model"
    text = TextProcessor(exp_dir / "tokens.txt", conf.get("token_type", "char"), bpe if bpe.is_file() else None)
    net = build_model(conf["model"], input_dim=conf["input_dim"], vocab_size=conf["vocab_size"])
    if conf.get("quant"):  # an RSQ experiment: wrap the layers as in training, then load its scales too
        quantize_net(net, conf["quant"])
    model = CTCModel(net, exp_dir / "cmvn.npy", specaug=None)
    try:
        state = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - missing, truncated or foreign file
        raise ModelLoadError(f"{model_file}: cannot load model: {e}") from e
    if isinstance(state, dict) and "format" in state and "model" in state:
        state = state["model"]  # a training checkpoint
    if not isinstance(state, dict):
        raise ModelLoadError(f"{model_file}: not a model state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelLoadError(f"{model_file}: does not fit the model of {cfg_path} "
                             f"({conf['model'].get('kind')}): {str(e).splitlines()[0]}") from e
    model.eval()
    return model, text, conf
