"""Wav2letter, the paper's simplified version (section 5.1): a plain Conv1D stack with CTC.

The paper gives only Table 1 (17.32 M parameters, 2.62 G MACs at 600 frames, the same 6.52 M /
0.98 G classifier as ConvDFSMN) and Table 3's Winograd-candidate convs (9, 256->512),
(13, 512->512), (15, 512->512) at 150 frames. Our plan, after Collobert et al. 2016 (strided
first layer, wide-kernel convs, then 1x1 "fully connected" convs; all followed by ReLU)::

    fbank (B, T, D)
    conv (3, D->256, s=2), conv (3, 256->256, s=2)        frame rate / 4, normal INT8
    conv (9, 256->512), conv (13, 512->512), conv (15, 512->512)   Winograd (Table 3)
    conv (1, 512->1536), conv (1, 1536->768)              1x1 "fully connected" layers
    classifier Linear(768 -> V)                            same as ConvDFSMN's

With V = 8,404 (see ``rsqasr.models.convdfsmn``): 17.21 M parameters (paper 17.32) and
2.59 G MACs (paper 2.62), classifier 6.46 M / 0.97 G. The three big-kernel convs hold 8.5 M of
the 10.7 M non-classifier parameters; the 1x1 widths (1536, 768) make up the rest and end at the
classifier's 768-wide input. No normalisation layers; dropout only in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rsqasr.models.common import ConvLayer, CTCConvModel


@dataclass
class Wav2letterConfig:
    front_channels: int = 256          # the two stride-2 convs
    front_kernel: int = 3
    conv_channels: list[int] = field(default_factory=lambda: [512, 512, 512])
    conv_kernels: list[int] = field(default_factory=lambda: [9, 13, 15])
    fc_sizes: list[int] = field(default_factory=lambda: [1536, 768])   # 1x1 convs; last feeds the classifier
    dropout: float = 0.0
    batch_norm: bool = False           # BatchNorm before each ReLU while training; folded for inference

    def validate(self) -> None:
        if self.front_channels < 1 or self.front_kernel < 1:
            raise ValueError("wav2letter: front_channels and front_kernel must be >= 1")
        if len(self.conv_channels) != len(self.conv_kernels):
            raise ValueError(f"wav2letter: conv_channels {self.conv_channels} and conv_kernels "
                             f"{self.conv_kernels} must have the same length")
        if any(v < 1 for v in [*self.conv_channels, *self.conv_kernels, *self.fc_sizes]):
            raise ValueError("wav2letter: conv_channels, conv_kernels and fc_sizes must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"wav2letter: dropout must be in [0, 1), got {self.dropout}")


class Wav2letter(CTCConvModel):
    def __init__(self, input_dim: int, vocab_size: int, cfg: Wav2letterConfig | None = None):
        super().__init__(input_dim, vocab_size)
        cfg = cfg or Wav2letterConfig()
        cfg.validate()
        self.cfg = cfg
        fc, d = cfg.front_channels, cfg.dropout
        bn = cfg.batch_norm
        layers = [ConvLayer(input_dim, fc, cfg.front_kernel, stride=2, dropout=d, batch_norm=bn),
                  ConvLayer(fc, fc, cfg.front_kernel, stride=2, dropout=d, batch_norm=bn)]
        cin = fc
        for cout, k in zip(cfg.conv_channels, cfg.conv_kernels):
            layers.append(ConvLayer(cin, cout, k, dropout=d, batch_norm=bn))
            cin = cout
        for cout in cfg.fc_sizes:
            layers.append(ConvLayer(cin, cout, 1, dropout=d, batch_norm=bn))
            cin = cout
        self.layers = nn.ModuleList(layers)
        self.classifier = nn.Linear(cin, vocab_size)
        self.specs = [layer.spec for layer in self.layers]

    def encode(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.layers:
            x, lens = layer(x, lens)
        return x, lens
