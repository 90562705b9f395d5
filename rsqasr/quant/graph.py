"""Derive a model's dataflow graph generically, from outside, by tracing one batch-1 forward.

A ``torch.overrides.TorchFunctionMode`` records every torch function call whose arguments
include an activation (a tensor computed from the input features). Calls on constants only
(length arithmetic, padding masks built from ``lens``) are not recorded; an activation multiplied
by a constant is accepted only when that constant is all ones (the padding masks at batch 1) and
then becomes an identity. ``F.conv1d`` / ``F.linear`` calls are attributed to their module through
the identity of the weight parameter, so any model built from ``nn.Conv1d`` / ``nn.Linear``,
ReLU, adds, zero ``F.pad`` and transposes gets a graph without edits here. Anything else raises
``UnsupportedGraph`` naming the op (add a case here when a model needs it).

Why not ``torch.fx``: the models' forward checks lengths with data-dependent Python
(``.nonzero().tolist()``) and builds masks from ``lens``; symbolic tracing fails on that, while a
concrete batch-1 trace sees exactly the ops the engine will run (masks are all ones at batch 1).
The graph is static for these models (no data-dependent control flow on activations); the trace
checks that two different lengths give the same op sequence.

Node kinds (``Node.op``): input, conv, linear, relu, add, pad, transpose, identity.
The graph is JSON-serializable (``to_dict`` / ``from_dict``) and stored inside the plan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


class UnsupportedGraph(RuntimeError):
    pass


@dataclass
class Node:
    id: int
    op: str
    inputs: list[int]
    module: str | None = None          # conv / linear: qualified module name
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    nodes: list[Node]
    output: int

    def consumers(self) -> dict[int, list[int]]:
        cons: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                cons[i].append(n.id)
        return cons

    def by_id(self) -> dict[int, Node]:
        return {n.id: n for n in self.nodes}

    def to_dict(self) -> dict:
        return {"nodes": [asdict(n) for n in self.nodes], "output": self.output}

    @staticmethod
    def from_dict(d: dict) -> "Graph":
        return Graph([Node(**n) for n in d["nodes"]], d["output"])

    def signature(self) -> list[tuple]:
        return [(n.op, tuple(n.inputs), n.module, tuple(sorted((k, str(v)) for k, v in n.attrs.items())
                                                        if n.op != "input" else ())) for n in self.nodes]


_IDENTITY_FUNCS = {"contiguous", "clone", "dropout", "detach"}
_RELU_FUNCS = {"relu", "relu_"}
_ADD_FUNCS = {"add", "__add__", "__radd__", "add_", "__iadd__"}
_MUL_FUNCS = {"mul", "__mul__", "__rmul__"}
_IGNORED = {"size", "dim", "__get__", "shape", "numel", "__len__", "__getitem__x"}


def _tensors(obj) -> list[torch.Tensor]:
    out = []
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            out += _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            out += _tensors(o)
    return out


class _Recorder(TorchFunctionMode):
    def __init__(self, feats: torch.Tensor, params: dict[int, tuple[str, nn.Module]], where: list[str]):
        super().__init__()
        self.params = params
        self.nodes: list[Node] = []
        self.act: dict[int, int] = {id(feats): 0}      # id(tensor) -> node id
        self.keep = [feats]                            # keep tensors alive (ids stay unique)
        self.nodes.append(Node(0, "input", [], attrs={"shape": list(feats.shape)}))
        self.where = where                             # qualified names of the modules being run

    def _layer(self) -> str:
        return f"layer {self.where[-1]!r}: " if self.where and self.where[-1] else ""

    def _node(self, op, inputs, out, module=None, **attrs):
        if not isinstance(out, torch.Tensor):
            raise UnsupportedGraph(f"{op} returned {type(out).__name__}")
        nid = len(self.nodes)
        self.nodes.append(Node(nid, op, inputs, module, attrs))
        self.act[id(out)] = nid
        self.keep.append(out)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        # the mode is off while its handler runs, so an error is raised here once and named once
        try:
            return self._record(func, args, kwargs or {})
        except UnsupportedGraph as e:
            raise UnsupportedGraph(f"{self._layer()}{e} (a layer the integer engine cannot run)") from None

    def _record(self, func, args, kwargs):
        out = func(*args, **kwargs)
        ts = _tensors(args) + _tensors(kwargs)
        acts = [t for t in ts if id(t) in self.act]
        if not acts:
            return out
        name = getattr(func, "__name__", str(func))
        if name in ("size", "dim", "numel", "__get__", "__len__") or not isinstance(out, torch.Tensor):
            return out
        if out.dtype != torch.float32:
            raise UnsupportedGraph(f"op {name} on an activation gives dtype {out.dtype}")
        ins = [self.act[id(t)] for t in acts]
        if name == "conv1d":
            x, w = args[0], args[1]
            if id(w) not in self.params:
                raise UnsupportedGraph("conv1d with a weight that is not a module parameter")
            mname, mod = self.params[id(w)]
            self._node("conv", [self.act[id(x)]], out, mname)
        elif name == "linear":
            x, w = args[0], args[1]
            if id(w) not in self.params:
                raise UnsupportedGraph("linear with a weight that is not a module parameter")
            mname, mod = self.params[id(w)]
            self._node("linear", [self.act[id(x)]], out, mname)
        elif name in _RELU_FUNCS:
            self._node("relu", ins, out)
        elif name in _ADD_FUNCS:
            if len(acts) != 2 or kwargs.get("alpha", 1) != 1:
                raise UnsupportedGraph(f"add must be of two activations, got {len(acts)} ({name})")
            self._node("add", [self.act[id(args[0])], self.act[id(args[1])]], out)
        elif name in _MUL_FUNCS:
            consts = [t for t in ts if id(t) not in self.act]
            if len(acts) != 1 or len(consts) != 1 or not bool((consts[0] == 1).all()):
                raise UnsupportedGraph("mul of an activation is only supported by an all-ones mask "
                                       "(padding masks at batch 1)")
            self._node("identity", ins, out, what="mask")
        elif name == "pad":
            pad = args[1] if len(args) > 1 else kwargs["pad"]
            mode = args[2] if len(args) > 2 else kwargs.get("mode", "constant")
            value = args[3] if len(args) > 3 else kwargs.get("value", None)
            if mode != "constant" or (value not in (None, 0, 0.0)) or len(pad) != 2:
                raise UnsupportedGraph(f"only zero padding of the time axis is supported, got pad={pad} mode={mode}")
            self._node("pad", ins, out, left=int(pad[0]), right=int(pad[1]))
        elif name == "transpose":
            d0 = args[1] if len(args) > 1 else kwargs["dim0"]
            d1 = args[2] if len(args) > 2 else kwargs["dim1"]
            nd = args[0].dim()
            self._node("transpose", ins, out, dims=sorted([d0 % nd, d1 % nd]))
        elif name in _IDENTITY_FUNCS:
            if name == "dropout" and out is not args[0] and not torch.equal(out, args[0]):
                raise UnsupportedGraph("dropout active while tracing (put the model in eval mode)")
            self._node("identity", ins, out, what=name)
        else:
            raise UnsupportedGraph(f"op {name!r} on an activation is not supported by the quantizer's "
                                   f"graph tracer (rsqasr/quant/graph.py)")
        return out


def _track_modules(model: nn.Module, stack: list[str]) -> list:
    """Forward hooks keeping ``stack[-1]`` = the qualified name of the innermost module running,
    so that an unsupported op is reported with the layer it belongs to."""
    def enter(name):
        def hook(module, args) -> None:
            stack.append(name)
        return hook

    def leave(module, args, out) -> None:   # returns None: the output is kept
        stack.pop()

    hooks = []
    for name, mod in model.named_modules():
        hooks.append(mod.register_forward_pre_hook(enter(name)))
        hooks.append(mod.register_forward_hook(leave))
    return hooks


def trace(model: nn.Module, input_dim: int | None = None, frames: int | None = None) -> Graph:
    """Trace ``model(feats (1, T, D), lens)`` and return its graph (output = logits)."""
    input_dim = input_dim or getattr(model, "input_dim")
    if frames is None:
        frames = max(64, 4 * getattr(model, "min_input_frames", 1))
    params = {id(p): (n.rsplit(".", 1)[0], dict(model.named_modules())[n.rsplit(".", 1)[0]])
              for n, p in model.named_parameters() if n.endswith(".weight")}
    was = model.training
    model.eval()
    where: list[str] = []
    hooks = _track_modules(model, where)
    try:
        graphs = []
        for t in (frames, frames + 1):
            p = next(model.parameters())
            feats = torch.randn(1, t, input_dim, dtype=p.dtype, device=p.device)
            lens = torch.tensor([t], device=p.device)
            rec = _Recorder(feats, params, where)
            with torch.no_grad(), rec:
                out = model(feats, lens)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            if id(logits) not in rec.act:
                raise UnsupportedGraph("the model output is not computed from the features")
            graphs.append(Graph(rec.nodes, rec.act[id(logits)]))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    if graphs[0].signature() != graphs[1].signature():
        raise UnsupportedGraph("the traced graph depends on the input length")
    return graphs[0]
