"""What a cluster job hands back through its own log: ``dvc.lock`` and the uncached outs.

Cached outs (models, processed data) travel through the DVC remote. Uncached ones (``cache:
false``: metrics JSON, per-epoch CSVs, small plots) live in git, not in the remote, so they ride
back with ``dvc.lock`` in one marked log line (gzip'd JSON, base64) that ``dpsrgan submit`` hides
from the streamed log and writes into the checkout. They also ride *to* the cluster in the job
package: without them ``dvc repro`` would see an unchanged upstream stage as changed (its metrics
missing) and run it again.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from dpsrgan.atomic_io import write_bytes_atomic
from dpsrgan.errors import DpsrganError

MARKER = "DPSRGAN_JOB_RESULTS "
"""Prefix of the job-log line that carries the results."""
LOCK = "dvc.lock"


@dataclass(frozen=True)
class DeclaredOut:
    stage: str
    path: str
    cached: bool


def declared_outs(repo_root: Path) -> list[DeclaredOut]:
    """Every out, metric and plot path in ``dvc.yaml`` (templated paths skipped)."""
    dvc_yaml = repo_root / "dvc.yaml"
    if not dvc_yaml.is_file():
        return []
    stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    found = []
    for name, stage in stages.items():
        for key in ("outs", "metrics", "plots"):
            for entry in (stage or {}).get(key) or []:
                path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                if isinstance(path, str) and "${" not in path:
                    found.append(DeclaredOut(name, path.strip("/"), (options or {}).get("cache", True)))
    return found


def collect(repo_root: Path) -> dict[str, bytes]:
    """``dvc.lock`` and the uncached outs (that exist) of every stage it records."""
    lock = (repo_root / LOCK).read_bytes()
    stages = set((yaml.safe_load(lock) or {}).get("stages") or {})
    files = {LOCK: lock}
    for out in declared_outs(repo_root):
        if out.stage in stages and not out.cached and (repo_root / out.path).is_file():
            files[out.path] = (repo_root / out.path).read_bytes()
    return files


def encode(files: Mapping[str, bytes]) -> str:
    """The one log line that carries ``files``."""
    payload = json.dumps({path: base64.b64encode(data).decode("ascii") for path, data in files.items()})
    return MARKER + base64.b64encode(gzip.compress(payload.encode(), mtime=0)).decode("ascii")


def decode(logs: str) -> dict[str, bytes] | None:
    """The files carried by the last marked line of ``logs``, or None if there is none."""
    found = None
    for line in logs.splitlines():
        if line.startswith(MARKER):
            found = line[len(MARKER) :].strip()
    if found is None:
        return None
    payload = json.loads(gzip.decompress(base64.b64decode(found)))
    return {path: base64.b64decode(data) for path, data in payload.items()}


def install(repo_root: Path, files: Mapping[str, bytes]) -> None:
    """Write the carried files into the checkout, each atomically.

    Only ``dvc.lock`` and uncached outs declared in this checkout's ``dvc.yaml`` are accepted: a
    job log is remote input, and a path outside that list (``../.bashrc``) is refused whole.
    """
    allowed = {LOCK, *(out.path for out in declared_outs(repo_root) if not out.cached)}
    unexpected = sorted(set(files) - allowed)
    if unexpected:
        raise DpsrganError(
            f"the job's results name files that are not uncached outs in dvc.yaml: {unexpected}; "
            "nothing was written (was dvc.yaml changed after submitting?)"
        )
    for path, data in sorted(files.items()):
        write_bytes_atomic(repo_root / path, data)


def cached_out_paths(repo_root: Path) -> list[str]:
    """The cached outs: they reach the cluster through the DVC remote, never the job package."""
    return sorted({out.path for out in declared_outs(repo_root) if out.cached})
