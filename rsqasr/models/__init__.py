"""Conv1D CTC acoustic models: ConvDFSMN and the simplified Wav2letter of the paper.

    model = build_model(conf["model"], input_dim=80, vocab_size=len(token_list))
    logits, out_lens = model(feats, feat_lens)      # (B, T, D) -> (B, T', V), blank = 0

Every model has ``subsampling``, ``receptive_field``, ``min_input_frames``,
``output_lengths(lens)`` and ``classifier`` (the final ``nn.Linear``). This package knows nothing
of quantization: convs are plain ``nn.Conv1d`` modules that a quantizer finds and wraps from outside.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from rsqasr.models.common import CTCConvModel, check_input_lengths
from rsqasr.models.convdfsmn import ConvDFSMN, ConvDFSMNConfig
from rsqasr.models.count import conv1d_layers, count_params_macs
from rsqasr.models.wav2letter import Wav2letter, Wav2letterConfig

MODELS = {"convdfsmn": (ConvDFSMN, ConvDFSMNConfig), "wav2letter": (Wav2letter, Wav2letterConfig)}

__all__ = ["build_model", "count_params_macs", "conv1d_layers", "check_input_lengths", "CTCConvModel", "ConvDFSMN", "ConvDFSMNConfig", "Wav2letter",
           "Wav2letterConfig", "MODELS"]


def _check_type(kind: str, key: str, value: Any, default: Any) -> Any:
    """Values from YAML: ints stay ints (floats accepted only for float fields), lists of ints."""
    def bad():
        return ValueError(f"model ({kind}): {key} must be {type(default).__name__} like {default!r}, got {value!r}")
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise bad()
    elif isinstance(default, float):
        if not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    elif isinstance(default, int):
        if not isinstance(value, int):
            raise bad()
    elif isinstance(default, list):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad()
        return list(value)
    return value


def build_model(conf: Mapping[str, Any], input_dim: int, vocab_size: int) -> CTCConvModel:
    """The model described by a YAML ``model:`` mapping (``kind:`` plus hyper-parameters)."""
    if not isinstance(conf, Mapping):
        raise ValueError(f"model config must be a mapping, got {type(conf).__name__}")
    if "kind" not in conf:
        raise ValueError(f"model config has no 'kind' key (one of {sorted(MODELS)})")
    kind = conf["kind"]
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; allowed: {sorted(MODELS)}")
    cls, cfg_cls = MODELS[kind]
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    defaults = cfg_cls()
    kwargs = {}
    for key, value in conf.items():
        if key == "kind":
            continue
        if key not in fields:
            raise ValueError(f"unknown key {key!r} in model config of kind {kind!r}; allowed keys: "
                             f"{', '.join(['kind', *fields])}")
        kwargs[key] = _check_type(kind, key, value, getattr(defaults, key))
    return cls(input_dim, vocab_size, cfg_cls(**kwargs))
