"""The checked export: an experiment's model written as an engine model file and verified.

    report = export("exp/x", "exp/x/valid.cer.ave.pth", "exp/x/export/model.rsq", quant="wino",
                    quant_json="exp/x/ptq_wino/quant.json", check_data_dir="data/dev")

Where the quantization comes from (an RSQ experiment's own plan and learned scales, or an FP32
experiment plus a PTQ quant.json) is ``rsqasr.quant.resolve_quantization``'s choice. The bytes are
written to a temporary name beside ``out``, read back with ``read_model``, and, with
``check_data_dir``, the file's integer reference must give on a few utterances exactly the logits
of the in-memory ``IntModel`` and match the quantized PyTorch model (the integer layers' outputs
exactly, the FP32 layers within float tolerance); only then is the file renamed onto ``out``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rsqasr.export.format import TOKEN_TYPES, VERSION
from rsqasr.export.reader import ModelFile, read_model
from rsqasr.export.writer import encode_model
from rsqasr.quant.intref import IntModel, as_float
from rsqasr.quant.source import resolve_quantization
from rsqasr.utils.fileio import atomic_write_bytes, replaceable


class ExportCheckError(ValueError):
    """The written file does not reproduce the quantized model's logits."""


def _token_type(conf: dict) -> str:
    tt = conf.get("token_type", "char")
    if tt not in TOKEN_TYPES:
        raise ValueError(f"token_type {tt!r} is not supported by the engine ({TOKEN_TYPES})")
    return tt


def make_meta(conf: dict, im: IntModel, variant: str, source: dict) -> dict:
    """META: informational for the C reader; ``read_model`` takes the plan kind and options from it."""
    return {"format": "rsqasr-engine-model", "format_version": VERSION, "variant": variant,
            "model": conf["model"], "input_dim": int(conf["input_dim"]), "vocab_size": int(conf["vocab_size"]),
            "token_type": conf.get("token_type", "char"), "plan_kind": im.plan.kind,
            "plan_options": im.plan.options, "frame_shift_ms": 10, "source": source,
            "layers": {n: {"scheme": lp.scheme, "out": lp.out} for n, lp in im.plan.layers.items()}}


def check_model_file(mf: ModelFile, im: IntModel, model, torch_net, utts: list[tuple[str, np.ndarray]],
                     rtol: float = 1e-4) -> dict:
    """Run the file's integer reference on ``utts`` (raw features) and compare with ``im`` (exact)
    and the PyTorch network (integer layers exact, FP32 layers within ``rtol`` of max |logit|).
    Returns a summary; raises ``ExportCheckError`` on a mismatch."""
    import torch

    from rsqasr.ctc_model import greedy_ids

    quantized = any(lp.quantized for lp in im.plan.layers.values())
    fp32_nodes = [n for n in mf.intmodel.plan.graph.nodes
                  if n.op in ("conv", "linear") and not mf.intmodel.plan.layers[n.module].quantized]
    worst, n_greedy = 0.0, 0
    for utt, feats in utts:
        x = torch.from_numpy(np.array(feats, dtype=np.float32))[None]
        with torch.no_grad():
            xn, _ = model.normalize(x.clone(), torch.tensor([x.shape[1]]))
        xn = xn[0].numpy()
        mine = mf.normalize(feats)
        if not np.array_equal(mine, xn):
            raise ExportCheckError(f"{utt}: the file's CMVN differs from the model's GlobalMVN")
        got, vals = mf.intmodel.run(mine, return_values=True)
        want = im.run(xn)
        if got.shape != want.shape or not np.array_equal(got, want):
            raise ExportCheckError(f"{utt}: logits of the file's integer reference differ from the in-memory model")
        # PyTorch: capture the inputs of FP32 layers (the integer layers' outputs)
        caught: dict[str, np.ndarray] = {}
        hooks = [torch_net.get_submodule(n.module).register_forward_pre_hook(
            lambda m, i, name=n.module: caught.__setitem__(name, i[0][0].detach().numpy().copy()))
            for n in fp32_nodes] if quantized else []
        try:
            with torch.no_grad():
                out = torch_net(torch.from_numpy(xn)[None], torch.tensor([xn.shape[0]]))
        finally:
            for h in hooks:
                h.remove()
        ref = (out[0] if isinstance(out, (tuple, list)) else out)[0].numpy()
        if quantized and fp32_nodes:   # the first FP32 layer sees only integer-layer outputs: exact
            first = fp32_nodes[0]
            v = as_float(vals[first.inputs[0]])
            if not np.array_equal(v, caught[first.module]):
                raise ExportCheckError(f"{utt}: input of FP32 layer {first.module} differs from the quantized "
                                       f"PyTorch model's (integer layers must be exact)")
        scale = max(float(np.abs(ref).max()), 1e-30)
        diff = float(np.abs(got - ref).max()) / scale if got.shape == ref.shape else float("inf")
        if diff > rtol:
            raise ExportCheckError(f"{utt}: logits differ from the PyTorch model by {diff:.2e} of max|logit| "
                                   f"(tolerance {rtol:g})")
        worst = max(worst, diff)
        n_greedy += greedy_ids(torch.from_numpy(got)[None], torch.tensor([got.shape[0]])) == \
            greedy_ids(torch.from_numpy(ref)[None], torch.tensor([ref.shape[0]]))
    return {"utterances": len(utts), "max_rel_diff_vs_torch": worst, "greedy_equal_vs_torch": n_greedy}


