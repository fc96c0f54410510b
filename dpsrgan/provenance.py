"""Which code produced a result: the git commit of the working tree and whether it was dirty.

Registered model versions, MLflow runs, promotion decisions and cluster jobs all record it, so
the one place that asks git lives here. A cluster job's package has no ``.git``: there the
commit comes from :data:`COMMIT_ENV` / :data:`DIRTY_ENV`, which ``dpsrgan submit`` sets from the
submitting checkout. Elsewhere outside git (a test's temporary directory) there is no commit,
and that is not an error.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

UNKNOWN_COMMIT = "unknown"
COMMIT_ENV = "DPSRGAN_GIT_COMMIT"
"""The submitting checkout's commit, for code that runs without ``.git`` (a cluster job)."""
DIRTY_ENV = "DPSRGAN_GIT_DIRTY"
"""``1`` when that checkout had uncommitted changes to tracked files, else ``0``."""


def git_provenance(repo: Path | str = ".") -> tuple[str | None, bool]:
    """``(commit, dirty)`` of ``repo``'s HEAD; outside git, what :data:`COMMIT_ENV` says, else
    ``(None, False)``.

    ``dirty`` counts changes to tracked files only: untracked scratch files do not change
    what the commit reproduces. The timeouts keep a hung git (a network filesystem, a lock)
    from stalling a registration or a job submission.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return os.environ.get(COMMIT_ENV) or None, os.environ.get(DIRTY_ENV) == "1"
    return commit, bool(status.strip())


def commit_tag(repo: Path | str = ".") -> str:
    """The commit as one tag value: ``<sha>``, ``<sha>-dirty``, or ``unknown`` outside git."""
    commit, dirty = git_provenance(repo)
    if commit is None:
        return UNKNOWN_COMMIT
    return f"{commit}-dirty" if dirty else commit
