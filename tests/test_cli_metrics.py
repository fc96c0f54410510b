"""``dpsrgan metrics SR_DIR HR_DIR``: table, JSON, unmatched images and size errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dpsrgan.cli import main
from dpsrgan.degradation import bicubic_downscale, imresize
from dpsrgan.metrics import image_metrics


def _save(folder: Path, name: str, image: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name)


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """HR crops of two photographs, their bicubic ×4 SR, and one SR identical to its HR."""
    hr = {"cat.png": data.chelsea()[:96, 100:196], "cup.png": data.coffee()[100:164, 200:280]}
    sr = {}
    for name, image in hr.items():
        up = imresize(bicubic_downscale(image, 4), 4)
        sr[name] = np.floor(np.clip(up, 0, 255) + 0.5).astype(np.uint8)
        _save(tmp_path / "hr", name, image)
        _save(tmp_path / "sr", name, sr[name])
    same = data.rocket()[:64, :64]
    _save(tmp_path / "hr", "same.png", same)
    _save(tmp_path / "sr", "same.png", same)
    return tmp_path / "sr", tmp_path / "hr", {name: image_metrics(sr[name], hr[name], 4) for name in hr}


def test_table_lists_every_image_and_the_mean(folders, capsys):
    sr_dir, hr_dir, expected = folders
    assert main(["metrics", str(sr_dir), str(hr_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["image", "PSNR-Y", "SSIM-Y", "PSNR-RGB", "SSIM-RGB"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if not line.startswith("-")}
    assert set(rows) == {"cat.png", "cup.png", "same.png", "mean"}
    assert float(rows["cat.png"][0]) == pytest.approx(expected["cat.png"]["psnr_y"], abs=0.005)
    assert float(rows["cup.png"][3]) == pytest.approx(expected["cup.png"]["ssim_rgb"], abs=5e-5)
    assert rows["same.png"] == ["inf", "1.0000", "inf", "1.0000"]
    assert rows["mean"][0] == "inf"  # an identical pair makes the mean PSNR infinite too


def test_json_output_encodes_infinity_as_null(folders, capsys):
    sr_dir, hr_dir, expected = folders
    assert main(["metrics", str(sr_dir), str(hr_dir), "--crop-border", "4", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["crop_border"] == 4 and document["sr_only"] == [] and document["hr_only"] == []
    by_name = {row["image"]: row for row in document["images"]}
    assert by_name["cat.png"]["ssim_y"] == pytest.approx(expected["cat.png"]["ssim_y"], abs=1e-6)
    assert by_name["same.png"]["psnr_y"] is None and by_name["same.png"]["ssim_y"] == 1.0
    assert document["mean"]["psnr_y"] is None
    mean_ssim = np.mean([expected["cat.png"]["ssim_y"], expected["cup.png"]["ssim_y"], 1.0])
    assert document["mean"]["ssim_y"] == pytest.approx(mean_ssim, abs=1e-6)


def test_unmatched_images_are_error_lines_and_exit_one(folders, capsys):
    sr_dir, hr_dir, _ = folders
    (sr_dir / "same.png").rename(sr_dir / "renamed.png")
    assert main(["metrics", str(sr_dir), str(hr_dir), "--json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # the pairs that exist are still measured
    assert [row["image"] for row in document["images"]] == ["cat.png", "cup.png"]
    assert document["sr_only"] == ["renamed.png"] and document["hr_only"] == ["same.png"]
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("dpsrgan metrics: error: ") for line in errors)
    assert "renamed.png" in errors[0] and "same.png" in errors[1]


def test_differing_sizes_name_the_file_and_exit_two(folders, capsys):
    sr_dir, hr_dir, _ = folders
    _save(sr_dir, "cup.png", np.zeros((60, 80, 3), np.uint8))
    assert main(["metrics", str(sr_dir), str(hr_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cup.png: SR is 80x60 but HR cup.png is 80x64" in err


def test_no_pairs_at_all_is_an_error(tmp_path, capsys):
    _save(tmp_path / "sr", "a.png", np.zeros((32, 32, 3), np.uint8))
    _save(tmp_path / "hr", "b.png", np.zeros((32, 32, 3), np.uint8))
    assert main(["metrics", str(tmp_path / "sr"), str(tmp_path / "hr")]) == 2
    assert "no image in" in capsys.readouterr().err
