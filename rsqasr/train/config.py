"""Training configuration (ESPnet-style YAML, ``conf/train_<model>.yaml``) with checked keys.

Sections: ``model`` (passed to ``rsqasr.models.build_model``), ``specaug`` (espnet2 SpecAug
arguments, or null for none), ``optim``, ``scheduler``, ``train``. An unknown key is an error
naming the file and the key, never silently ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

DEFAULTS: dict = {
    "model": {},
    "model_info_vocab_size": None,  # only for model_info's Table 1 comparison
    "specaug": {
        "apply_time_warp": False,
        "freq_mask_width_range": [0, 27],
        "num_freq_mask": 2,
        "apply_time_mask": True,
        "time_mask_width_ratio_range": [0.0, 0.05],
        "num_time_mask": 2,
    },
    "optim": {"name": "adam", "lr": 0.001, "weight_decay": 0.0, "betas": [0.9, 0.98]},
    "scheduler": {
        "name": "warmup_poly",  # warmup_poly | warmup_cosine | poly | constant
        "warmup_steps": 500,    # linear warm-up (0 = none)
        "power": 1.0,           # poly decay: lr * (1 - step / total_steps) ** power
        "final_lr_ratio": 0.01, # floor of the decay (poly), or where the cosine ends, as a fraction of lr
    },
    "rsq": {                        # RSQ fine-tuning (rsqasr.bin.train --rsq true)
        "plan": "wino",             # wino | int8_gemm
        "beta": 0.25,               # weight of the quantization-noise loss (0: RSQ-dagger)
        "noise_norm": "steps",      # steps: each tensor's MSE in units of its squared step, averaged | none: paper Eq. 7 sum
        "quantize_classifier": False,
        "depthwise": "int8",        # the DFSMN memory: int8 | fp32
        "calib_utts": 200,          # utterances of the training set for the KL initialization
        "scale_lr": 1.0,            # LSQ scales' learning rate relative to their initial value (see trainer.param_groups)
    },
    "train": {
        "epochs": 20,
        "max_steps": 0,             # > 0: stop after this many optimizer steps (paper RSQ: 3000)
        "batch_size": 32,           # utterances per batch (upper bound)
        "max_frames": 0,            # padded input frames per batch (0 = no limit)
        "sortagrad": 0,             # epochs (from the first) that go from short to long batches, unshuffled
        "accum_grad": 1,
        "grad_clip": 5.0,
        "seed": 1,
        "keep_nbest": 5,            # average the n best epochs by valid CER
        "save_interval_steps": 200, # mid-epoch checkpoint for --resume
        "log_interval": 50,
        "max_bad_batches": 20,      # NaN/inf losses in a row before giving up
        "num_workers": 0,
        "valid_max_utts": 0,        # > 0: validate on the first N utterances only
        "amp": "none",              # none | bf16 | auto: the training forward under a bfloat16 autocast (CTC
                                    # and validation in float32); ~1.8x per step on CPUs with AVX-512 BF16;
                                    # auto: bf16 only where the hardware has it, never for RSQ fine-tuning
    },
}


class ConfigError(ValueError):
    """A configuration file is malformed; the message names the file and key."""


def _merge(path: Path, defaults: dict, given: dict, where: str) -> dict:
    out = copy.deepcopy(defaults)
    for k, v in given.items():
        if k not in defaults:
            raise ConfigError(f"{path}: unknown key '{where}{k}' (allowed: {', '.join(sorted(defaults))})")
        if isinstance(defaults[k], dict) and k != "model":
            if v is None and k == "specaug":
                out[k] = None
                continue
            if not isinstance(v, dict):
                raise ConfigError(f"{path}: '{where}{k}' must be a mapping")
            out[k] = _merge(path, defaults[k], v, f"{where}{k}.")
        else:
            out[k] = v
    return out


def _read(path: Path) -> dict:
    try:
        given = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(given, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return given


def load_config(path: str | Path, override: str | Path | None = None) -> dict:
    """The config at ``path``; sections of ``override`` (e.g. an RSQ fine-tuning config with
    its own optim/scheduler/train/rsq) replace keys of it. ``override`` may not change the model."""
    path = Path(path)
    conf = _merge(path, DEFAULTS, _read(path), "")
    if override is not None:
        override = Path(override)
        given = _read(override)
        if "model" in given:
            raise ConfigError(f"{override}: a fine-tuning config may not change 'model'")
        conf = _merge(override, conf, given, "")
    if not conf["model"] or "kind" not in conf["model"]:
        raise ConfigError(f"{path}: 'model' needs a 'kind' (convdfsmn or wav2letter)")
    return conf
