"""The DVC S3 remote: push the pipeline's outputs, pull them in a fresh clone, nothing to redo.

The real data stages of dvc.yaml (download → degrade, one photograph per split) ran in a clone
of this repository (tests/fixtures/dvc_project.py ``pipeline_run``) with the remote on moto's
S3 server configured as infra/README.md documents it: bucket, endpoint and region committed in
``.dvc/config``, credentials only in the environment and the git-ignored ``.dvc/config.local``.
A second clone (a colleague's checkout, credentials from the environment alone) gets
everything with ``dvc pull``, and ``dvc repro`` finds nothing to do.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.dvc_project import TARGET, clone, dvc, git
from tests.fixtures.services import TEST_AWS_ENV


@pytest.mark.slow
def test_push_uploads_the_outputs_and_commits_no_credentials(pipeline_run, s3_server):
    repo = pipeline_run.repo
    assert "pushed" in pipeline_run.logs
    keys = [
        o["Key"] for o in s3_server.client().list_objects_v2(Bucket=pipeline_run.remote_bucket)["Contents"]
    ]
    assert keys and all(key.startswith("store/files/md5/") for key in keys)
    config = (repo / ".dvc" / "config").read_text()
    assert "endpointurl" in config and "s3://run-remote/store" in config
    assert "access_key" not in config and TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in config
    assert "config.local" not in git(repo, "ls-files", ".dvc")
    assert "data/processed" in (repo / "dvc.lock").read_text()


@pytest.mark.slow
def test_fresh_clone_pulls_everything_and_reproduces_nothing(pipeline_run, tmp_path):
    origin = pipeline_run.repo
    fresh = clone(origin, tmp_path / "fresh")
    assert not (fresh / "data" / "processed").exists()
    assert not (fresh / ".dvc" / "config.local").exists()  # credentials from the environment only
    dvc(fresh, "pull", "--with-deps", TARGET)  # the stages that ran (dvc.yaml has training stages too)
    manifest = "data/processed/manifest.json"
    assert (fresh / manifest).read_bytes() == (origin / manifest).read_bytes()
    assert json.loads(dvc(fresh, "status", "--with-deps", TARGET, "--json").stdout) == {}
    repro = dvc(fresh, "repro", TARGET)
    assert "Running stage" not in repro.stdout
    assert "didn't change" in repro.stdout or "up to date" in repro.stdout
