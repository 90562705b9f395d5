"""ConvDFSMN: a Conv1D front followed by DFSMN blocks and a linear CTC classifier (paper section 4.1).

Our copy of the paper lacks its Fig. 4, so the layer plan below is ours, fitted to what the paper
does give: Table 3 names the Winograd-candidate convs (k>=3, stride 1) of ConvDFSMN, and Table 1
gives parameters and multiply-adds at 600 input frames for n=4 (-b) and n=2 (-s).

What Table 1 implies
- The two models differ only in n, so one DFSMN block is (16.20 - 12.37) / 2 = 1.92 M parameters
  and (2.45 - 1.87) / 2 = 0.29 G MACs = 1.93 M MACs per frame at 150 frames: the blocks run at
  the subsampled rate (MACs = parameters x 150), and hold no k>=3 dense conv.
- The classifier: 0.98 G / 150 frames = 6.5 M MACs per frame = its 6.52 M parameters, so it also
  runs at 150 frames. One Linear(768 -> V) with V = 8,404 gives 6.46 M / 0.97 G; 8,404 is the
  size of Alibaba's large-scale Mandarin character vocabulary (e.g. the "vocab8404" models of
  FunASR, same company as EasyASR, which pre-trained these models on 8,000 h). We assume
  V = 8,404 for the Table 1 comparison (``model_info_vocab_size`` in the paper configs); the
  model itself takes V from its constructor (the training code passes len(token_list)).
- What remains, ~2.0 M parameters / ~0.31 G, is the front: at most ~2 M MACs per frame above
  150 x params, i.e. only a small first layer runs at 300 frames.
- Table 3's four convs all read 128 channels: (3, 128->512), (3, 128->768), (3, 128->1024),
  (15, 128->128), 1.13 M parameters together. They fit the front, not the blocks.

Our plan (``(k, cin->cout, s)``; every conv is a plain ``nn.Conv1d``; "P" = linear 1x1 projection
without bias or ReLU; all other layers are followed by ReLU)::

    fbank (B, T, D)                                          rate
    front  conv (3, D->128, s=2)                             T/2   strided: normal INT8
           conv (3, 128->128, s=2)                           T/4   strided: normal INT8
           conv (15, 128->128)                                      Winograd (Table 3)
           x + P(1, 512->128)(conv (3, 128->512)(x))                Winograd (Table 3)
           x + P(1, 768->128)(conv (3, 128->768)(x))                Winograd (Table 3)
               P(1, 1024->p)(conv (3, 128->1024)(x))                Winograd (Table 3)
    n x DFSMN block (Zhang et al. 2018), on the memory stream m (p channels):
           h = conv (1, p->c)(m)                      hidden, ReLU
           q = P(1, c->p)(h)                          projection
           m = m + q + memory(q)                      memory: depthwise conv (m_k, p->p, groups=p),
                                                      skip connection from the previous block
    output conv (1, p->768)                                   ReLU
    classifier Linear(768 -> V)                               kept FP32 by the paper

The front's widening units are DFSMN-style "hidden + projection" pairs whose hidden layer is a
k=3 conv, with residual adds where shapes match; the last one projects into the p-wide memory
stream of the blocks, so every block (including the first) has the same shape and the same skip.
The memory is the DFSMN memory with lookback = lookahead = (m_k-1)/2 frames at the 40 ms rate
and stride 1, written as ``q + depthwise(q)`` exactly as in DFSMN's equation (an exporter may fold
the identity into the centre tap). Being depthwise (groups = channels), it is not a dense GEMM
conv and Table 3 does not list it; its k >= 3 and stride 1 do make it Winograd-shaped, which
``rsqasr.models.conv1d_layers`` reports with ``groups`` so a quantizer can decide.

With c = 1792, p = 512, m_k = 21 and V = 8,404 (``egs/aishell/conf/train_convdfsmn_{b,s}.yaml``):

    =============  =================  =================  =====================
    model          params (M)         MACs @600 (G)      classifier M / G
    =============  =================  =================  =====================
    ConvDFSMN-b    16.15 (16.20)      2.42 (2.45)        6.46 / 0.97 (6.52/0.98)
    ConvDFSMN-s    12.45 (12.37)      1.87 (1.87)        6.46 / 0.97
    =============  =================  =================  =====================

(paper values in parentheses; ``python -m rsqasr.bin.model_info`` prints the exact counts).

Ops used: Conv1d (dense, pointwise, depthwise), ReLU, elementwise add, Linear; dropout only in
training. Receptive field of -b: 407 input frames.

Training-time options that fold into the plain convs above (``fold_batchnorm`` at export), added
for the mini recipe (egs/mini_aishell/RESULTS.md has the runs that motivated them):
``batch_norm`` (BatchNorm before every ReLU), ``projection_norm`` (BatchNorm on the linear
projections that feed the residual and memory streams; without it the memory stream's values grew
to ~540 and training was slower), and ``context_residual`` (``x + ReLU(context(x))``: the k=15
context conv as a residual branch, one elementwise add more; the plain k=15 layer slowed the
mini model's learning while a k=3 one did not).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rsqasr.models.common import ConvLayer, CTCConvModel


@dataclass
class ConvDFSMNConfig:
    front_channels: int = 128          # width of the strided convs and of the front's stream
    front_kernel: int = 3              # kernel of the two stride-2 convs (frame rate / 4)
    context_kernel: int = 15           # the (k, 128->128) context conv; 0 = none
    unit_kernel: int = 3               # kernel of the widening units' conv
    unit_widths: list[int] = field(default_factory=lambda: [512, 768, 1024])  # one unit each
    num_blocks: int = 4                # n: DFSMN blocks
    hidden_size: int = 1792            # c
    proj_size: int = 512               # p
    memory_size: int = 21              # m: kernel of the depthwise memory (odd: symmetric)
    output_size: int = 768             # ReLU layer before the classifier; 0 = classifier on p
    dropout: float = 0.0               # after ReLUs, training only
    batch_norm: bool = False           # BatchNorm before each ReLU while training; folded into the conv for inference
    projection_norm: bool = False      # BatchNorm on the linear projections too (what feeds the residual / memory stream)
    context_residual: bool = False     # x + context(x): a residual around the (k, 128->128) context conv

    def validate(self) -> None:
        for name in ("front_channels", "front_kernel", "unit_kernel", "num_blocks", "hidden_size",
                     "proj_size", "memory_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"convdfsmn: {name} must be >= 1, got {getattr(self, name)}")
        if self.context_kernel < 0 or self.output_size < 0:
            raise ValueError("convdfsmn: context_kernel and output_size must be >= 0")
        if not self.unit_widths or any(w < 1 for w in self.unit_widths):
            raise ValueError(f"convdfsmn: unit_widths must be a non-empty list of sizes, got {self.unit_widths}")
        if self.memory_size % 2 == 0:
            raise ValueError(f"convdfsmn: memory_size must be odd (lookback = lookahead), got {self.memory_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"convdfsmn: dropout must be in [0, 1), got {self.dropout}")


class Unit(nn.Module):
    """conv (k, cin->w) + ReLU, then linear 1x1 projection (w->cout); residual when cin == cout."""

    def __init__(self, cin: int, width: int, cout: int, kernel: int, dropout: float, batch_norm: bool = False,
                 projection_norm: bool = False):
        super().__init__()
        self.conv = ConvLayer(cin, width, kernel, dropout=dropout, batch_norm=batch_norm)
        self.projection = ConvLayer(width, cout, 1, bias=False, relu=False, batch_norm=projection_norm)
        self.residual = cin == cout

    def forward(self, x, lens):
        h, _ = self.conv(x, lens)
        y, _ = self.projection(h, lens)
        return (x + y if self.residual else y), lens


class DFSMNBlock(nn.Module):
    """hidden 1x1 (p->c) + ReLU, projection 1x1 (c->p), memory m + q + depthwise(q)."""

    def __init__(self, proj: int, hidden: int, memory: int, dropout: float, batch_norm: bool = False,
                 projection_norm: bool = False):
        super().__init__()
        self.hidden = ConvLayer(proj, hidden, 1, dropout=dropout, batch_norm=batch_norm)
        self.projection = ConvLayer(hidden, proj, 1, bias=False, relu=False, batch_norm=projection_norm)
        self.memory = ConvLayer(proj, proj, memory, groups=proj, bias=False, relu=False)

    def forward(self, m, lens):
        h, _ = self.hidden(m, lens)
        q, _ = self.projection(h, lens)
        mem, _ = self.memory(q, lens)
        return m + q + mem, lens


class ConvDFSMN(CTCConvModel):
    def __init__(self, input_dim: int, vocab_size: int, cfg: ConvDFSMNConfig | None = None):
        super().__init__(input_dim, vocab_size)
        cfg = cfg or ConvDFSMNConfig()
        cfg.validate()
        self.cfg = cfg
        fc, bn = cfg.front_channels, cfg.batch_norm
        self.subsample = nn.ModuleList([
            ConvLayer(input_dim, fc, cfg.front_kernel, stride=2, dropout=cfg.dropout, batch_norm=bn),
            ConvLayer(fc, fc, cfg.front_kernel, stride=2, dropout=cfg.dropout, batch_norm=bn)])
        self.context = ConvLayer(fc, fc, cfg.context_kernel, dropout=cfg.dropout, batch_norm=bn) \
            if cfg.context_kernel else None
        widths = cfg.unit_widths
        self.units = nn.ModuleList(
            Unit(fc, w, cfg.proj_size if i == len(widths) - 1 else fc, cfg.unit_kernel, cfg.dropout, bn,
                 cfg.projection_norm)
            for i, w in enumerate(widths))
        self.blocks = nn.ModuleList(DFSMNBlock(cfg.proj_size, cfg.hidden_size, cfg.memory_size, cfg.dropout, bn,
                                               cfg.projection_norm)
                                    for _ in range(cfg.num_blocks))
        self.output = ConvLayer(cfg.proj_size, cfg.output_size, 1, dropout=cfg.dropout, batch_norm=bn) \
            if cfg.output_size else None
        self.classifier = nn.Linear(cfg.output_size or cfg.proj_size, vocab_size)
        self.specs = ([s.spec for s in self.subsample] + ([self.context.spec] if self.context else [])
                      + [u.conv.spec for u in self.units] + [b.memory.spec for b in self.blocks])

    def encode(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for layer in self.subsample:
            x, lens = layer(x, lens)
        if self.context is not None:
            y, lens = self.context(x, lens)
            x = x + y if self.cfg.context_residual else y
        for unit in self.units:
            x, lens = unit(x, lens)
        for block in self.blocks:
            x, lens = block(x, lens)
        if self.output is not None:
            x, lens = self.output(x, lens)
        return x, lens
