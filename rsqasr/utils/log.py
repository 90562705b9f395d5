"""One logging format for every entry point: time, level, file and line (as ESPnet and icefall)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s (%(filename)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(verbose: int = 1) -> None:
    """Configure the root logger on stderr; ``verbose`` 0 = warnings, 1 = info, 2+ = debug."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)


def progress_enabled() -> bool:
    """tqdm bars only when stderr is a terminal (quiet in logs and CI)."""
    return sys.stderr.isatty()
