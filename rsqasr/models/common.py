"""Building blocks shared by the acoustic models: padded Conv1d layers, length arithmetic, masks.

Conventions (every model in this package follows them):

- Inside a model, activations are channels-first ``(B, C, T)``; every layer is a plain
  ``nn.Conv1d`` (pointwise layers are ``k=1`` convs), a ReLU, an elementwise add, or, for the
  classifier only, an ``nn.Linear``. No normalisation layers, so an integer engine runs exactly
  these ops; a quantization package finds the convs by module type and wraps them from outside.
- Padding. A stride-1 conv uses "same" padding: odd ``k`` pads ``(k-1)/2`` zeros on each side
  (held in ``nn.Conv1d.padding``); even ``k`` pads ``k/2`` zeros on the left and ``k/2 - 1`` on the
  right (one more past than future frame), done with an explicit ``F.pad`` before a conv whose own
  padding is 0, since ``nn.Conv1d`` pads symmetrically. A strided conv pads ``(k-1)//2`` on each side,
  so ``k=3, s=2`` gives ``ceil(T/2)`` frames (600 -> 300 -> 150 as in the paper's Table 3).
- Padded batches. Before every conv with k > 1 (the only layers that mix frames) the frames
  beyond each utterance's valid length are set to zero, and once more on the encoder output; with
  zero padding in the convs, an utterance's valid output frames are then the same as when it runs
  alone (up to float rounding), and logits on padded frames are just the classifier bias. Pointwise
  layers are not masked (they cannot leak), which keeps the op count low. At batch size 1 the
  masks are all ones, so an inference engine can ignore them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

IntOrTensor = Union[int, torch.Tensor]


@dataclass(frozen=True)
class ConvSpec:
    """Length arithmetic of one conv: kernel, stride, total padding (left + right), dilation."""

    kernel: int
    stride: int
    pad_total: int
    dilation: int = 1

    def out_len(self, n: IntOrTensor) -> IntOrTensor:
        num = n + self.pad_total - self.dilation * (self.kernel - 1) - 1
        if isinstance(num, torch.Tensor):
            return torch.where(num >= 0, torch.div(num, self.stride, rounding_mode="floor") + 1,
                               torch.zeros_like(num))
        return num // self.stride + 1 if num >= 0 else 0


def same_padding(kernel: int) -> tuple[int, int]:
    """(left, right) zero padding keeping the length of a stride-1 conv; see the module docstring."""
    return kernel // 2, (kernel - 1) // 2 if kernel % 2 else kernel // 2 - 1


def conv_output_lengths(specs: Sequence[ConvSpec], lens: IntOrTensor) -> IntOrTensor:
    for s in specs:
        lens = s.out_len(lens)
    return lens


def receptive_field(specs: Sequence[ConvSpec]) -> int:
    """Input frames seen by one output frame of a chain of convs."""
    rf, jump = 1, 1
    for s in specs:
        rf += s.dilation * (s.kernel - 1) * jump
        jump *= s.stride
    return rf


def min_input_frames(specs: Sequence[ConvSpec]) -> int:
    n = 1
    while conv_output_lengths(specs, n) < 1:
        n += 1
    return n


def check_input_lengths(lens: torch.Tensor, min_frames: int, max_frames: int | None = None) -> None:
    """Raise ValueError unless every length is in [min_frames, max_frames]."""
    if lens.dim() != 1:
        raise ValueError(f"feat_lens must have shape (B,), got {tuple(lens.shape)}")
    short = (lens < min_frames).nonzero().flatten().tolist()
    if short:
        raise ValueError(f"input too short: utterance(s) {short} have {lens[short].tolist()} frames, "
                         f"the model needs at least {min_frames} input frames for one output frame")
    if max_frames is not None:
        long = (lens > max_frames).nonzero().flatten().tolist()
        if long:
            raise ValueError(f"feat_lens {lens[long].tolist()} of utterance(s) {long} exceed the "
                             f"padded length {max_frames}")


def length_mask(lens: torch.Tensor, t: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, 1, t) mask, 1 on valid frames."""
    return (torch.arange(t, device=lens.device)[None, :] < lens[:, None]).to(dtype).unsqueeze(1)


