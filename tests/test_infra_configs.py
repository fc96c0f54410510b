"""infra/: the cluster and server configs are valid and agree with each other and the project.

The AWS autoscaler config is checked the way ``ray up`` checks it before touching AWS: against
the JSON schema shipped inside the ray package, then through Ray's own defaults-merging and
validation. The KubeRay manifests are checked for the fields the ray.io/v1 CRDs require, and
everything for pinned versions, one bucket name, and no literal credentials.
"""

from __future__ import annotations

import configparser
import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml

INFRA = Path(__file__).resolve().parents[1] / "infra"
BUCKET = "dpsrgan-artifacts"
PY_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
RAY_IMAGE = f"rayproject/ray:{ray.__version__}-{PY_TAG}-gpu"


def _yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def autoscaler_config() -> dict:
    return yaml.safe_load((INFRA / "ray" / "cluster-aws.yaml").read_text())


def test_autoscaler_config_matches_rays_shipped_schema(autoscaler_config):
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(autoscaler_config, schema)


def test_autoscaler_config_passes_rays_own_preparation(autoscaler_config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(autoscaler_config))
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"


def test_cpu_head_and_gpu_workers_that_scale_from_zero(autoscaler_config):
    types = autoscaler_config["available_node_types"]
    head = types[autoscaler_config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = {name: spec for name, spec in types.items() if name != autoscaler_config["head_node_type"]}
    assert workers
    for name, spec in workers.items():
        assert spec["resources"]["GPU"] >= 1, name
        assert spec["min_workers"] == 0, name
        assert spec["max_workers"] <= autoscaler_config["max_workers"], name
        assert spec["node_config"]["InstanceType"].startswith(("g", "p")), name


def test_cluster_environment_is_pinned_and_installs_the_archived_commit(autoscaler_config):
    assert autoscaler_config["docker"]["image"] == RAY_IMAGE
    assert autoscaler_config["file_mounts"] == {"~/dpsrgan-build": "infra/ray/.build"}
    setup = " ".join(autoscaler_config["setup_commands"])
    assert "dpsrgan-build/dpsrgan.tar.gz" in setup and "dpsrgan-build/COMMIT" in setup
    assert "requirements-cluster.txt" in setup
    up = (INFRA / "ray" / "up.sh").read_text()
    assert 'git archive --format=tar.gz -o "$build/dpsrgan.tar.gz" "$commit"' in up
    assert "ray up -y infra/ray/cluster-aws.yaml" in up
    requirements = (INFRA / "ray" / "requirements-cluster.txt").read_text()
    assert re.search(r"^torch==[\d.]+$", requirements, re.M)
    assert f"ARG RAY_IMAGE={RAY_IMAGE}" in (INFRA / "ray" / "Dockerfile").read_text()


def test_dashboard_is_not_exposed_and_nodes_use_instance_profiles(autoscaler_config):
    start = " ".join(autoscaler_config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start
    for name, spec in autoscaler_config["available_node_types"].items():
        arn = spec["node_config"]["IamInstanceProfile"]["Arn"]
        assert re.fullmatch(r"arn:aws:iam::\d{12}:instance-profile/dpsrgan-ray-(head|worker)", arn), name


def _check_ray_cluster_spec(spec: dict, where: str) -> None:
    """The fields KubeRay's ray.io/v1 RayCluster CRD requires, plus our own pins."""
    assert spec["rayVersion"] == ray.__version__, where
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]
    for name, group in groups:
        params = group["rayStartParams"]
        assert isinstance(params, dict), f"{where} {name}: rayStartParams must be a map"
        assert all(isinstance(v, str) for v in params.values()), (
            f"{where} {name}: rayStartParams values are strings"
        )
        containers = group["template"]["spec"]["containers"]
        assert containers and all(c["name"] and c["image"] for c in containers), f"{where} {name}"
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"]
        assert 0 == group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
    head_params = spec["headGroupSpec"]["rayStartParams"]
    assert head_params.get("num-gpus") == "0"


def test_raycluster_manifest_has_the_required_fields():
    docs = _yaml_documents(INFRA / "ray" / "kuberay" / "raycluster.yaml")
    cluster = next(doc for doc in docs if doc["kind"] == "RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["metadata"]["name"]
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    _check_ray_cluster_spec(cluster["spec"], "raycluster.yaml")
    service_account = next(doc for doc in docs if doc["kind"] == "ServiceAccount")
    assert service_account["metadata"]["name"] == "dpsrgan-ray"


def test_rayjob_manifest_has_the_required_fields():
    (job,) = _yaml_documents(INFRA / "ray" / "kuberay" / "rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["metadata"]["name"]
    spec = job["spec"]
    assert "python -m dpsrgan.cluster.job" in spec["entrypoint"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["submissionMode"] in {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}
    _check_ray_cluster_spec(spec["rayClusterSpec"], "rayjob.yaml")


def test_mlflow_compose_runs_basic_auth_on_postgres_with_s3_artefacts():
    compose = yaml.safe_load((INFRA / "mlflow" / "docker-compose.yml").read_text())
    server = compose["services"]["mlflow"]
    command = server["command"]
    option = {command[i]: command[i + 1] for i in range(1, len(command) - 1) if command[i].startswith("--")}
    assert option["--app-name"] == "basic-auth"
    assert option["--backend-store-uri"].startswith("postgresql+psycopg2://mlflow@postgres:5432/")
    assert option["--artifacts-destination"] == "s3://${MLFLOW_ARTIFACT_BUCKET:-dpsrgan-artifacts}/mlflow"
    env = server["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    for secret in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env[secret].startswith("${") and ":?" in env[secret], f"{secret} must come from .env, required"
    assert server["ports"] == ["127.0.0.1:5000:5000"]
    auth = configparser.ConfigParser()
    auth.read(INFRA / "mlflow" / "basic_auth.ini")
    assert auth["mlflow"]["default_permission"] in {"READ", "NO_PERMISSIONS"}
    assert (
        "@" in auth["mlflow"]["database_uri"]
        and ":" not in auth["mlflow"]["database_uri"].split("//")[1].split("@")[0]
    )
    assert "mlflow[auth]==3.17.2" in (INFRA / "mlflow" / "Dockerfile").read_text()
    assert "/.env" in (INFRA / "mlflow" / ".gitignore").read_text()


@pytest.mark.parametrize(
    "policy_file, writable",
    [
        ("iam-policy.json", {"dvc", "ray"}),
        ("iam-policy-mlflow-server.json", {"mlflow"}),
    ],
)
def test_iam_policies_are_scoped_to_the_bucket_prefixes(policy_file, writable):
    policy = json.loads((INFRA / "aws" / policy_file).read_text())
    assert policy["Version"] == "2012-10-17"
    written = set()
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert statement["Effect"] == "Allow"
        assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
        for resource in resources:
            assert resource == f"arn:aws:s3:::{BUCKET}" or re.fullmatch(
                rf"arn:aws:s3:::{BUCKET}/\w+/\*", resource
            )
            if resource != f"arn:aws:s3:::{BUCKET}":
                assert not {"s3:ListBucket", "s3:GetBucketLocation"} & set(actions)
                if {"s3:PutObject", "s3:DeleteObject"} & set(actions):
                    written.add(resource.split("/")[1])
            else:
                assert set(actions) <= {"s3:ListBucket", "s3:GetBucketLocation"}
    assert written == writable


_BUCKET_MENTION = re.compile(
    r"s3://([a-z0-9.-]+)|Bucket='([a-z0-9.-]+)'|ARTIFACT_BUCKET(?::-|=)([a-z0-9.-]+)|arn:aws:s3:::([a-z0-9.-]+)"
)


@pytest.mark.parametrize(
    "relative",
    [
        "ray/cluster-aws.yaml",
        "mlflow/docker-compose.yml",
        "mlflow/.env.example",
        "aws/iam-policy.json",
        "aws/iam-policy-mlflow-server.json",
    ],
)
def test_one_bucket_everywhere(relative):
    text = (INFRA / relative).read_text()
    names = {name for groups in _BUCKET_MENTION.findall(text) for name in groups if name}
    assert names == {BUCKET}


# An AWS access key id, a 40-char secret after a key-ish word, a private key, a password literal.
_CREDENTIAL = re.compile(
    r"AKIA[0-9A-Z]{16}"
    r"|(?i:secret|password|token)[\w-]*\s*[:=]\s*['\"]?(?!\$\{|CHANGE_ME|\s|$)[A-Za-z0-9/+=_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


def test_no_credentials_in_infra_files():
    found = []
    for path in sorted(p for p in INFRA.rglob("*") if p.is_file() and ".build" not in p.parts):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if _CREDENTIAL.search(line):
                found.append(f"{path.relative_to(INFRA)}:{number}: {line.strip()}")
    assert found == []


SERVE = INFRA / "ray" / "serve"


def test_serve_config_is_a_valid_serve_deploy_config_that_builds_our_app():
    from ray.serve.schema import ServeDeploySchema

    from dpsrgan.serving.app import IngressDeployment, ModelDeployment, build_app
    from dpsrgan.serving.settings import ServeSettings

    config = yaml.safe_load((SERVE / "dpsrgan-serve.yaml").read_text())
    (app,) = ServeDeploySchema.model_validate(config).applications
    assert app.import_path == "dpsrgan.serving.app:build_app"
    settings = ServeSettings.from_args(app.args)  # every key is a setting, every value in range
    build_app(app.args)  # the builder accepts them as Serve will pass them
    assert {d["name"] for d in config["applications"][0]["deployments"]} == {ModelDeployment.name, IngressDeployment.name}
    assert config["http_options"]["request_timeout_s"] > settings.timeout_s  # a backstop behind our 504
    model = next(d for d in config["applications"][0]["deployments"] if d["name"] == ModelDeployment.name)
    assert model["num_replicas"] == "auto" and model["autoscaling_config"]["max_replicas"] == settings.replicas
    assert model["ray_actor_options"]["num_gpus"] == 1 and settings.device == "cuda"


def test_rayservice_runs_the_same_serve_config_on_gpu_workers():
    (service,) = _yaml_documents(SERVE / "rayservice.yaml")
    assert service["apiVersion"] == "ray.io/v1" and service["kind"] == "RayService"
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    assert serve_config["applications"] == yaml.safe_load((SERVE / "dpsrgan-serve.yaml").read_text())["applications"]
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    _check_ray_cluster_spec(cluster, "rayservice.yaml")
    head_ports = {p["name"]: p["containerPort"] for p in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
    assert head_ports["serve"] == 8000
