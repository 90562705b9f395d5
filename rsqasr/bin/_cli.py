"""What every entry point shares: the argument parser style and error-to-exit-code handling."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from rsqasr.utils.log import setup_logging

# Errors that mean "bad input": reported as one clear line, exit status 1, no traceback.
from rsqasr.data.audio import AudioError
from rsqasr.data.datadir import DataDirError

INPUT_ERRORS = (AudioError, DataDirError, FileNotFoundError, ValueError)  # ConfigError, ModelLoadError too
# Library errors that also end a step with one clear line (imported lazily: heavy modules).
LAZY_ERRORS = ("rsqasr.train.trainer.TrainingError", "rsqasr.quant.graph.UnsupportedGraph")


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--verbose", type=int, default=1, help="0: warnings only, 1: info, 2: debug")
    return parser


def run(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser,
        argv: list[str] | None = None) -> None:
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        main(args)
    except Exception as e:  # noqa: BLE001 - only the known kinds are turned into one line
        known = isinstance(e, INPUT_ERRORS) or f"{type(e).__module__}.{type(e).__qualname__}" in LAZY_ERRORS
        if not known or args.verbose >= 2:
            raise
        logging.getLogger(main.__module__).error("%s", e)
        sys.exit(1)