def check_utterances(data_dir: str | Path, num: int, min_frames: int) -> list[tuple[str, np.ndarray]]:
    """The first ``num`` utterances (sorted keys) of ``data_dir/feats.scp`` with >= min_frames frames."""
    import kaldiio

    from rsqasr.data.datadir import DataDirError, read_kv

    scp = Path(data_dir) / "feats.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp}: not found (--check_data_dir needs feats.scp)")
    out = []
    for utt, entry in sorted(read_kv(scp).items()):
        try:
            m = np.asarray(kaldiio.load_mat(entry), dtype=np.float32)
        except Exception as e:  # noqa: BLE001
            raise DataDirError(f"{scp}: cannot read features of '{utt}': {e}") from e
        if m.ndim == 2 and m.shape[0] >= min_frames:
            out.append((utt, m))
        if len(out) >= num:
            break
    if not out:
        raise DataDirError(f"{scp}: no utterance with at least {min_frames} frames to check the export on")
    return out


def export(exp_dir: str | Path, model_file: str | Path, out: str | Path, quant: str = "none",
           quant_json: str | Path | None = None, check_data_dir: str | Path | None = None,
           check_utts: int = 3, sample_rate: int = 16000) -> dict:
    """Export a trained model to ``out`` and check it (see the module docstring). The file carries
    the recipe's fbank options (``fbank_settings`` with the model's input dimension as mel bins
    and ``sample_rate``), so that rsq-decode can take audio."""
    from rsqasr.features.fbank import fbank_settings
    from rsqasr.inference import load_asr

    exp_dir = Path(exp_dir)
    model, text, conf = load_asr(exp_dir, model_file)
    q = resolve_quantization(model.net, quant, quant_json)
    im = q.intmodel(model.net)           # folds BatchNorm of model.net in place, as the plan saw it
    torch_net = q.torch_net(model.net)   # quantized ones in the "exact" mode: the reference's rounding points
    if len(text.tokens) != conf["vocab_size"]:
        raise ValueError(f"{exp_dir}/tokens.txt has {len(text.tokens)} tokens, the model {conf['vocab_size']}")
    mean = model.normalize.mean.detach().cpu().numpy().astype(np.float32)
    std = model.normalize.std.detach().cpu().numpy().astype(np.float32)
    meta = make_meta(conf, im, quant, {"exp_dir": str(exp_dir), "model": str(model_file),
                                       "quant_json": str(quant_json) if quant_json else None})
    fbank = fbank_settings(num_mel_bins=int(mean.shape[0]), sample_rate=sample_rate)
    blob = encode_model(im, list(text.tokens), _token_type(conf), mean, std, meta, fbank)
    out = Path(out)
    tmp_check = out.with_name(f".{out.name}.check")
    report = {"file": str(out), "bytes": len(blob), "variant": quant}
    try:
        atomic_write_bytes(tmp_check, blob)      # check the bytes as they lie on disk, then publish
        mf = read_model(tmp_check)
        if check_data_dir:
            utts = check_utterances(check_data_dir, check_utts, model.net.min_input_frames)
            report["check"] = check_model_file(mf, im, model, torch_net, utts)
        if replaceable(out):
            tmp_check.replace(out)               # rename: atomic, the old file stays until here
        else:
            atomic_write_bytes(out, blob)        # a device, FIFO or symlink: written through, never renamed over
    finally:
        tmp_check.unlink(missing_ok=True)
    return report
