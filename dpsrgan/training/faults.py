"""TEST-ONLY fault injection for the recovery tests: kill a worker, or poison a loss with NaN.

Never set these in real runs. Each fault fires once: it leaves a marker file next to the path
given, so the retried worker (or the restored loop) runs on normally.

- ``DPSRGAN_TEST_KILL_RANK1_AT_STEP="N:/tmp/marker"``: the rank-1 worker calls ``os._exit(1)``
  before global step N (after a pause longer than Ray Train's 2 s health-check interval, so the
  checkpoint reported just before is registered and the retry resumes from it).
- ``DPSRGAN_TEST_NAN_AT_STEP="N:/tmp/marker"``: rank 0 feeds NaN inputs at global step N, which
  poisons the weights of every rank (the instability guard must restore the last good state).

The driver reads the variables (:meth:`FaultInjection.from_env`) and ships them inside the loop
config, so they reach workers on any cluster without environment propagation.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

KILL_ENV = "DPSRGAN_TEST_KILL_RANK1_AT_STEP"
NAN_ENV = "DPSRGAN_TEST_NAN_AT_STEP"
REGISTRATION_PAUSE_S = 4.0


def _parse(name: str) -> tuple[int, str] | None:
    value = os.environ.get(name)
    if not value:
        return None
    step, _, marker = value.partition(":")
    if not marker:
        raise ValueError(f"{name} must look like 'STEP:/path/to/marker', got {value!r}")
    return int(step), marker


def _fire_once(marker: str) -> bool:
    """True the first time only (creates the marker file atomically)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


@dataclass(frozen=True)
class FaultInjection:
    kill_rank1: tuple[int, str] | None = None
    nan: tuple[int, str] | None = None

    @classmethod
    def from_env(cls) -> FaultInjection:
        return cls(kill_rank1=_parse(KILL_ENV), nan=_parse(NAN_ENV))

    def maybe_kill(self, rank: int, global_step: int) -> None:
        """Kill this process if it is rank 1 at the configured step (first time only)."""
        if self.kill_rank1 is None or rank != 1 or global_step != self.kill_rank1[0]:
            return
        if _fire_once(self.kill_rank1[1]):
            logger.warning("TEST fault injection: killing rank 1 before step %d", global_step)
            time.sleep(REGISTRATION_PAUSE_S)
            os._exit(1)

    def poison(self, rank: int, global_step: int) -> bool:
        """Whether rank 0 must feed NaN inputs at this step (first time only); the NaN reaches
        every rank's weights through DDP's gradient all-reduce."""
        if self.nan is None or rank != 0 or global_step != self.nan[0]:
            return False
        if _fire_once(self.nan[1]):
            logger.warning("TEST fault injection: NaN inputs at step %d", global_step)
            return True
        return False
