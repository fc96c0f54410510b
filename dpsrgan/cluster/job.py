"""The cluster-side half of ``dpsrgan submit -- dvc repro``: DVC in a Ray job without git.

    python -m dpsrgan.cluster.job [dvc repro arguments...]

Run by Ray as the job's entrypoint, in the job's unpacked working directory (the repo without
``.git``, data or DVC cache). It

1. copies that directory to a private scratch directory: Ray unpacks a package once per node
   and shares it between every job with the same content, so writing outs there would race;
2. runs ``dvc repro --pull`` without git (``core.no_scm``): unchanged upstream outs come from
   the DVC remote, never from the job package;
3. runs ``dvc push``, so the new outs are in the remote;
4. prints ``dvc.lock`` and the uncached outs as one marked log line (:mod:`dpsrgan.cluster.results`)
   that the submitting ``dpsrgan submit --fetch-outs`` writes into its checkout before
   ``dvc pull``.

The scratch copy is removed on success and kept (its path logged) on failure.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from dpsrgan.cluster import results as job_results
from dpsrgan.cluster.submit import stage_targets

logger = logging.getLogger("dpsrgan.cluster.job")


def _dvc(args: Sequence[str], cwd: Path) -> None:
    logger.info("$ dvc %s", " ".join(args))
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(
            f"dvc {args[0]} failed with exit code {done.returncode} (scratch copy kept in {cwd})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    repro_args = list(sys.argv[1:] if argv is None else argv)
    scratch = Path(tempfile.mkdtemp(prefix="dpsrgan-job-"))
    shutil.copytree(Path.cwd(), scratch, symlinks=True, dirs_exist_ok=True)
    logger.info("running in a private copy of the job package: %s", scratch)
    _dvc(["config", "--local", "core.no_scm", "true"], scratch)
    _dvc(["repro", "--pull", *repro_args], scratch)
    _dvc(["push", *stage_targets(repro_args)], scratch)
    print(job_results.encode(job_results.collect(scratch)), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
