"""Error rates: an aligner that scores like NIST sclite (the scorer ESPnet uses), CER, and the
pinyin syllable error rates with and without tones for Mandarin.

sclite aligns by dynamic programming with costs insertion 3, deletion 3, substitution 4,
correct 0 and reports the error counts of that alignment; ``align`` uses the same costs, so
the totals match sclite's (a test runs both). On ties it prefers, like sclite's traceback,
correct/substitution, then deletion, then insertion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

INS, DEL, SUB = 3, 3, 4


@dataclass
class Counts:
    ref: int = 0
    cor: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def rate(self) -> float:
        return self.errors / self.ref if self.ref else 0.0

    def __iadd__(self, o: "Counts") -> "Counts":
        self.ref += o.ref; self.cor += o.cor; self.sub += o.sub; self.dele += o.dele; self.ins += o.ins
        return self


@dataclass
class Alignment:
    pairs: list[tuple[str | None, str | None]] = field(default_factory=list)  # (ref, hyp), None = gap
    counts: Counts = field(default_factory=Counts)


def align(ref: list[str], hyp: list[str]) -> Alignment:
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1) * DEL
    cost[0, :] = np.arange(m + 1) * INS
    for i in range(1, n + 1):
        r = ref[i - 1]
        for j in range(1, m + 1):
            diag = cost[i - 1, j - 1] + (0 if r == hyp[j - 1] else SUB)
            cost[i, j] = min(diag, cost[i - 1, j] + DEL, cost[i, j - 1] + INS)
    a = Alignment()
    i, j = n, m
    pairs = []
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (0 if ref[i - 1] == hyp[j - 1] else SUB):
            pairs.append((ref[i - 1], hyp[j - 1]))
            if ref[i - 1] == hyp[j - 1]:
                a.counts.cor += 1
            else:
                a.counts.sub += 1
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + DEL:
            pairs.append((ref[i - 1], None))
            a.counts.dele += 1
            i -= 1
        else:
            pairs.append((None, hyp[j - 1]))
            a.counts.ins += 1
            j -= 1
    a.pairs = pairs[::-1]
    a.counts.ref = n
    return a


def pinyin_syllables(text: str, tones: bool) -> list[str]:
    """Toned (``ni3``, neutral tone 5) or toneless syllables of Chinese text, one per character;
    characters without a reading are kept as themselves."""
    from pypinyin import Style, lazy_pinyin

    style = Style.TONE3 if tones else Style.NORMAL
    return lazy_pinyin(text, style=style, neutral_tone_with_five=True, errors=lambda s: list(s))


def find_sclite() -> list[str] | None:
    """The sclite command (Debian's sctk puts it in /usr/lib/sctk/bin), or None."""
    import shutil

    if shutil.which("sclite"):
        return ["sclite"]
    if shutil.which("/usr/lib/sctk/bin/sclite"):
        return ["/usr/lib/sctk/bin/sclite"]
    if shutil.which("sctk"):
        return ["sctk", "sclite"]
    return None


def _trn_id(utt: str) -> str:
    # sclite's "rm" id style is (speaker-utterance); the speaker is everything before the first '-'
    return f"(spk-{utt})"


def sclite_counts(refs: dict[str, list[str]], hyps: dict[str, list[str]], work_dir, sclite: list[str]) -> Counts:
    """Run sclite on token lists (words = our tokens) and return its total counts."""
    import subprocess
    from pathlib import Path

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("ref.trn", refs), ("hyp.trn", hyps)):
        with open(work_dir / name, "w", encoding="utf-8") as f:
            for utt in refs:
                f.write(" ".join(table.get(utt, [])) + f" {_trn_id(utt)}\n")
    proc = subprocess.run([*sclite, "-r", str(work_dir / "ref.trn"), "trn", "-h", str(work_dir / "hyp.trn"), "trn",
                           "-i", "rm", "-e", "utf-8", "-o", "rsum", "pralign", "-O", str(work_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rsum = work_dir / "hyp.trn.raw"
    if proc.returncode != 0 or not rsum.is_file():
        raise RuntimeError(f"sclite failed (exit {proc.returncode}): {proc.stdout[-2000:]}")
    for line in rsum.read_text(encoding="utf-8", errors="replace").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[1].startswith("Sum"):
            snt_wrd, nums = cells[2].split(), cells[3].split()
            cor, sub, dele, ins = (int(x) for x in nums[:4])
            return Counts(ref=int(snt_wrd[1]), cor=cor, sub=sub, dele=dele, ins=ins)
    raise RuntimeError(f"no Sum line in {rsum}")


def _by_group(groups, *columns) -> list[np.ndarray]:
    """Sum each column over the utterances of a group (groups=None: every utterance its own)."""
    cols = [np.asarray(c, float) for c in columns]
    if groups is None:
        return cols
    if len(groups) != len(cols[0]):
        raise ValueError(f"groups has {len(groups)} entries for {len(cols[0])} utterances")
    _, inv = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return [np.bincount(inv, weights=c) for c in cols]


def bootstrap_ci(ref_lens, errors, n: int = 1000, seed: int = 0, level: float = 0.95,
                 groups=None) -> tuple[float, float]:
    """Percentile bootstrap CI of the corpus error rate, resampling utterances, or with ``groups``
    (one label per utterance, e.g. its sentence) resampling whole groups: utterances of one
    sentence by several speakers are not independent, so the sentence is the unit to resample."""
    ref_lens, errors = _by_group(groups, ref_lens, errors)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ref_lens), size=(n, len(ref_lens)))
    rates = errors[idx].sum(1) / np.maximum(ref_lens[idx].sum(1), 1)
    a = (1 - level) / 2
    return float(np.quantile(rates, a)), float(np.quantile(rates, 1 - a))


def paired_bootstrap(ref_lens, errors_a, errors_b, n: int = 1000, seed: int = 0,
                     level: float = 0.95, groups=None) -> tuple[float, float, float]:
    """CI of rate(b) - rate(a) over the same utterances (or ``groups``, see :func:`bootstrap_ci`)
    resampled together, and the fraction of resamples where b is not better than a (small: b is
    significantly better)."""
    ref_lens, ea, eb = _by_group(groups, ref_lens, errors_a, errors_b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ref_lens), size=(n, len(ref_lens)))
    tot = np.maximum(ref_lens[idx].sum(1), 1)
    diff = (eb[idx].sum(1) - ea[idx].sum(1)) / tot
    a = (1 - level) / 2
    return float(np.quantile(diff, a)), float(np.quantile(diff, 1 - a)), float((diff >= 0).mean())
