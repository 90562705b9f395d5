"""Parameter and multiply-accumulate counts (Table 1 style), and the list of Conv1d layers."""

from __future__ import annotations

import torch
from torch import nn


def conv1d_layers(model: nn.Module) -> list[tuple[str, nn.Conv1d]]:
    """Every ``nn.Conv1d`` of the model with its qualified name, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv1d)]


def count_params_macs(model: nn.Module, frames: int = 600, input_dim: int = 80) -> dict[str, int]:
    """Parameters and MACs for one utterance of ``frames`` input frames (batch 1).

    MACs are the multiply-accumulates of the Conv1d and Linear layers,
    ``T_out * cout * cin/groups * k`` and ``rows * in * out``, from the shapes each layer sees
    (one no-grad forward pass of zeros records them). Bias adds, ReLU, residual/memory adds and
    padding masks are not counted (as Table 1, which counts one multiply-add as one FLOP).
    Parameters include biases. ``classifier_*`` cover ``model.classifier``.
    """
    model_dim = getattr(model, "input_dim", input_dim)
    if model_dim != input_dim:
        raise ValueError(f"input_dim={input_dim} but the model was built for input_dim={model_dim}")
    if frames < getattr(model, "min_input_frames", 1):
        raise ValueError(f"frames={frames} is below the model's minimum input of {model.min_input_frames}")
    classifier = set(model.classifier.modules()) if hasattr(model, "classifier") else set()
    macs = {"all": 0, "classifier": 0}

    def hook(mod, inputs, output):
        if isinstance(mod, nn.Conv1d):
            n = output.shape[-1] * mod.out_channels * (mod.in_channels // mod.groups) * mod.kernel_size[0]
        else:
            n = output.numel() // output.shape[-1] * mod.in_features * mod.out_features
        macs["all"] += n
        if mod in classifier:
            macs["classifier"] += n

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, frames, input_dim, dtype=p.dtype, device=p.device),
                  torch.tensor([frames], device=p.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {"params": sum(p.numel() for p in model.parameters()),
            "macs": macs["all"],
            "classifier_params": sum(p.numel() for m in classifier for p in m.parameters(recurse=False)),
            "classifier_macs": macs["classifier"]}
