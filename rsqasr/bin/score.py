"""Score hypotheses against references: CER (character error rate), and for Mandarin the
pinyin syllable error rate with and without tones (what the acoustic model heard, apart from
homophone choice). Uses the built-in aligner (sclite's costs) and, when sctk's sclite is
installed, runs sclite too and reports both (they agree; a mismatch is logged as an error).

Writes to --dir: result.txt (summary), result.json (numbers, with a 95% bootstrap CI of the
CER over sentences: utterances with the same reference text are resampled together), align.txt (per-utterance alignments), per_utt.tsv (errors per utterance,
for paired comparisons) and sclite's own outputs in sclite/.

Usage:
    python -m rsqasr.bin.score --ref data/test/text --hyp exp/x/decode_test/hyp.txt --dir exp/x/decode_test
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import DataDirError, read_kv
from rsqasr.scoring import Counts, align, bootstrap_ci, find_sclite, pinyin_syllables, sclite_counts
from rsqasr.utils.fileio import atomic_open, atomic_write_text


def chars(text: str) -> list[str]:
    return [c for c in text if not c.isspace()]


def main(args) -> None:
    refs = read_kv(args.ref)
    hyps = read_kv(args.hyp, allow_empty_value=True)
    for path, d in ((args.ref, refs), (args.hyp, hyps)):
        if not d:
            raise DataDirError(f"{path}: empty: nothing to score (the decoders write one line per utterance)")
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise DataDirError(f"{args.hyp}: {len(extra)} utterances not in {args.ref} (e.g. {extra[0]})")
    missing = [u for u in refs if u not in hyps]
    if missing:
        logging.warning("%s: no hypothesis for %d utterances (e.g. %s); scored as empty", args.hyp, len(missing), missing[0])
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    totals = {"cer": Counts(), "pinyin_tone": Counts(), "pinyin_notone": Counts()}
    ref_tok, hyp_tok = {}, {}
    sent_err = 0
    per_utt: list[tuple[str, int, int, str]] = []
    with atomic_open(out / "align.txt") as f:
        for utt, ref in refs.items():
            hyp = hyps.get(utt, "")
            r, h = chars(ref), chars(hyp)
            ref_tok[utt], hyp_tok[utt] = r, h
            a = align(r, h)
            totals["cer"] += a.counts
            sent_err += a.counts.errors > 0
            per_utt.append((utt, a.counts.ref, a.counts.errors, "".join(r)))
            if args.pinyin:
                totals["pinyin_tone"] += align(pinyin_syllables(ref, True), pinyin_syllables(hyp, True)).counts
                totals["pinyin_notone"] += align(pinyin_syllables(ref, False), pinyin_syllables(hyp, False)).counts
            f.write(f"id: {utt}\nScores: (#C #S #D #I) {a.counts.cor} {a.counts.sub} {a.counts.dele} {a.counts.ins}\n")
            f.write("REF: " + " ".join(x if x is not None else "*" for x, _ in a.pairs) + "\n")
            f.write("HYP: " + " ".join(y if y is not None else "*" for _, y in a.pairs) + "\n\n")
    c = totals["cer"]
    with atomic_open(out / "per_utt.tsv") as f:
        f.write("utt\tref_chars\terrors\tsentence\n")
        f.writelines(f"{u}\t{n}\t{e}\t{t}\n" for u, n, e, t in per_utt)
    ci = bootstrap_ci([x[1] for x in per_utt], [x[2] for x in per_utt], groups=[x[3] for x in per_utt])
    result = {"utts": len(refs), "sentences": len({x[3] for x in per_utt}), "ref_chars": c.ref, "cer": c.rate,
              "cer_ci95": list(ci), "cor": c.cor,
              "sub": c.sub, "del": c.dele, "ins": c.ins, "sentence_error_rate": sent_err / max(len(refs), 1)}
    if args.pinyin:
        result["pinyin_ser_tone"] = totals["pinyin_tone"].rate
        result["pinyin_ser_notone"] = totals["pinyin_notone"].rate
    sclite = find_sclite() if args.sclite != "false" else None
    if args.sclite == "true" and sclite is None:
        raise FileNotFoundError("sclite not found (apt-get install sctk)")
    if sclite:
        s = sclite_counts(ref_tok, hyp_tok, out / "sclite", sclite)
        result["sclite_cer"] = s.rate
        if (s.ref, s.errors) != (c.ref, c.errors):
            logging.error("sclite and the built-in scorer disagree: sclite %d errors / %d, built-in %d / %d",
                          s.errors, s.ref, c.errors, c.ref)
    lines = [f"# {args.hyp} vs {args.ref}",
             f"utterances {len(refs)}  characters {c.ref}",
             f"CER {100 * c.rate:.2f}%  (Corr {c.cor}  Sub {c.sub}  Del {c.dele}  Ins {c.ins}  Err {c.errors}; "
             f"95% bootstrap CI over {result['sentences']} sentences {100 * ci[0]:.2f}-{100 * ci[1]:.2f})",
             f"sentence error rate {100 * result['sentence_error_rate']:.2f}%"]
    if args.pinyin:
        lines.append(f"pinyin syllable error rate: with tones {100 * result['pinyin_ser_tone']:.2f}%, "
                     f"without tones {100 * result['pinyin_ser_notone']:.2f}%")
    if sclite:
        lines.append(f"sclite CER {100 * result['sclite_cer']:.2f}%")
    atomic_write_text(out / "result.txt", "\n".join(lines) + "\n")
    atomic_write_text(out / "result.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    logging.info("%s", " | ".join(lines[1:]))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--ref", required=True, help="reference Kaldi text")
    p.add_argument("--hyp", required=True, help="hypothesis Kaldi text")
    p.add_argument("--dir", required=True, help="output dir")
    p.add_argument("--pinyin", type=lambda v: v == "true", default=True, help="also pinyin syllable error rates")
    p.add_argument("--sclite", choices=["auto", "true", "false"], default="auto", help="also score with sclite")
    return p


if __name__ == "__main__":
    run(main, get_parser())
