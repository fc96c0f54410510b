"""Git provenance: commit + dirty inside a checkout, nothing (and no error) outside one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dpsrgan.provenance import UNKNOWN_COMMIT, commit_tag, git_provenance


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_outside_git_there_is_no_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("DPSRGAN_GIT_COMMIT", raising=False)
    assert git_provenance(tmp_path) == (None, False)
    assert commit_tag(tmp_path) == UNKNOWN_COMMIT


def test_commit_and_dirtiness_of_tracked_files(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "HEAD").strip()

    (tmp_path / "scratch.txt").write_text("untracked files do not make the tree dirty\n")
    assert git_provenance(tmp_path) == (head, False)
    assert commit_tag(tmp_path) == head

    (tmp_path / "a.txt").write_text("two\n")
    assert git_provenance(tmp_path) == (head, True)
    assert commit_tag(tmp_path) == f"{head}-dirty"


def test_a_cluster_job_without_git_reports_the_submitted_commit(tmp_path, monkeypatch):
    """``dpsrgan submit`` leaves .git home and passes the commit in the job's environment."""
    monkeypatch.setenv("DPSRGAN_GIT_COMMIT", "0123abcd" * 5)
    monkeypatch.setenv("DPSRGAN_GIT_DIRTY", "1")
    assert git_provenance(tmp_path) == ("0123abcd" * 5, True)
    assert commit_tag(tmp_path) == "0123abcd" * 5 + "-dirty"
