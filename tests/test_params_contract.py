"""params.yaml and dpsrgan/config.py are one source of truth: every knob of ``Params`` is in
params.yaml with the code's default as its value (compared with the file as it is at test time,
so retuning params.yaml without the code fails here), and every check runs when the file is
loaded, failing with one line that names the key and a valid example."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from pydantic import BaseModel, TypeAdapter

from dpsrgan.config import (
    GATE_METRICS,
    Params,
    ParamsError,
    load_params,
    parse_params,
)
from dpsrgan.models.vgg_layers import LAYER_INDEX

REPO = Path(__file__).resolve().parents[1]


def committed_params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def contract_mismatches(model: type[BaseModel], node: dict[str, Any], path: str = "") -> list[str]:
    """Every field of ``model`` (recursively) whose default differs from ``node``'s value, or that
    ``node`` lacks; a required field needs only to be present."""
    problems = []
    for name, field in model.model_fields.items():
        key = f"{path}{name}"
        if name not in node:
            problems.append(f"{key}: missing from params.yaml (every knob is listed there)")
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert isinstance(node[name], dict), f"{key} must be a section"
            problems += contract_mismatches(annotation, node[name], f"{key}.")
            continue
        if field.is_required():
            continue
        default = TypeAdapter(annotation).dump_python(field.get_default(call_default_factory=True), mode="json")
        if default != node[name]:
            problems.append(f"{key}: code default {default!r} != params.yaml {node[name]!r}")
    return problems


def test_every_code_default_is_the_params_yaml_value():
    assert contract_mismatches(Params, committed_params()) == []


def test_the_contract_walk_sees_every_section_and_a_drift():
    raw = committed_params()
    assert set(raw) == set(Params.model_fields)
    drifted = copy.deepcopy(raw)
    drifted["gan"]["lr_g"] = raw["gan"]["lr_g"] * 2
    del drifted["loss"]["fake_label_range"]
    assert contract_mismatches(Params, drifted) == [
        "loss.fake_label_range: missing from params.yaml (every knob is listed there)",
        f"gan.lr_g: code default {raw['gan']['lr_g']!r} != params.yaml {raw['gan']['lr_g'] * 2!r}",
    ]


def test_an_empty_params_file_is_the_quickstart(tmp_path):
    (tmp_path / "params.yaml").write_text("{}\n")
    assert load_params(tmp_path / "params.yaml") == load_params(REPO / "params.yaml")


def merged(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with ``{"section.key": value}`` overrides applied."""
    out = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        out[section][key] = value
    return out


