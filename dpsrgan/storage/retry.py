"""One retry policy for every transfer: exponential backoff on transient failures only.

A transfer raises :class:`TransientError` for what may pass (dropped connection, timeout, 5xx,
429); anything else (404, bad credentials, an HTML page instead of a file) fails at once. The
knobs are module attributes read at call time, so tests can shorten the backoff.
"""

from __future__ import annotations

import logging

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

RETRY_ATTEMPTS = 6
RETRY_BACKOFF_S = 2.0
"""First wait; it doubles per attempt, capped at :data:`RETRY_MAX_WAIT_S`."""
RETRY_MAX_WAIT_S = 60.0


class TransientError(Exception):
    """A failure worth retrying; the partial file is kept so the next attempt resumes."""


def retrying() -> Retrying:
    """A tenacity loop: ``for attempt in retrying(): with attempt: ...``; re-raises the last error."""
    return Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=wait_exponential(multiplier=RETRY_BACKOFF_S, max=RETRY_MAX_WAIT_S),
        before_sleep=_log_retry,
        reraise=True,
    )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("attempt %d failed (%s); retrying in %.1f s", state.attempt_number, error, wait)
