"""The DVC S3 remote: push the pipeline's outputs, pull them in a fresh clone, nothing to redo.

Runs the real data stages of dvc.yaml (download → degrade, on one photograph per split) in a
clone of this repository, with the remote on moto's S3 server configured as infra/README.md
documents it: bucket, endpoint and region committed in ``.dvc/config``, credentials only in
the environment. A second clone (a colleague's checkout) then gets everything with ``dvc pull``,
and ``dvc repro`` finds nothing to do.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.dvc_project import QUICK_DATA, REPO, add_s3_remote, clone, dvc, git, set_data_params
from tests.fixtures.services import TEST_AWS_ENV

TARGET = "degrade"  # the data stages; the training stages join once dvc.yaml has them


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, s3_server):
    """A clone that ran the data stages and pushed their outputs; returns (clone, bucket keys)."""
    s3_server.client().create_bucket(Bucket="dvc-remote-test")
    origin = clone(REPO, tmp_path_factory.mktemp("dvc-remote") / "origin")
    set_data_params(origin, **QUICK_DATA)
    add_s3_remote(origin, "s3://dvc-remote-test/store", s3_server.endpoint_url)
    git(origin, "commit", "-q", "-am", "quick data, S3 remote")
    dvc(origin, "repro", TARGET)
    pushed = dvc(origin, "push")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "pipeline outputs")
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket="dvc-remote-test")["Contents"]]
    return origin, keys, pushed.stdout


@pytest.mark.slow
def test_push_uploads_the_outputs_and_commits_no_credentials(pushed):
    origin, keys, output = pushed
    assert "pushed" in output
    assert keys and all(key.startswith("store/files/md5/") for key in keys)
    config = (origin / ".dvc" / "config").read_text()
    assert "endpointurl" in config and "s3://dvc-remote-test/store" in config
    assert not [value for value in TEST_AWS_ENV.values() if value in config and value != "us-east-1"]
    assert not (origin / ".dvc" / "config.local").exists()
    assert "data/processed" in (origin / "dvc.lock").read_text()


@pytest.mark.slow
def test_fresh_clone_pulls_everything_and_reproduces_nothing(pushed, tmp_path):
    origin, _, _ = pushed
    fresh = clone(origin, tmp_path / "fresh")
    assert not (fresh / "data" / "processed").exists()
    dvc(fresh, "pull")
    manifest = "data/processed/manifest.json"
    assert (fresh / manifest).read_bytes() == (origin / manifest).read_bytes()
    assert json.loads(dvc(fresh, "status", "--json").stdout) == {}
    repro = dvc(fresh, "repro", TARGET)
    assert "Running stage" not in repro.stdout
    assert "didn't change" in repro.stdout or "up to date" in repro.stdout
