"""Kaldi data directories: ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` (and ``feats.scp``...).

Every file is ``<key> <value>`` per line, sorted by key in byte order (Kaldi's ``LC_ALL=C sort``).
This module reads, writes (atomically), validates and fixes such directories the way Kaldi's
``utils/validate_data_dir.sh`` and ``utils/fix_data_dir.sh`` do.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rsqasr.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

# Per-utterance files that fix_data_dir filters to the common set of utterances.
UTT_FILES = ("wav.scp", "text", "utt2spk", "feats.scp", "utt2num_frames", "utt2dur", "segments")


class DataDirError(ValueError):
    """A data directory file is malformed; the message names the file and line."""


def sort_key(key: str) -> bytes:
    """Kaldi sorts with LC_ALL=C: byte order of the UTF-8 encoding."""
    return key.encode("utf-8")


def read_kv(path: str | os.PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a ``<key> <value>`` file into an ordered dict; duplicate keys, lines without a value
    and bytes that are not UTF-8 are errors that name ``path:line``."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataDirError(f"{path}: cannot open: {e.strerror}") from e
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n") if raw.endswith(b"\r\n") else raw.decode("utf-8").rstrip("\n")
            except UnicodeDecodeError as e:
                raise DataDirError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                   f"{e.start + 1})") from e
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{lineno}: '{key}' has no value")
            if key in out:
                raise DataDirError(f"{path}:{lineno}: duplicate key '{key}'")
            out[key] = value
    return out


def write_kv(path: str | os.PathLike, items: dict[str, str]) -> None:
    """Write a ``<key> <value>`` file sorted in Kaldi order, atomically."""
    with atomic_open(path, "w") as f:
        for k in sorted(items, key=sort_key):
            f.write(f"{k} {items[k]}\n")


def utt2spk_to_spk2utt(utt2spk: dict[str, str]) -> dict[str, str]:
    spk2utts: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=sort_key):
        spk2utts.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in spk2utts.items()}


@dataclass
class ValidationReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    num_utts: int = 0
    num_spks: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_sorted(path: Path, keys: list[str], report: ValidationReport) -> None:
    for i in range(1, len(keys)):
        if sort_key(keys[i - 1]) >= sort_key(keys[i]):
            report.errors.append(f"{path}:{i + 1}: not sorted in C order ('{keys[i - 1]}' then '{keys[i]}'); run utils/fix_data_dir.sh")
            return


def validate_data_dir(data_dir: str | os.PathLike, check_audio: bool = True, check_feats: bool = False,
                      feat_dim: int | None = None) -> ValidationReport:
    """Check a data dir as Kaldi's validate_data_dir.sh does: required files present, sorted,
    no duplicates, utt2spk and spk2utt consistent, the same utterances in every per-utterance
    file, non-empty transcripts, and (optionally) that each wav exists and each feature matrix
    loads with ``feat_dim`` columns."""
    d = Path(data_dir)
    report = ValidationReport()
    if not d.is_dir():
        report.errors.append(f"{d}: no such directory")
        return report
    for name in ("utt2spk", "spk2utt"):
        if not (d / name).is_file():
            report.errors.append(f"{d / name}: missing")
    if not (d / "wav.scp").is_file() and not (d / "feats.scp").is_file():
        report.errors.append(f"{d}: needs wav.scp or feats.scp")
    if report.errors:
        return report

    tables: dict[str, dict[str, str]] = {}
    for name in ("utt2spk", "spk2utt", *[n for n in UTT_FILES if n != "utt2spk"]):
        p = d / name
        if not p.is_file():
            continue
        try:
            tables[name] = read_kv(p)
        except DataDirError as e:
            report.errors.append(str(e))
            continue
        _check_sorted(p, list(tables[name]), report)
    if report.errors:
        return report

    utt2spk = tables["utt2spk"]
    report.num_utts = len(utt2spk)
    if not utt2spk:
        report.errors.append(f"{d / 'utt2spk'}: empty")
        return report
    expected = utt2spk_to_spk2utt(utt2spk)
    report.num_spks = len(expected)
    if tables["spk2utt"] != expected:
        report.errors.append(f"{d / 'spk2utt'}: does not match utt2spk; run utils/fix_data_dir.sh")
    utts = set(utt2spk)
    for name, table in tables.items():
        if name in ("utt2spk", "spk2utt", "segments"):
            continue
        keys = set(table)
        if keys != utts:
            extra, missing = len(keys - utts), len(utts - keys)
            report.errors.append(f"{d / name}: {missing} utterances of utt2spk missing, {extra} not in utt2spk "
                                 f"(e.g. '{sorted(keys ^ utts)[0]}'); run utils/fix_data_dir.sh")
    if check_audio and "wav.scp" in tables:
        wav_scp = d / "wav.scp"
        for lineno, (utt, entry) in enumerate(tables["wav.scp"].items(), 1):
            if entry.endswith("|"):
                continue  # a command; checked when it runs
            if not os.path.isfile(entry):
                report.errors.append(f"{wav_scp}:{lineno}: audio of '{utt}' not found: {entry}")
            elif not os.access(entry, os.R_OK):
                report.errors.append(f"{wav_scp}:{lineno}: audio of '{utt}' not readable: {entry}")
    if check_feats and "feats.scp" in tables:
        import kaldiio

        feats_scp = d / "feats.scp"
        for lineno, (utt, entry) in enumerate(tables["feats.scp"].items(), 1):
            try:
                mat = kaldiio.load_mat(entry)
            except Exception as e:  # noqa: BLE001 - report any reader failure with its location
                report.errors.append(f"{feats_scp}:{lineno}: cannot read features of '{utt}': {e}")
                continue
            if mat.ndim != 2 or mat.shape[0] == 0 or (feat_dim is not None and mat.shape[1] != feat_dim):
                report.errors.append(f"{feats_scp}:{lineno}: features of '{utt}' have shape {mat.shape}, "
                                     f"expected (frames>0, {feat_dim})")
    return report


def fix_data_dir(data_dir: str | os.PathLike) -> dict[str, int]:
    """Keep only utterances present in every per-utterance file, sort every file, rebuild
    spk2utt; like Kaldi's fix_data_dir.sh. The originals are copied to ``.backup/`` first.

    Returns the number of utterances dropped per file (those present there but not everywhere).
    """
    d = Path(data_dir)
    if not (d / "utt2spk").is_file():
        raise DataDirError(f"{d / 'utt2spk'}: missing")
    present = [n for n in UTT_FILES if (d / n).is_file() and n != "segments"]
    tables = {n: read_kv(d / n) for n in present}
    common = set.intersection(*(set(t) for t in tables.values()))
    backup = d / ".backup"
    backup.mkdir(exist_ok=True)
    dropped: dict[str, int] = {}
    for name, table in tables.items():
        shutil.copy2(d / name, backup / name)
        n_drop = len(table) - len(common)
        dropped[name] = n_drop
        if n_drop:
            logger.warning("%s: dropping %d of %d utterances not present in every file", d / name, n_drop, len(table))
        write_kv(d / name, {k: v for k, v in table.items() if k in common})
    if (d / "spk2utt").is_file():
        shutil.copy2(d / "spk2utt", backup / "spk2utt")
    write_kv(d / "spk2utt", utt2spk_to_spk2utt({k: v for k, v in tables["utt2spk"].items() if k in common}))
    logger.info("%s: %d utterances kept", d, len(common))
    return dropped
