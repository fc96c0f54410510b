"""``dpsrgan upscale`` end to end: real checkpoint, real files, the CLI's exit codes and lines."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpsrgan.checkpoint import save_generator
from dpsrgan.cli import main
from tests._upscale_helpers import smooth_rgb, tiny_generator


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_generator(tiny_generator(), tmp_path_factory.mktemp("model") / "tiny.pt", seed=0)


def _image(path: Path, height: int = 6, width: int = 8, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_rgb(height, width, seed)).save(path)
    return path


def _upscale(checkpoint: Path, *args: str | Path) -> int:
    return main(["upscale", *map(str, args), "--model", str(checkpoint), "--device", "cpu", "--tile", "8"])


def test_help_states_the_receptive_field(capsys):
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "receptive field is 112 LR pixels wide (radius 56)" in help_text


def test_one_file_to_one_file(checkpoint, tmp_path, capsys):
    source = _image(tmp_path / "photo.jpg", 5, 7)
    assert _upscale(checkpoint, source, "-o", tmp_path / "big.webp") == 0
    with Image.open(tmp_path / "big.webp") as out:
        assert out.format == "WEBP" and out.size == (28, 20)
    assert "wrote 1, skipped 0 existing, failed 0" in capsys.readouterr().out


def test_one_file_into_a_folder(checkpoint, tmp_path):
    source = _image(tmp_path / "photo.jpg")
    (tmp_path / "out").mkdir()
    assert _upscale(checkpoint, source, "-o", tmp_path / "out") == 0
    assert (tmp_path / "out" / "photo.png").is_file()


def test_folder_recursive_mirrors_the_tree_and_skips_its_own_output(checkpoint, tmp_path):
    photos = tmp_path / "photos"
    for relative in ("a.png", "trip/b.jpg", "trip/day2/c.bmp", ".hidden/d.png"):
        _image(photos / relative)
    (photos / "notes.txt").write_text("not an image")
    flat = tmp_path / "flat"
    assert _upscale(checkpoint, photos, "-o", flat) == 0
    assert sorted(p.relative_to(flat).as_posix() for p in flat.rglob("*.png")) == ["a.png"]
    mirrored = photos / "x4"  # output inside the input tree
    assert _upscale(checkpoint, photos, "-o", mirrored, "--recursive") == 0
    assert _upscale(checkpoint, photos, "-o", mirrored, "--recursive", "--skip-existing") == 0
    written = sorted(p.relative_to(mirrored).as_posix() for p in mirrored.rglob("*") if p.is_file())
    assert written == ["a.png", "trip/b.png", "trip/day2/c.png"]  # no x4/x4/..., no hidden, no .txt


def test_skip_existing_resumes_and_ignores_partial_temp_files(checkpoint, tmp_path, capsys):
    inputs = [_image(tmp_path / "in" / f"{name}.png", seed=i) for i, name in enumerate("abc")]
    out = tmp_path / "out"
    assert _upscale(checkpoint, inputs[0], inputs[1], "-o", out) == 0
    first = {name: (out / f"{name}.png").stat().st_ino for name in "ab"}
    (out / ".c.png.1234.deadbeef.part").write_bytes(b"\x89PNG half-written")  # an interrupted write
    capsys.readouterr()
    assert _upscale(checkpoint, tmp_path / "in", "-o", out, "--skip-existing") == 0
    assert "wrote 1, skipped 2 existing, failed 0" in capsys.readouterr().out
    assert {name: (out / f"{name}.png").stat().st_ino for name in "ab"} == first  # untouched
    with Image.open(out / "c.png") as image:
        assert image.size == (32, 24)


@pytest.mark.slow
def test_bad_inputs_get_one_line_each_and_the_rest_is_written(checkpoint, tmp_path):
    """The real console entry point in a subprocess: its stderr and exit code as users see them."""
    folder = tmp_path / "in"
    _image(folder / "good1.png")
    _image(folder / "good2.jpg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a picture\n")
    _image(folder / "truncated.png", 40, 40)
    (folder / "truncated.png").write_bytes((folder / "truncated.png").read_bytes()[:150])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-m", "dpsrgan.cli", "upscale", str(folder), str(tmp_path / "missing.png"),
         "-o", str(out), "--model", str(checkpoint), "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    for name in ("empty.png", "text.jpg", "truncated.png", "missing.png"):
        assert sum(name in line for line in error_lines) == 1, result.stderr
    assert len(error_lines) == 4, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]
    assert "failed 4" in result.stdout


def test_output_that_is_an_input_is_refused(checkpoint, tmp_path, capsys):
    source = _image(tmp_path / "a.png")
    before = source.read_bytes()
    assert _upscale(checkpoint, source, "-o", source) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    _image(tmp_path / "b.jpg")
    assert _upscale(checkpoint, tmp_path, "-o", tmp_path) == 2  # a.png → a.png in the same folder
    assert "a.png would overwrite the input" in capsys.readouterr().err
    assert source.read_bytes() == before and not (tmp_path / "b.png").exists()


def test_two_inputs_with_one_output_name_are_refused(checkpoint, tmp_path, capsys):
    _image(tmp_path / "in" / "x.png")
    _image(tmp_path / "in" / "x.jpg")
    assert _upscale(checkpoint, tmp_path / "in", "-o", tmp_path / "out") == 2
    assert "would both be written to" in capsys.readouterr().err


def test_pixel_limit(checkpoint, tmp_path, caplog):
    _image(tmp_path / "in" / "small.png", 4, 4)
    _image(tmp_path / "in" / "large.png", 10, 10)
    with caplog.at_level(logging.ERROR):
        assert _upscale(checkpoint, tmp_path / "in", "-o", tmp_path / "out", "--max-pixels", "50") == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "large.png: 10x10 = 100 pixels is over the pixel limit of 50" in errors[0]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small.png"]


def test_format_same_and_jpg(checkpoint, tmp_path):
    _image(tmp_path / "in" / "a.bmp")
    assert _upscale(checkpoint, tmp_path / "in", "-o", tmp_path / "same", "--format", "same") == 0
    assert _upscale(checkpoint, tmp_path / "in", "-o", tmp_path / "jpg", "--format", "jpg") == 0
    with Image.open(tmp_path / "same" / "a.bmp") as same, Image.open(tmp_path / "jpg" / "a.jpg") as jpg:
        assert (same.format, jpg.format) == ("BMP", "JPEG")
        assert np.asarray(same).shape == np.asarray(jpg).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nowhere.pt"], "no such checkpoint file"),
        (["--model", "MODEL", "--precision", "fp16", "--device", "cpu"], "fp16 runs on CUDA only"),
        (["--model", "MODEL", "--tile", "-1"], "must be >= 0"),
    ],
)
def test_user_errors_are_one_line_exit_2(checkpoint, tmp_path, capsys, args, message):
    source = _image(tmp_path / "a.png")
    args = [str(checkpoint) if arg == "MODEL" else arg for arg in args]
    assert main(["upscale", str(source), "-o", str(tmp_path / "b.png"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


_PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (unwritable even for root)")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("notes.txt/out.png", "notes.txt is a file, not a folder"),
        ("notes.txt/sub/out.png", "notes.txt is a file, not a folder"),
        pytest.param("/proc/nope/out.png", "cannot create the folder /proc/nope (", marks=_PROC),
        pytest.param("/proc/out.png", "cannot write in the folder /proc (", marks=_PROC),
    ],
)
def test_unusable_output_location_is_one_line_before_the_model_loads(
    tmp_path, monkeypatch, capsys, output, message
):
    """The checkpoint does not exist either: its error would win if the model were loaded first."""
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("a file where a folder should be")
    source = _image(tmp_path / "a.png")
    assert main(["upscale", str(source), "-o", output, "--model", "nowhere.pt", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dpsrgan upscale: error: -o {output}: {message}"), err
    assert err.endswith("; choose another -o") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "notes.txt"]


def test_folder_run_checks_every_output_folder_before_writing_any(checkpoint, tmp_path, capsys):
    _image(tmp_path / "photos" / "a.png")
    _image(tmp_path / "photos" / "trip" / "b.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "trip").write_text("a file where the mirrored subfolder goes")
    assert _upscale(checkpoint, tmp_path / "photos", "-o", out, "--recursive") == 2
    err = capsys.readouterr().err.strip()
    expected = f"-o {out}: {out / 'trip'} is a file, not a folder; choose another -o"
    assert err == f"dpsrgan upscale: error: {expected}"
    assert [p.name for p in out.iterdir()] == ["trip"]  # a.png was not upscaled first


def test_folder_run_reports_a_failed_write_like_a_failed_input(checkpoint, tmp_path, capsys, caplog):
    for i, name in enumerate("abc"):
        _image(tmp_path / "in" / f"{name}.png", seed=i)
    out = tmp_path / "out"
    (out / "b.png").mkdir(parents=True)  # the final rename cannot replace a folder
    with caplog.at_level(logging.ERROR):
        assert _upscale(checkpoint, tmp_path / "in", "-o", out) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"{out / 'b.png'}: cannot write (Is a directory)"]
    assert "wrote 2, skipped 0 existing, failed 1" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]  # no .part, no probe
    assert (out / "a.png").is_file() and (out / "b.png").is_dir() and (out / "c.png").is_file()
