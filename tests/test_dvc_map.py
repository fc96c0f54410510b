"""dvc.yaml is the map: every stage depends on the code it runs and lists the params it reads.

Each stage's code is the import closure of its ``python -m pipelines.X`` module over the project's
own modules, function-level imports included (that is where most of ours are). A module the
closure reaches must be a dep of the stage (the file, or a folder above it), unless it is in
:data:`NOT_RESULT_SHAPING`: code that only logs, prints or tracks, whose edits cannot change what
a stage writes. Every leaf key of ``params.yaml`` is listed by a stage whose code reads it, or is
in :data:`OPERATIONAL_KEYS` with the reason it shapes no result.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from dpsrgan.config import Params

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dpsrgan", "pipelines")

NOT_RESULT_SHAPING = {  # path → why its edits cannot change a stage's outputs
    "dpsrgan/training/progress.py": "progress lines on the console (step, loss, throughput, ETA)",
    "dpsrgan/tuning/progress.py": "the sweep's progress lines",
    "dpsrgan/visualize.py": "pictures logged to MLflow (the validation grid, the history plot)",
    "pipelines/__init__.py": "an empty package marker",
}
"""Modules a stage runs whose edits cannot change its outputs (they only report)."""

OPERATIONAL_KEYS = {
    "ray.address": "where Ray runs, not what it computes",
    "ray.use_gpu": "the device; the result is the same recipe",
    "ray.cpus_per_worker": "Ray's scheduling of the workers",
    "ray.cpus_per_data_task": "Ray's scheduling of the data reads",
    "ray.gpus_per_worker": "Ray's scheduling of the workers",
    "ray.storage_path": "where checkpoints are kept",
    "ray.s3_endpoint_url": "where checkpoints are kept",
    "ray.max_failures": "how many restarts from the last checkpoint before giving up",
    "ray.log_to_driver": "what the console shows",
    "tune.max_concurrent_trials": "how many trials run at once, not what each computes",
    "tune.cpus_per_trial": "Ray's scheduling of the trials",
    "mlflow.gate_metrics": "read by `dpsrgan promote`, which is not a DVC stage",
    "mlflow.gate_absolute": "read by `dpsrgan promote`, which is not a DVC stage",
}
"""params.yaml keys no stage lists, and why: each changes how or where a stage runs, not its outputs."""


def test_the_exempt_package_marker_is_empty():
    assert not (ROOT / "pipelines" / "__init__.py").read_text().strip()


def _stages() -> dict[str, dict]:
    """dvc.yaml's stages, a ``foreach`` stage once (its ``do`` body)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def _module_path(module: str) -> Path | None:
    """The project file of a dotted module name (package → its __init__.py), or None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, function-level ones included, except under ``if TYPE_CHECKING:``
    (type hints only: never executed)."""
    found = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.extend(_imports(ast.Module(body=node.orelse, type_ignores=[])))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        else:
            found.extend(_imports(node))
    return found


def _imported_modules(path: Path) -> set[str]:
    """Dotted names this file imports (module level or inside functions), with ``from a import b``
    also giving ``a.b`` (b may be a submodule) and every parent package."""
    names: set[str] = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    with_parents = set(names)
    for name in names:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return with_parents


@cache
def closure(module: str) -> frozenset[str]:
    """Repo-relative paths of every project file that running ``module`` may import."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        path = _module_path(todo.pop())
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_imported_modules(path))
    return frozenset(str(path.relative_to(ROOT)) for path in seen)


def _stage_module(stage: dict) -> str:
    match = re.search(r"python -m (pipelines\.\w+)", stage["cmd"])
    assert match, f"cmd does not run a pipelines module: {stage['cmd']}"
    return match.group(1)


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_module_a_stage_runs_is_a_dep(name):
    stage = _stages()[name]
    deps = [str(dep) for dep in stage.get("deps", [])]
    missing = sorted(
        path for path in closure(_stage_module(stage)) if not _covered(path, deps) and path not in NOT_RESULT_SHAPING
    )
    assert not missing, f"dvc.yaml stage {name!r} runs code it does not depend on; add to its deps:\n" + "\n".join(
        missing
    )


def _leaf_keys(model: type[BaseModel] = Params, prefix: str = "") -> list[str]:
    """Every knob of params.yaml as a dotted key: the fields of the typed sections (a mapping such
    as ``data.md5`` or ``mlflow.gate_metrics`` is one knob)."""
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_leaf_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _listed(stage: dict) -> list[str]:
    return [entry for entry in stage.get("params", []) if isinstance(entry, str)]


def test_every_params_key_is_listed_by_a_stage_or_declared_operational():
    listed = {key for stage in _stages().values() for key in _listed(stage)}
    dead = [
        key
        for key in _leaf_keys()
        if key not in OPERATIONAL_KEYS and not any(key == entry or key.startswith(entry + ".") for entry in listed)
    ]
    assert not dead, "params.yaml keys no stage lists (list them where they are read, or declare them operational):\n" + "\n".join(dead)
    stale = sorted(set(OPERATIONAL_KEYS) - set(_leaf_keys()))
    assert not stale, f"OPERATIONAL_KEYS names keys params.yaml does not have: {stale}"
    both = sorted(set(OPERATIONAL_KEYS) & listed)
    assert not both, f"keys both listed by a stage and declared operational: {both}"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_a_stage_lists_only_params_its_code_reads(name):
    stage = _stages()[name]
    source = "\n".join((ROOT / path).read_text() for path in closure(_stage_module(stage)))
    unread = [key for key in _listed(stage) if not re.search(rf"\b{re.escape(key.split('.')[-1])}\b", source)]
    assert not unread, f"dvc.yaml stage {name!r} lists params its code never reads: {unread}"
