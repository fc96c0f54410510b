"""No credential reaches params, logs, dvc.lock, stage outputs, git or the DVC remote.

A real pipeline run that needs S3 credentials twice (tests/fixtures/dvc_project.py
``pipeline_run``): the download stage fetches the photos from S3 and ``dvc push`` uploads the
outputs, with the distinctive TEST_AWS_ENV values given the two documented ways (the
environment, ``.dvc/config.local``). Everything the run left behind is grepped for them. The
cluster side (Ray's logs on every node, the job log, the MLflow run of a cluster job) is grepped
in tests/test_submit_cluster.py.
"""

from __future__ import annotations

import pytest

from tests.fixtures.dvc_project import git
from tests.fixtures.secrets import find_secrets
from tests.fixtures.services import TEST_AWS_ENV

SECRETS = (TEST_AWS_ENV["AWS_ACCESS_KEY_ID"], TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


@pytest.mark.slow
def test_the_run_used_s3_with_credentials(pipeline_run):
    assert "s3://run-source/photos.zip" in (pipeline_run.repo / "dvc.lock").read_text()
    assert TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"] in (pipeline_run.repo / ".dvc" / "config.local").read_text()
    assert pipeline_run.repo / "dvc.lock" in pipeline_run.produced
    assert pipeline_run.repo / "data/processed/manifest.json" in pipeline_run.produced


@pytest.mark.slow
def test_no_credentials_in_logs_outputs_lock_params_or_git(pipeline_run):
    assert not [secret for secret in SECRETS if secret in pipeline_run.logs]
    assert find_secrets(pipeline_run.produced, SECRETS) == []
    committed = git(pipeline_run.repo, "log", "-p", "--name-status", "-2")
    assert "config.local" not in committed
    assert not [secret for secret in SECRETS if secret in committed]


@pytest.mark.slow
def test_no_credentials_in_the_dvc_remote(pipeline_run, s3_server):
    s3 = s3_server.client()
    for entry in s3.list_objects_v2(Bucket=pipeline_run.remote_bucket)["Contents"]:
        body = s3.get_object(Bucket=pipeline_run.remote_bucket, Key=entry["Key"])["Body"].read()
        assert not [secret for secret in SECRETS if secret.encode() in body], entry["Key"]
