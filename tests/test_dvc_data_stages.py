"""dvc.yaml's download and degrade stages: declared params match what the code reads, and a real
``dvc repro`` in a temporary copy of the repo runs both stages, then skips them the second time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpsrgan.config import DataParams, DegradeParams
from dpsrgan.data.prepare import DATA_KEYS
from tests.fixtures.data import photo

REPO = Path(__file__).resolve().parents[1]
DOWNLOAD_KEYS = {"source", "uri", "s3_endpoint_url", "md5", "max_extract_bytes", "max_extract_files"}


def stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_params_are_declared_per_key_and_exist_in_params_yaml():
    download, degrade = stages()["download"], stages()["degrade"]
    assert set(download["params"]) == {f"data.{k}" for k in DOWNLOAD_KEYS}
    assert set(degrade["params"]) == {f"data.{k}" for k in DATA_KEYS} | {f"degrade.{k}" for k in DegradeParams.model_fields}
    assert set(DATA_KEYS) | DOWNLOAD_KEYS == set(DataParams.model_fields), "a data.* param no stage reads"
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key in [*download["params"], *degrade["params"]]:
        section, name = key.split(".")
        assert name in params[section], f"params.yaml lacks {key} (dvc repro would fail)"


def test_paths_reach_the_scripts_through_cmd_and_deps_exist():
    for name in ("download", "degrade"):
        stage = stages()[name]
        for path in stage["outs"]:
            assert path in stage["cmd"].split()
        for dep in stage["deps"]:
            assert (REPO / dep).exists() or dep in [o for s in stages().values() for o in s.get("outs", [])], dep
    assert "data/raw" in stages()["degrade"]["cmd"].split()


def repo_copy(tmp_path: Path) -> Path:
    """The repo's files (tracked + not ignored) in a fresh git repo with DVC initialised."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode().split("\0")
    copy = tmp_path / "repo"
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, copy / rel)
    return copy


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.mark.slow
def test_dvc_repro_runs_both_stages_then_is_a_no_op(tmp_path):
    copy = repo_copy(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        photo(160, 140, seed=i).save(photos / f"p{i}.png")
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"].update(source="folder", uri=str(photos), hr_size=64, patch_stride=64, shard_rows=4)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "DVC_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", DVC_NO_ANALYTICS="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    run(["git", "init", "-q"], copy, env)
    if not (copy / ".dvc").is_dir():
        run([sys.executable, "-m", "dvc", "init", "-q"], copy, env)
    run(["git", "add", "-A"], copy, env)
    run(["git", "commit", "-qm", "copy"], copy, env)

    first = run([sys.executable, "-m", "dvc", "repro", "degrade"], copy, env)
    assert "Running stage 'download'" in first and "Running stage 'degrade'" in first
    manifest = json.loads((copy / "data/processed/manifest.json").read_text())
    assert manifest["splits"]["train"]["hr_shape"] == [64, 64, 3]

    second = run([sys.executable, "-m", "dvc", "repro", "degrade"], copy, env)
    assert "Stage 'download' didn't change, skipping" in second
    assert "Stage 'degrade' didn't change, skipping" in second
    assert "Running stage" not in second
    assert "Data and pipelines are up to date" in run([sys.executable, "-m", "dvc", "status", "degrade"], copy, env)
