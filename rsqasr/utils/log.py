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


class Progress:
    """A tqdm bar on a terminal; otherwise (logs, CI, ``make demo`` piped) one log line at every
    ``every`` fraction of ``total``, with the elapsed time and an estimate of what remains."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 0.1,
                 logger: logging.Logger | None = None):
        import time

        from tqdm import tqdm

        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self._time = time.monotonic
        self.t0 = self._time()
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled())
        self.step = max(1, int(round(total * every)))
        self.log = logger or logging.getLogger(desc)

    def update(self, k: int = 1) -> None:
        self.bar.update(k)
        before, self.n = self.n, self.n + k
        if self.bar.disable and (self.n // self.step > before // self.step or self.n == self.total):
            dt = self._time() - self.t0
            eta = dt / self.n * (self.total - self.n) if self.n else 0.0
            self.log.info("%s: %d/%d %s, %.0f s elapsed, about %.0f s to go", self.desc, self.n, self.total,
                          self.unit, dt, eta, stacklevel=2)   # the caller's file and line in the log

    def close(self) -> None:
        self.bar.close()
