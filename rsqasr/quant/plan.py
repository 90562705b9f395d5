"""Per-layer quantization plan, decided from the model from outside (no model-specific code).

    plan = make_plan(net, kind="wino")            # or "int8_gemm" / "fp32"; quantize_classifier=False
    print(plan.table()); plan.save("exp/x/quant_plan.json"); plan = QuantPlan.load(...)

Rules (paper sections 2-3 and Table 2's note):

- ``nn.Conv1d`` with k >= 3, stride 1, dilation 1, groups 1 (``is_winograd_shaped``: the one
  statement of that rule): ``wino23`` (F(2,3) Winograd):
  activations 7-bit [-63, 63] (alpha = 1.0), weights range-scaled [-42, 42] (alpha = 1.5).
- ``nn.Conv1d`` with k = 1 or stride > 1 (or dilation > 1): ``int8`` (GEMM): [-127, 127] for both.
- depthwise / grouped ``nn.Conv1d`` (the DFSMN memory): ``int8`` direct by default
  (``depthwise="int8"``), or ``"fp32"``. Why int8 direct and not Winograd: a depthwise conv has
  no reduction over channels, so a Winograd tile saves 1/3 of k MACs per channel but pays the
  transforms for every channel (no reuse across output channels) and the 7-bit/[-42,42] ranges
  would cost precision on the memory, whose output is summed into the float residual stream; its
  MACs are < 1 % of the model (p * m per frame). Plain int8 keeps the full 8-bit range.
- ``nn.Linear`` (the classifier): ``fp32`` unless ``quantize_classifier=True`` (then ``int8``).
- ``kind="int8_gemm"``: every conv ``int8`` (the paper's "INT8 GEMM" baseline rows).
- ``kind="fp32"``: every layer ``fp32`` (the FP32 export: the same traced, BatchNorm-folded graph
  with nothing quantized; the other options are recorded but change nothing).

Scales are symmetric; per tensor by default, ``weight_per_channel=True`` gives one weight scale
per output channel. The plan also stores the traced graph (``rsqasr.quant.graph``) and, for
each quantized layer, where its output goes: ``requant`` to the input scale and range of its
single quantized consumer (a following ReLU fused as lo = 0), or ``float`` (dequantized to float32
because the graph continues with float ops: residual adds, the memory sum, an FP32 classifier,
or more than one consumer).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from rsqasr.models.common import fold_batchnorm
from rsqasr.models.count import conv1d_layers
from rsqasr.quant.graph import Graph, Node, trace
from rsqasr.utils.fileio import atomic_write_text

WINO_ACT_T, WINO_W_T = 63, 42
INT8_T = 127
# A layer's scheme. The position is the scheme's code in the engine's model file (LAYR record,
# src_arm/FORMAT.md): the exporter encodes with SCHEMES.index, so never reorder or insert.
SCHEMES = ("fp32", "int8", "wino23")
PLAN_KINDS = ("wino", "int8_gemm", "fp32")
PLAN_FILE_FORMAT = "rsqasr-quant-plan-1"


def is_winograd_shaped(k: int, stride: int, dilation: int = 1) -> bool:
    """k >= 3, stride 1, dilation 1: the convs the paper runs as F(2,3) Winograd (section 3).
    ``make_plan`` gives dense ones the ``wino23`` scheme; depthwise ones stay int8 direct."""
    return k >= 3 and stride == 1 and dilation == 1


def winograd_candidates(model: nn.Module, include_depthwise: bool = False) -> list[tuple[str, nn.Conv1d]]:
    """The model's Winograd-shaped ``nn.Conv1d`` layers (name, module) in registration order: dense
    (groups=1) ones only, as Table 3 lists them, or with ``include_depthwise`` also grouped ones
    such as the DFSMN memory."""
    return [(n, c) for n, c in conv1d_layers(model)
            if is_winograd_shaped(c.kernel_size[0], c.stride[0], c.dilation[0])
            and (include_depthwise or c.groups == 1)]


@dataclass
class LayerPlan:
    name: str                 # qualified module name (nn.Conv1d / nn.Linear)
    op: str                   # "conv" | "linear"
    scheme: str               # "wino23" | "int8" | "fp32"
    cin: int
    cout: int
    k: int = 1
    stride: int = 1
    groups: int = 1
    pad_left: int = 0         # module padding plus a folded F.pad before it
    pad_right: int = 0
    act_T: int = 0            # integer range of the input activation [-act_T, act_T] (0: fp32)
    w_T: int = 0              # integer range of the weight
    act_alpha: float = 1.0    # range scaling factor: act_T = 127 // ... (informational)
    w_alpha: float = 1.0
    per_channel: bool = False
    out: str = "float"        # "requant" | "float"
    out_consumer: str | None = None   # requant: the consumer layer whose input scale/range is used
    out_relu: bool = False    # requant: ReLU fused (lo = 0)

    @property
    def quantized(self) -> bool:
        return self.scheme != "fp32"

    @property
    def depthwise(self) -> bool:
        return self.groups > 1


@dataclass
class QuantPlan:
    kind: str
    layers: dict[str, LayerPlan]
    graph: Graph
    options: dict = field(default_factory=dict)

    # ------------------------------------------------------------ queries
    def quantized_layers(self) -> list[LayerPlan]:
        return [lp for lp in self.layers.values() if lp.quantized]

    def out_range(self, lp: LayerPlan) -> tuple[int, int]:
        """[lo, hi] of a requantized output (the consumer's input range, lo = 0 with ReLU)."""
        return requant_range(lp, self.layers[lp.out_consumer])

    # ------------------------------------------------------------ printing / JSON
    def table(self) -> str:
        head = f"{'layer':32s} {'op':6s} {'scheme':7s} {'k':>3s} {'s':>2s} {'g':>4s} {'cin':>5s} {'cout':>5s} " \
               f"{'pad':>6s} {'act':>5s} {'w':>4s}  output"
        rows = [f"quantization plan: kind={self.kind} options={self.options}", head, "-" * len(head)]
        for lp in self.layers.values():
            rng = lambda T: f"±{T}" if T else "fp32"
            outp = (f"requant -> {lp.out_consumer}{' (relu)' if lp.out_relu else ''}" if lp.out == "requant"
                    else ("float32" if lp.quantized else "-"))
            rows.append(f"{lp.name:32s} {lp.op:6s} {lp.scheme:7s} {lp.k:3d} {lp.stride:2d} {lp.groups:4d} "
                        f"{lp.cin:5d} {lp.cout:5d} {f'{lp.pad_left},{lp.pad_right}':>6s} {rng(lp.act_T):>5s} "
                        f"{rng(lp.w_T):>4s}  {outp}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {"format": PLAN_FILE_FORMAT, "kind": self.kind, "options": self.options,
                "layers": [asdict(lp) for lp in self.layers.values()], "graph": self.graph.to_dict()}

    @staticmethod
    def from_dict(d: dict) -> "QuantPlan":
        if d.get("format") != PLAN_FILE_FORMAT:
            raise ValueError(f"not a quantization plan (format {d.get('format')!r})")
        layers = {lp["name"]: LayerPlan(**lp) for lp in d["layers"]}
        return QuantPlan(d["kind"], layers, Graph.from_dict(d["graph"]), d.get("options", {}))

    # ------------------------------------------------------------ the plan file
    def save(self, path: str | Path, scales: dict | None = None) -> None:
        """The one way a plan is stored: one JSON object ``{"plan": ..., "scales": ...}``, written
        atomically (temporary file + rename: a killed run leaves the old file or the new one).
        ``scales`` makes it a quant.json (``rsqasr.quant.save_quant``); None stores the plan alone."""
        atomic_write_text(path, json.dumps({"plan": self.to_dict(), "scales": scales}, indent=1) + "\n")

    @staticmethod
    def load_file(path: str | Path) -> tuple["QuantPlan", dict | None]:
        """The plan and the scales (None when stored without) of a file ``save`` wrote; a file that
        is not one is a ValueError naming it. The scales are not checked here (``load_quant`` does)."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read quantization file: {e}") from e
        if not isinstance(d, dict) or "plan" not in d or "scales" not in d:
            raise ValueError(f"{path}: not a quantization file (a JSON object with 'plan' and 'scales')")
        try:
            plan = QuantPlan.from_dict(d["plan"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: bad plan: {e}") from e
        return plan, d["scales"]

    @staticmethod
    def load(path: str | Path) -> "QuantPlan":
        return QuantPlan.load_file(path)[0]


def requant_range(lp: LayerPlan, consumer: LayerPlan) -> tuple[int, int]:
    """[lo, hi] of ``lp``'s requantized output: its consumer's input range, lo = 0 with a fused ReLU."""
    return (0 if lp.out_relu else -consumer.act_T), consumer.act_T


# ------------------------------------------------------------------ graph clean-up
def simplify(graph: Graph, modules: dict[str, nn.Module]) -> Graph:
    """Drop identity nodes, fold a zero ``pad`` feeding only convs into their padding."""
    nodes = {n.id: Node(n.id, n.op, list(n.inputs), n.module, dict(n.attrs)) for n in graph.nodes}
    alias: dict[int, int] = {}

    def res(i):
        while i in alias:
            i = alias[i]
        return i

    for n in list(nodes.values()):
        n.inputs = [res(i) for i in n.inputs]
        if n.op == "identity":
            alias[n.id] = n.inputs[0]
            del nodes[n.id]
    out = res(graph.output)
    g = Graph(list(nodes.values()), out)
    for n in g.nodes:
        if n.op == "conv":
            m = modules[n.module]
            p = m.padding[0] if isinstance(m.padding, tuple) else m.padding
            if isinstance(p, str):
                raise ValueError(f"{n.module}: string padding {p!r} is not supported")
            n.attrs.setdefault("pad_left", p)
            n.attrs.setdefault("pad_right", p)
    cons = g.consumers()
    byid = g.by_id()
    drop = set()
    for n in g.nodes:
        if n.op == "pad" and cons[n.id] and all(byid[c].op == "conv" for c in cons[n.id]) and n.id != out:
            for c in cons[n.id]:
                byid[c].attrs["pad_left"] += n.attrs["left"]
                byid[c].attrs["pad_right"] += n.attrs["right"]
                byid[c].inputs = [n.inputs[0] if i == n.id else i for i in byid[c].inputs]
            drop.add(n.id)
    return Graph([n for n in g.nodes if n.id not in drop], out)


# ------------------------------------------------------------------ the plan
def make_plan(net: nn.Module, kind: str = "wino", quantize_classifier: bool = False,
              depthwise: str = "int8", weight_per_channel: bool = False,
              input_dim: int | None = None) -> QuantPlan:
    """Decide the plan of ``net`` (a CTC conv model: ``net(feats (B,T,D), lens) -> (logits, lens)``).

    BatchNorm layers of the model are folded into their convs first (in place): the plan, the
    fake quantization and the integer reference all see the folded convs. ``kind="fp32"`` is the
    plan of the FP32 export: the same graph, every layer ``fp32``."""
    if kind not in PLAN_KINDS:
        raise ValueError(f"plan kind must be one of {', '.join(map(repr, PLAN_KINDS))}, got {kind!r}")
    if depthwise not in ("int8", "fp32"):
        raise ValueError(f"depthwise must be 'int8' or 'fp32', got {depthwise!r}")
    fold_batchnorm(net)  # training-time BatchNorm becomes part of the convs (in place)
    modules = dict(net.named_modules())
    graph = simplify(trace(net, input_dim), modules)
    layers: dict[str, LayerPlan] = {}
    for n in graph.nodes:
        if n.op not in ("conv", "linear"):
            continue
        if n.module in layers:
            raise ValueError(f"module {n.module} is called more than once; weight sharing is not supported")
        m = modules[n.module]
        if n.op == "conv":
            k, s, g, d = m.kernel_size[0], m.stride[0], m.groups, m.dilation[0]
            if d != 1:
                raise ValueError(f"{n.module}: dilation {d} is not supported by the engine")
            if s not in (1, 2):
                raise ValueError(f"{n.module}: stride {s} is not supported by the engine (1 or 2)")
            lp = LayerPlan(n.module, "conv", "int8", m.in_channels, m.out_channels, k, s, g,
                           n.attrs["pad_left"], n.attrs["pad_right"])
            if kind == "fp32":
                lp.scheme = "fp32"
            elif g > 1:
                lp.scheme = depthwise
            elif kind == "wino" and is_winograd_shaped(k, s, d):
                lp.scheme = "wino23"
        else:
            lp = LayerPlan(n.module, "linear", "int8" if quantize_classifier and kind != "fp32" else "fp32",
                           m.in_features, m.out_features)
        if lp.scheme == "wino23":
            lp.act_T, lp.w_T, lp.act_alpha, lp.w_alpha = WINO_ACT_T, WINO_W_T, 1.0, 1.5
        elif lp.scheme == "int8":
            lp.act_T = lp.w_T = INT8_T
        lp.per_channel = weight_per_channel and lp.quantized
        layers[n.module] = lp
    _decide_outputs(graph, layers)
    return QuantPlan(kind, layers, graph, {"quantize_classifier": quantize_classifier, "depthwise": depthwise,
                                           "weight_per_channel": weight_per_channel})


def _decide_outputs(graph: Graph, layers: dict[str, LayerPlan]) -> None:
    cons = graph.consumers()
    byid = graph.by_id()
    for n in graph.nodes:
        if n.op not in ("conv", "linear") or not layers[n.module].quantized:
            continue
        lp = layers[n.module]
        cur, relu = n.id, False
        while True:
            cs = cons[cur]
            if len(cs) != 1 or cur == graph.output:
                break
            c = byid[cs[0]]
            if c.op == "relu" and cur == n.id:
                relu, cur = True, c.id
                continue
            if c.op == "transpose":
                cur = c.id
                continue
            if c.op in ("conv", "linear") and layers[c.module].quantized:
                lp.out, lp.out_consumer, lp.out_relu = "requant", c.module, relu
            break