# (overrides onto params.yaml, the key path the error names, a fragment of its fix or example)
BAD = {
    "jpeg quality beyond 100": ({"degrade.jpeg_quality": [60, 150]}, "degrade.jpeg_quality", "[60, 95]"),
    "reversed blur range": ({"degrade.blur_sigma": [1.5, 0.2]}, "degrade.blur_sigma", "[0.2, 1.5]"),
    "negative noise": ({"degrade.noise_sigma": [-1.0, 5.0]}, "degrade.noise_sigma", "[0.0, 5.0]"),
    "unknown VGG19 layer": ({"loss.vgg_layer": "conv9_9"}, "loss.vgg_layer", "conv5_4"),
    "empty VGG weights": ({"loss.vgg_weights": ""}, "loss.vgg_weights", "torch-hub"),
    "label range beyond 1": ({"loss.real_label_range": [0.7, 1.2]}, "loss.real_label_range", "[0.7, 1.0]"),
    "empty data uri": ({"data.uri": ""}, "data.uri", "bundled"),
    "blank data uri": ({"data.uri": "  "}, "data.uri", "bundled"),
    "Drive for a folder source": ({"data.uri": "gdrive"}, "data.uri=gdrive", "data.source: celeba"),
    "remote folder that is no zip": ({"data.uri": "s3://bucket/photos"}, "data.uri=s3://bucket/photos", ".zip"),
    "not an MD5": ({"data.md5": {"img_align_celeba.zip": "00d2c5bc"}}, "data.md5", "32 hex digits"),
    "HR size off the LR grid": ({"data.hr_size": 130}, "data.hr_size=130", "multiple of degrade.scale"),
    "D warm-up as long as the GAN stage": ({"gan.d_warmup_steps": 100}, "gan.d_warmup_steps=100", "lower gan.d_warmup_steps"),
    "D warm-up as long as a tune trial": (
        {"tune.epochs": 1}, "gan.d_warmup_steps=25", "raise tune.epochs"),
    "empty split cap": ({"data.max_images": {"train": 0}}, "data.max_images.train", "greater than 0"),
    "data endpoint without scheme": ({"data.s3_endpoint_url": "127.0.0.1:9000"}, "data.s3_endpoint_url", "http://"),
    "infinite learning rate": ({"pretrain.lr": math.inf}, "pretrain.lr", "finite"),
    "NaN learning rate": ({"gan.lr_d": math.nan}, "gan.lr_d", "finite"),
    "infinite tune bound": ({"tune.adv_weight_max": math.inf}, "tune.adv_weight_max", "finite"),
    "Adam beta of 1": ({"gan.betas": [0.9, 1.0]}, "gan.betas.1", "less than 1"),
    "crop off the LR grid": ({"gan.crop_size": 66}, "gan.crop_size=66", "multiple of degrade.scale"),
    "unknown schedule": ({"pretrain.lr_schedule": "linear"}, "pretrain.lr_schedule", "'cosine'"),
    "unknown tune objective": ({"tune.objective": "sharpness"}, "tune.objective", "'detail_within_bounds'"),
    "GPU workers without GPUs": ({"ray.use_gpu": True, "ray.gpus_per_worker": 0}, "ray.use_gpu", "gpus_per_worker > 0"),
    "storage endpoint without scheme": ({"ray.s3_endpoint_url": "127.0.0.1:9000"}, "ray.s3_endpoint_url", "http://"),
    "empty Ray storage": ({"ray.storage_path": ""}, "ray.storage_path", "outputs/ray"),
    "empty experiment": ({"mlflow.experiment": ""}, "mlflow.experiment", "dpsrgan"),
    "gate on an unknown metric": ({"mlflow.gate_metrics": {"nonsense_metric": 0}}, "mlflow.gate_metrics", "psnr_y"),
    "absolute gate on an unknown metric": (
        {"mlflow.gate_absolute": {"psnr_y_gain": 0.0, "hf_energy": 1.0}}, "mlflow.gate_absolute", "psnr_y_gain"
    ),
    "gate on a metric the gate would compare backwards": (
        {"mlflow.gate_metrics": {"color_shift": 0.1}}, "mlflow.gate_metrics", "psnr_y"
    ),
    "gate on LPIPS that is never measured": (
        {"mlflow.gate_absolute": {"lpips": 0.3}, "evaluate.lpips": False}, "mlflow.gate_absolute", "evaluate.lpips: true"
    ),
}


@pytest.mark.parametrize("overrides, key, fix", BAD.values(), ids=BAD.keys())
def test_a_bad_value_fails_at_load_with_one_line_naming_key_and_fix(tmp_path, overrides, key, fix):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(merged(committed_params(), overrides)))  # inf/nan as YAML's .inf/.nan
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}"), message
    assert fix in message, message
    assert "more problem" not in message  # each case breaks exactly one rule


def test_an_unknown_gate_metric_error_lists_every_metric_the_gate_knows():
    raw = merged(committed_params(), {"mlflow.gate_metrics": {"nonsense_metric": 0}})
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    assert all(name in str(caught.value) for name in GATE_METRICS)


def test_gate_metrics_are_what_the_register_stage_logs():
    """Every name the config accepts is a number the evaluate summary has for the candidate (as
    the register stage logs it)."""
    from dpsrgan.evaluation.evaluator import EXTRA_METRICS
    from dpsrgan.evaluation.summary import summarize
    from dpsrgan.lifecycle.registry import registry_metrics
    from dpsrgan.metrics import METRIC_NAMES

    rows = [
        {"id": f"im{i}", "method": method, **{name: 1.0 + i for name in (*METRIC_NAMES, *EXTRA_METRICS)},
         "lpips": 0.2, "ms_per_image": 3.0}
        for method in ("bicubic", "gan")
        for i in range(2)
    ]
    costs = {"gan": {"num_params": 1000, "gflops_per_output_mp": 1.5}}
    logged = registry_metrics(summarize(pd.DataFrame(rows), costs, "computed"))
    assert GATE_METRICS <= set(logged)


def test_every_vgg19_layer_name_loads_and_the_model_uses_the_same_list():
    from dpsrgan.models import vgg

    assert vgg.LAYER_INDEX is LAYER_INDEX
    for layer in LAYER_INDEX:
        assert parse_params({"loss": {"vgg_layer": layer}}).loss.vgg_layer == layer


def test_config_stays_torch_free():
    code = "import sys, dpsrgan.config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO).returncode == 0
