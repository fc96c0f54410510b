"""No credential reaches params, logs, dvc.lock, stage outputs, git or the DVC remote.

A real pipeline run that needs S3 credentials twice — the download stage fetches the photos
from S3, ``dvc push`` uploads the outputs — with the distinctive TEST_AWS_ENV values given the
two documented ways (the environment, ``.dvc/config.local``). Afterwards everything the run
left behind is grepped for those values. The cluster side (Ray's logs on every node, the job
log, the MLflow run of a cluster job) is grepped in tests/test_submit_cluster.py.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from dpsrgan.data.folder import skimage_photos
from tests.fixtures.dvc_project import QUICK_DATA, REPO, add_s3_remote, clone, dvc, git, set_data_params, tool_env
from tests.fixtures.secrets import find_secrets
from tests.fixtures.services import TEST_AWS_ENV

SECRETS = (TEST_AWS_ENV["AWS_ACCESS_KEY_ID"], TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


@pytest.mark.slow
def test_a_pipeline_run_with_s3_credentials_leaves_none_behind(tmp_path, s3_server):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="leak-source")
    s3.create_bucket(Bucket="leak-remote")
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for photo in skimage_photos():
            archive.write(photo, photo.name)
    s3.upload_file(str(tmp_path / "photos.zip"), "leak-source", "photos.zip")

    repo = clone(REPO, tmp_path / "repo")
    set_data_params(repo, uri="s3://leak-source/photos.zip", s3_endpoint_url=s3_server.endpoint_url, **QUICK_DATA)
    add_s3_remote(repo, "s3://leak-remote/store", s3_server.endpoint_url)
    dvc(repo, "remote", "modify", "--local", "store", "access_key_id", TEST_AWS_ENV["AWS_ACCESS_KEY_ID"])
    dvc(repo, "remote", "modify", "--local", "store", "secret_access_key", TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    env = tool_env()  # the AWS_* test credentials are in the environment (aws_test_env)
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "degrade"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    push = dvc(repo, "push", "-v")
    status = git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all")
    produced = [repo / line[3:] for line in status.splitlines() if line[3:] != ".dvc/config.local"]
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "run")

    assert "s3://leak-source/photos.zip" in (repo / "dvc.lock").read_text()  # the run used S3
    assert repo / "dvc.lock" in produced and repo / "data/processed/manifest.json" in produced
    logs = repro.stdout + repro.stderr + push.stdout + push.stderr
    assert not [secret for secret in SECRETS if secret in logs]
    assert find_secrets(produced, SECRETS) == []
    committed = git(repo, "show", "--name-only", "HEAD") + git(repo, "show", "HEAD")
    assert "config.local" not in committed and not [s for s in SECRETS if s in committed]
    remote_objects = [o["Key"] for o in s3.list_objects_v2(Bucket="leak-remote")["Contents"]]
    for key in remote_objects:
        body = s3.get_object(Bucket="leak-remote", Key=key)["Body"].read()
        assert not [s for s in SECRETS if s.encode() in body], key