class ConvLayer(nn.Module):
    """``nn.Conv1d`` [+ ReLU] [+ dropout] with this package's padding rule; zeroes the padded
    frames of its input when k > 1.

    ``forward(x, lens) -> (y, out_lens)`` on channels-first ``(B, C, T)``. The conv itself is the
    attribute ``conv`` (a plain ``nn.Conv1d``), the one thing a quantizer needs to wrap.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = True, relu: bool = True, dropout: float = 0.0, batch_norm: bool = False):
        super().__init__()
        if stride == 1:
            left, right = same_padding(kernel)
        else:
            left = right = (kernel - 1) // 2
        self.extra_pad = (left, right) if left != right else None   # only even k at stride 1
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, groups=groups, bias=bias,
                              padding=0 if self.extra_pad else left)
        self.relu = relu
        # conv -> BatchNorm -> ReLU while training; fold_batchnorm() merges it into the conv
        # (an affine map per channel), so inference and the INT8 engine see a plain conv.
        self.bn = nn.BatchNorm1d(cout) if batch_norm else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.spec = ConvSpec(kernel, stride, left + right)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.spec.kernel > 1:
            x = x * length_mask(lens, x.size(-1), x.dtype)
        if self.extra_pad:
            x = F.pad(x, self.extra_pad)
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        if self.relu:
            y = torch.relu(y)
        if self.dropout is not None:
            y = self.dropout(y)
        return y, self.spec.out_len(lens)


@torch.no_grad()
def fold_batchnorm(net: nn.Module) -> int:
    """Merge every ConvLayer's BatchNorm (its running statistics) into its conv, in place:
    w' = w * g / sqrt(var + eps) per output channel, b' = (b - mean) * g / sqrt(var + eps) + beta.
    Returns how many were folded; a net without BatchNorm is left as it is."""
    n = 0
    for m in net.modules():
        if isinstance(m, ConvLayer) and m.bn is not None:
            bn, conv = m.bn, m.conv
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * scale + bn.bias
            if conv.bias is None:
                conv.bias = nn.Parameter(new_bias)
            else:
                conv.bias.copy_(new_bias)
            m.bn = None
            n += 1
    return n


class CTCConvModel(nn.Module):
    """Base of the models: input checks, length arithmetic, the (B, T, D) -> (B, T', V) contract.

    Subclasses build their layers, set ``self.specs`` (the ConvSpecs of the longest path, in order)
    and ``self.classifier`` (an ``nn.Linear``), and implement ``encode(x, lens)`` on ``(B, D, T)``
    returning the classifier input ``(B, C, T')`` and the output lengths.
    """

    specs: list[ConvSpec]
    classifier: nn.Linear

    def __init__(self, input_dim: int, vocab_size: int):
        super().__init__()
        if input_dim < 1:
            raise ValueError(f"input_dim must be >= 1, got {input_dim}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (blank + one token), got {vocab_size}")
        self.input_dim = input_dim
        self.vocab_size = vocab_size

    @property
    def subsampling(self) -> int:
        s = 1
        for spec in self.specs:
            s *= spec.stride
        return s

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.specs)

    @property
    def min_input_frames(self) -> int:
        return min_input_frames(self.specs)

    def output_lengths(self, lens: IntOrTensor) -> IntOrTensor:
        return conv_output_lengths(self.specs, lens)

    def encode(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, D), feat_lens (B,) -> logits (B, T', V) (pre-softmax, 0 = blank), out_lens (B,)."""
        if feats.dim() != 3:
            raise ValueError(f"feats must be (B, T, D), got shape {tuple(feats.shape)}")
        if feats.size(2) != self.input_dim:
            raise ValueError(f"feature dimension mismatch: the model expects input_dim={self.input_dim}, "
                             f"got feats of shape {tuple(feats.shape)}")
        if feat_lens.dim() != 1 or feat_lens.size(0) != feats.size(0):
            raise ValueError(f"feat_lens must have shape ({feats.size(0)},), got {tuple(feat_lens.shape)}")
        check_input_lengths(feat_lens, self.min_input_frames, feats.size(1))
        h, out_lens = self.encode(feats.transpose(1, 2), feat_lens)
        h = h * length_mask(out_lens, h.size(-1), h.dtype)
        logits = self.classifier(h.transpose(1, 2))
        return logits, out_lens
