"""Which code produced a result: the git commit of the working tree and whether it was dirty.

Registered model versions, MLflow runs, promotion decisions and cluster jobs all record it, so
the one place that asks git lives here. Outside a git checkout (a cluster job's package has no
``.git``, a test's temporary directory) there is no commit, and that is not an error.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

UNKNOWN_COMMIT = "unknown"


def git_provenance(repo: Path | str = ".") -> tuple[str | None, bool]:
    """``(commit, dirty)`` of ``repo``'s HEAD, or ``(None, False)`` outside git.

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
        return None, False
    return commit, bool(status.strip())


def commit_tag(repo: Path | str = ".") -> str:
    """The commit as one tag value: ``<sha>``, ``<sha>-dirty``, or ``unknown`` outside git."""
    commit, dirty = git_provenance(repo)
    if commit is None:
        return UNKNOWN_COMMIT
    return f"{commit}-dirty" if dirty else commit
