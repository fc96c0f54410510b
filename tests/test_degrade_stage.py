"""The download and degrade stage entry points: exit codes, one-line errors, determinism across
worker counts and execution back ends (local processes vs Ray Data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from dpsrgan.config import DegradeParams
from dpsrgan.data.prepare import prepare
from dpsrgan.data.shards import read_split, split_dirs
from dpsrgan.degradation import bicubic_downscale
from pipelines import degrade as degrade_stage
from pipelines import download as download_stage
from tests.fixtures.data import data_params


def write_params(path: Path, data: dict, degrade: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({"data": data, "degrade": degrade or {}}))
    return path


def shard_hashes(manifest: dict) -> dict[str, list[str]]:
    return {split: [s["sha256"] for s in info["shards"]] for split, info in manifest["splits"].items()}


def test_stages_from_the_command_line(celeba_files, tmp_path):
    params = write_params(
        tmp_path / "params.yaml",
        {"source": "celeba", "uri": str(celeba_files.archive), "md5": celeba_files.md5, "max_rejected_fraction": 0.4},
    )
    assert download_stage.main(["--params", str(params), "--cache-dir", str(tmp_path / "dl"), "--out", str(tmp_path / "raw")]) == 0
    assert degrade_stage.main(["--params", str(params), "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "2"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == len(celeba_files.good["train"])
    assert len(manifest["rejected"]) == len(celeba_files.broken)


def test_too_many_rejects_fail_with_one_line(celeba_raw, tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", {"source": "celeba", "max_rejected_fraction": 0.01})
    code = degrade_stage.main(["--params", str(params), "--raw", str(celeba_raw), "--out", str(tmp_path / "out"), "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "data.max_rejected_fraction=0.01" in err[-1] and "000002.jpg" in err[-1]
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_missing_raw_dir_is_a_clear_error(tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", {"source": "celeba"})
    assert degrade_stage.main(["--params", str(params), "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "run the download stage first" in capsys.readouterr().err


def test_same_bytes_with_one_or_two_workers(celeba_raw, tmp_path):
    one = prepare(data_params(source="celeba"), DegradeParams(), celeba_raw, tmp_path / "one", workers=1)
    two = prepare(data_params(source="celeba"), DegradeParams(), celeba_raw, tmp_path / "two", workers=2)
    assert one == two
    assert (tmp_path / "one/manifest.json").read_bytes() == (tmp_path / "two/manifest.json").read_bytes()


def test_real_world_degradation_is_seeded_per_image(celeba_raw, tmp_path):
    real = DegradeParams(real_world=True, seed=3)
    first = prepare(data_params(source="celeba"), real, celeba_raw, tmp_path / "a", workers=1)
    again = prepare(data_params(source="celeba"), real, celeba_raw, tmp_path / "b", workers=1)
    other = prepare(data_params(source="celeba"), DegradeParams(real_world=True, seed=4), celeba_raw, tmp_path / "c", workers=1)
    assert shard_hashes(first) == shard_hashes(again) != shard_hashes(other)
    sample = next(read_split(split_dirs(tmp_path / "a")["train"]))
    assert sample.lr.shape == (32, 32, 3) and not np.array_equal(sample.lr, bicubic_downscale(sample.hr, 4))


@pytest.mark.slow
def test_ray_data_path_writes_the_same_bytes(celeba_raw, tmp_path, monkeypatch):
    """Same bytes on Ray, with the raw dir given relative to the cwd as dvc.yaml gives it
    (Ray's workers run elsewhere: the stage must hand them absolute paths)."""
    import ray

    local = prepare(data_params(source="celeba"), DegradeParams(), celeba_raw, tmp_path / "local", workers=1)
    ray.init(num_cpus=2, logging_level="WARNING", log_to_driver=False)
    try:
        monkeypatch.chdir(celeba_raw.parent)
        relative_raw = Path(celeba_raw.name)
        on_ray = prepare(data_params(source="celeba"), DegradeParams(), relative_raw, tmp_path / "ray", workers=1, ray_address="auto")
    finally:
        ray.shutdown()
    assert on_ray == local
