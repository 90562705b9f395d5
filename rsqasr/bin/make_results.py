"""Collect the scored decodes of a recipe's experiments into its RESULTS.md.

Every ``<exp_root>/<exp>/decode_<set>_<tag>/result.json`` (written by rsqasr.bin.score) with
its ``decode_info.json`` becomes part of one row per (experiment, decoding); the table is
written between the markers ``<!-- results:begin -->`` and ``<!-- results:end -->`` of the
RESULTS.md (added at the end if absent), so hand-written text around it is kept.

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
from rsqasr.utils.fileio import atomic_write_text

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def count_params(model_file: Path) -> int | None:
    try:
        state = torch.load(model_file, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - a missing model only leaves the column empty
        return None
    if "model" in state and "format" in state:
        state = state["model"]
    return sum(v.numel() for k, v in state.items() if k.startswith("net.") and v.is_floating_point())


def collect(exp_root: Path) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for res in sorted(exp_root.glob("*/decode_*/result.json")):
        d = res.parent
        info_path = d / "decode_info.json"
        if not info_path.is_file():
            continue
        info = json.loads(info_path.read_text())
        result = json.loads(res.read_text())
        exp = d.parent
        key = (exp.name, info["tag"])
        row = rows.setdefault(key, {"exp": exp.name, "tag": info["tag"], "decode": info["decode"], "sets": {}})
        conf_path = exp / "config.yaml"
        if conf_path.is_file() and "kind" not in row:
            conf = yaml.safe_load(conf_path.read_text(encoding="utf-8"))
            row["kind"] = conf["model"]["kind"]
            row["params"] = count_params(Path(info["model_file"]))
        row["sets"][info["set"]] = result
    return list(rows.values())


def table(rows: list[dict]) -> str:
    sets = sorted({s for r in rows for s in r["sets"]}, key=lambda s: (s != "dev", s != "test", s))
    head = ["experiment", "model", "params (M)", "decoding"]
    for s in sets:
        head += [f"{s} CER %", f"{s} pinyin SER % (tone / no tone)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["exp"], r.get("kind", "?"), f"{r['params'] / 1e6:.2f}" if r.get("params") else "?", r["decode"]]
        for s in sets:
            x = r["sets"].get(s)
            if x is None:
                cells += ["", ""]
                continue
            cells.append(f"{100 * x['cer']:.2f}")
            if "pinyin_ser_tone" in x:
                cells.append(f"{100 * x['pinyin_ser_tone']:.2f} / {100 * x['pinyin_ser_notone']:.2f}")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    utts = {s: next(r["sets"][s]["utts"] for r in rows if s in r["sets"]) for s in sets}
    lines.append("")
    lines.append("Test sets: " + ", ".join(f"{s} {n} utterances" for s, n in utts.items()) +
                 ". CER from rsqasr.bin.score (sclite's alignment costs).")
    return "\n".join(lines)


def main(args) -> None:
    rows = collect(Path(args.exp_root))
    path = Path(args.results)
    old = path.read_text(encoding="utf-8") if path.is_file() else f"# Results\n"
    body = f"{BEGIN}\n{table(rows) if rows else 'No scored decodes yet.'}\n{END}"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + body + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + body + "\n"
    atomic_write_text(path, new)
    logging.info("%s: %d result rows", path, len(rows))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_root", default="exp")
    p.add_argument("--results", default="RESULTS.md")
    return p


if __name__ == "__main__":
    run(main, get_parser())
