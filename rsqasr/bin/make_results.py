"""Collect the scored decodes of a recipe's experiments into its RESULTS.md, as the paper's
Table 2: per model, the rows FP32, INT8 GEMM PTQ, INT8 Wino PTQ, INT8 Wino RSQ (beta=0, the
paper's RSQ-dagger) and INT8 Wino RSQ, with CER on dev and test, 95% bootstrap confidence
intervals over sentences, and the paired-bootstrap difference to the FP32 row.

Reads every ``<exp_root>/**/decode_*/result.json`` with its ``decode_info.json`` and
``per_utt.tsv`` (written by the recipe's decode stages and rsqasr.bin.score). The table goes
between ``<!-- results:begin -->`` and ``<!-- results:end -->`` (added at the end of the file
if absent), so hand-written text around it is kept.

Usage:
    python -m rsqasr.bin.make_results --exp_root exp --results RESULTS.md
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import yaml

from rsqasr.bin._cli import make_parser, run
from rsqasr.scoring import paired_bootstrap
from rsqasr.utils.fileio import atomic_write_text

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# (quantization, method) in the paper's row order; RSQ-dagger is RSQ without the noise loss (beta=0)
ROW_ORDER = [("FP32", "-"), ("INT8 GEMM", "PTQ"), ("INT8 Wino", "PTQ"), ("INT8 Wino", "RSQ† (beta=0)"),
             ("INT8 Wino", "RSQ")]
# (a, b) pairs whose paired difference a - b the paper's claims are about
COMPARISONS = [(ROW_ORDER[4], ROW_ORDER[2], "RSQ vs PTQ (Winograd)"),
               (ROW_ORDER[4], ROW_ORDER[3], "noise loss: RSQ vs RSQ† (beta=0)"),
               (ROW_ORDER[4], ROW_ORDER[0], "RSQ vs FP32"),
               (ROW_ORDER[2], ROW_ORDER[1], "Winograd PTQ vs GEMM PTQ")]


def count_params(model_file: Path) -> int | None:
    try:
        state = torch.load(model_file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a missing model only leaves the column empty
        return None
    if "model" in state and "format" in state:
        state = state["model"]
    return sum(v.numel() for k, v in state.items()
               if k.startswith("net.") and v.is_floating_point() and "quant" not in k)


def per_utt(d: Path) -> dict[str, tuple[int, int, str]]:
    """{utt: (reference characters, errors, sentence)}; a per_utt.tsv without the sentence column
    (older scoring) makes every utterance its own group."""
    lines = (d / "per_utt.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out = {}
    for line in lines:
        f = line.split("\t")
        out[f[0]] = (int(f[1]), int(f[2]), f[3] if len(f) > 3 else f[0])
    return out


def collect(exp_root: Path) -> dict[str, dict]:
    """{base experiment: {"kind", "params", "rows": {(quant, method, decode): {set: entry}}}}"""
    out: dict[str, dict] = {}
    for res in sorted(exp_root.glob("**/decode_*/result.json")):
        d = res.parent
        info_path = d / "decode_info.json"
        if not info_path.is_file() or not (d / "per_utt.tsv").is_file():
            continue
        info = json.loads(info_path.read_text())
        base = out.setdefault(info["base"], {"rows": {}})
        conf_path = exp_root / info["base"] / "config.yaml"
        e2e = exp_root / info["base"] / "export" / "e2e_latency.json"
        if e2e.is_file():
            base["e2e"] = json.loads(e2e.read_text(encoding="utf-8"))
        if "kind" not in base and conf_path.is_file():
            base["kind"] = yaml.safe_load(conf_path.read_text(encoding="utf-8"))["model"]["kind"]
            base["params"] = count_params(Path(info["model_file"]))
        row = base["rows"].setdefault((info["quant"], info["method"], info["decode"]), {})
        row[info["set"]] = {"result": json.loads(res.read_text()), "per_utt": per_utt(d), "dir": str(d)}
    return out


def fmt_cer(entry: dict) -> str:
    r = entry["result"]
    lo, hi = r["cer_ci95"]
    return f"{100 * r['cer']:.2f} [{100 * lo:.2f}, {100 * hi:.2f}]"


def fmt_delta(entry: dict, ref: dict | None) -> str:
    if ref is None or entry is ref:
        return ""
    utts = sorted(set(entry["per_utt"]) & set(ref["per_utt"]))
    lens = [ref["per_utt"][u][0] for u in utts]
    lo, hi, p = paired_bootstrap(lens, [ref["per_utt"][u][1] for u in utts], [entry["per_utt"][u][1] for u in utts],
                                 groups=[ref["per_utt"][u][2] for u in utts])
    d = entry["result"]["cer"] - ref["result"]["cer"]
    sig = "yes" if (lo > 0 or hi < 0) else "no"
    return f"{100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] {sig}"


def table(name: str, base: dict) -> str:
    sets = sorted({s for row in base["rows"].values() for s in row}, key=lambda s: (s != "dev", s != "test", s))
    params = f", {base['params'] / 1e6:.2f} M parameters" if base.get("params") else ""
    lines = [f"### {name} ({base.get('kind', '?')}{params})", ""]
    head = ["quantization", "method", "decoding"]
    for s in sets:
        head += [f"{s} CER % [95% CI]", f"{s} Δ vs FP32 [95% CI] sig."]
    head.append("test pinyin SER % (tone / no tone)")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    def order(k):
        return (ROW_ORDER.index(k[:2]) if k[:2] in ROW_ORDER else len(ROW_ORDER), k)

    for quant, method, decode in sorted(base["rows"], key=order):
        row = base["rows"][(quant, method, decode)]
        ref = base["rows"].get(("FP32", "-", decode))
        cells = [quant, method, decode]
        for s in sets:
            e = row.get(s)
            cells += [fmt_cer(e) if e else "", fmt_delta(e, ref.get(s) if ref else None) if e else ""]
        t = row.get("test", {}).get("result", {})
        cells.append(f"{100 * t['pinyin_ser_tone']:.2f} / {100 * t['pinyin_ser_notone']:.2f}" if "pinyin_ser_tone" in t else "")
        lines.append("| " + " | ".join(cells) + " |")
    decodes = sorted({k[2] for k in base["rows"]})
    comp = []
    for a, b, what in COMPARISONS:
        for decode in decodes:
            ra, rb = base["rows"].get((*a, decode)), base["rows"].get((*b, decode))
            if not (ra and rb):
                continue
            cells = [f"{s} {fmt_delta(ra[s], rb[s])}" for s in sets if s in ra and s in rb]
            comp.append(f"- {what} ({decode}): " + "; ".join(cells))
    if comp:
        lines += ["", "Paired differences (CER points, a - b [95% CI], significant?):", ""] + comp
    agree = []
    for (quant, method, decode), row in sorted(base["rows"].items(), key=lambda kv: order(kv[0])):
        for s in sets:
            for f in sorted(Path(row[s]["dir"]).glob("*agreement.json")) if s in row else []:
                g = json.loads(f.read_text(encoding="utf-8"))
                agree.append(f"| {quant} | {method} | {decode} | {s} | {g.get('label', '')} | {100 * g['cer_a']:.2f} | "
                             f"{100 * g['cer_b']:.2f} | {g['differ']} of {g['utts']} |")
    if agree:
        lines += ["", "Engines compared on the same model and utterances (a: this row's decode, b: the other):", "",
                  "| quantization | method | decoding | set | a vs b | CER % a | CER % b | hypotheses differing |",
                  "|---|---|---|---|---|---|---|---|"] + agree
    feats = []
    for (quant, method, decode), row in sorted(base["rows"].items(), key=lambda kv: order(kv[0])):
        for s in sets:
            f = Path(row[s]["dir"]) / "wav_features.json" if s in row else None
            if f is not None and f.is_file():
                g = json.loads(f.read_text(encoding="utf-8"))
                feats.append(f"| {quant} | {method} | {decode} | {s} | {g['utts']} | {g['frames']} | "
                             f"{g['max_abs_diff']:.2e} | {g['mean_abs_diff']:.2e} | {g['frames_over_1e-3']} |")
    if feats:
        lines += ["", "Audio in: rsq-decode's own fbank from wav.scp (the model file's FBNK options) against stage 2's "
                  "features (kaldi-native-fbank), log-mel values:", "",
                  "| quantization | method | decoding | set | utterances | frames | max abs diff | mean abs diff | "
                  "frames with a diff > 1e-3 |", "|---|---|---|---|---|---|---|---|---|"] + feats
    lat = {}
    for (quant, method, _), row in base["rows"].items():
        for e in row.values():
            f = Path(e["dir"]).parent / "export" / "latency.json"
            if f.is_file():
                lat[(quant, method)] = json.loads(f.read_text(encoding="utf-8"))
    if lat:
        gemm = lat.get(ROW_ORDER[1], {})
        lines += ["", "Latency of rsq-decode at 600 input frames, batch 1 (host: this machine, median of 3 runs of 20 "
                  "utterances; ARMv7: executed guest instructions under qemu-arm, one utterance, repeatable to 0.1%):", "",
                  "| quantization | method | host ms, 1 thread | host ms, 2 threads | ARMv7 M instructions | "
                  "INT8 GEMM / this (instructions) |", "|---|---|---|---|---|---|"]
        for key in sorted(lat, key=lambda k: order((*k, ""))):
            L = lat[key]
            ms = [f"{L['host_ms'][t]:.2f}" if t in L.get("host_ms", {}) else "" for t in ("1", "2")]
            ins = L.get("armv7_instructions")
            ratio = f"{gemm['armv7_instructions'] / ins:.3f}x" if ins and gemm.get("armv7_instructions") else ""
            ins_cell = f"{ins / 1e6:.2f}" if ins else ""
            lines.append(f"| {key[0]} | {key[1]} | {ms[0]} | {ms[1]} | {ins_cell} | {ratio} |")
        e2e = base.get("e2e", {})
        for key, label in (("torch_fp32_ms", "PyTorch FP32 (eager, same model)"),
                           ("ort_fp32_ms", "onnxruntime FP32 (same model, ONNX export)")):
            if e2e.get(key):
                ms = [f"{e2e[key][t]:.2f}" if t in e2e[key] else "" for t in ("1", "2")]
                lines.append(f"| {label} | - | {ms[0]} | {ms[1]} | | |")
        lines += kind_breakdown(lat, order)
        lines += stream_table(lat, order)
    n = {s: next(len(r[s]["per_utt"]) for r in base["rows"].values() if s in r) for s in sets}
    lines += ["", "Sets: " + ", ".join(f"{s} {k} utterances" for s, k in n.items()) + ". CI: percentile "
              "bootstrap over sentences (utterances of the same text resampled together; 1,000 resamples); "
              "Δ: paired bootstrap against the FP32 row with the same decoding, 'sig.' = its 95% CI excludes 0. "
              "Quantized rows are decoded by the bit-exact integer reference (rsqasr.quant.intref)."]
    return "\n".join(lines)


KIND_LABELS = (("front", "front (strided convs)"), ("conv_k3", "k>=3 convs (Winograd candidates)"),
               ("pointwise", "1x1 convs"), ("depthwise", "depthwise memory"), ("classifier", "classifier"),
               ("glue", "elementwise + conversions"))


def stream_table(lat: dict, order) -> list[str]:
    """Streaming (rsq-decode --stream; rsqasr.bin.engine_latency --stream_chunks): the lookahead, and
    per chunk size the cost per second of audio against the whole-utterance decode."""
    keys = [k for k in sorted(lat, key=lambda k: order((*k, ""))) if (lat[k].get("stream") or {}).get("chunks")]
    if not keys:
        return []
    chunks = sorted({int(c) for k in keys for c in lat[k]["stream"]["chunks"]})
    head = ["quantization", "method", "lookahead ms", "whole utterance"] + [f"chunks of {c * 10} ms" for c in chunks]
    out = ["", "Streaming (rsq-decode --stream, same output bit for bit; the 600-frame utterance fed in chunks): "
           "the model's lookahead, and per second of audio host ms at 1 thread / ARMv7 M instructions (x the "
           "whole-utterance decode's):", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        L = lat[key]
        whole_ms, whole_ins = L["host_ms"].get("1"), L.get("armv7_instructions")
        cells = [key[0], key[1], str(10 * L["stream"]["lookahead_frames"])]
        cells.append(f"{whole_ms / 6:.3f}" + (f" / {whole_ins / 6e6:.2f}" if whole_ins else ""))
        for c in chunks:
            e = L["stream"]["chunks"].get(str(c))
            if not e:
                cells.append("")
                continue
            cell = f"{e['host_ms'] / 6:.3f}"
            if e.get("armv7_instructions") and whole_ins:
                cell += f" / {e['armv7_instructions'] / 6e6:.2f} ({e['armv7_instructions'] / whole_ins:.3f}x)"
            cells.append(cell)
        out.append("| " + " | ".join(cells) + " |")
    return out


def kind_breakdown(lat: dict, order) -> list[str]:
    """Where the time goes: per layer kind, host ms (1 thread) and ARMv7 M instructions
    (rsq-decode --profile; rsqasr.bin.engine_latency); rows sorted by ``order``, table()'s row key."""
    keys = [k for k in sorted(lat, key=lambda k: order((*k, ""))) if lat[k].get("host_profile_ms")]
    if not keys:
        return []
    out = ["", "Where the time goes, per layer kind (rsq-decode --profile, same 600-frame utterance; cells: host ms "
           "at 1 thread / ARMv7 M instructions (share of the network's instructions)):", "",
           "| quantization | method | " + " | ".join(lab for _, lab in KIND_LABELS) + " |",
           "|---|---|" + "---|" * len(KIND_LABELS)]
    for key in keys:
        L = lat[key]
        hp, ap = L["host_profile_ms"], L.get("armv7_profile") or {}
        net = sum(ap.get(k, 0) for k, _ in KIND_LABELS)
        cells = []
        for k, _ in KIND_LABELS:
            c = f"{hp[k]:.2f}" if k in hp else ""
            if k in ap and net:
                c += f" / {ap[k] / 1e6:.1f} ({100 * ap[k] / net:.0f}%)"
            cells.append(c)
        out.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return out


def main(args) -> None:
    bases = collect(Path(args.exp_root))
    path = Path(args.results)
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Results\n"
    body = "\n\n".join(table(n, b) for n, b in sorted(bases.items())) if bases else "No scored decodes yet."
    body = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + body + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + body + "\n"
    atomic_write_text(path, new)
    logging.info("%s: tables for %d models", path, len(bases))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_root", default="exp")
    p.add_argument("--results", default="RESULTS.md")
    return p


if __name__ == "__main__":
    run(main, get_parser())
