"""``dpsrgan export`` and the exported-model backends, all on real computation: torch.onnx
export, ONNX Runtime and OpenVINO runs, NNCF quantisation, a real ``mlflow server``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dpsrgan.checkpoint import load_generator, save_generator
from dpsrgan.cli import main
from dpsrgan.errors import DpsrganError
from dpsrgan.export.build import Int8Options, export
from dpsrgan.export.runtime import load_exported
from dpsrgan.export.verify import TOLERANCE, verify
from dpsrgan.models.generator import Generator
from tests._upscale_helpers import smooth_rgb, tiny_generator

BACKEND_OF = {"onnx": "onnxruntime", "openvino": "openvino"}
SUFFIX_OF = {"onnx": ".onnx", "openvino": ".xml"}


def _skip_generator(seed: int) -> Generator:
    """The bicubic-skip form with a trained-like (non-zero) tail, so both branches matter."""
    torch.manual_seed(seed)
    model = Generator(scale=4, channels=8, num_blocks=2, bicubic_skip=True)
    torch.nn.init.normal_(model.tail.weight, std=0.02)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[bool, Path]:
    """bicubic_skip → a tiny checkpoint of that form."""
    root = tmp_path_factory.mktemp("export-models")
    return {
        False: save_generator(tiny_generator(0), root / "paper.pt", seed=0, purpose="test"),
        True: save_generator(_skip_generator(1), root / "skip.pt", seed=1, purpose="test"),
    }


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory) -> dict[tuple[bool, str], Path]:
    """(bicubic_skip, format) → the file `dpsrgan export` wrote (CLI, both forms, both formats)."""
    root = tmp_path_factory.mktemp("exports")
    files = {}
    for skip, checkpoint in checkpoints.items():
        for fmt in ("onnx", "openvino"):
            target = root / f"{checkpoint.stem}{SUFFIX_OF[fmt]}"
            assert main(["export", str(checkpoint), "--format", fmt, "-o", str(target)]) == 0
            files[skip, fmt] = target
    return files


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("skip", [False, True], ids=["paper", "bicubic_skip"])
def test_export_matches_torch_at_two_sizes_through_one_model(exported, checkpoints, skip, fmt):
    path = exported[skip, fmt]
    assert path.is_file() and not _leftovers(path.parent)
    if fmt == "openvino":
        assert path.with_suffix(".bin").is_file()
    model = load_exported(path, BACKEND_OF[fmt], "fp32")
    generator = load_generator(checkpoints[skip])
    rng = np.random.default_rng(3)
    for shape in [(1, 3, 23, 37), (3, 3, 9, 14), (1, 3, 1, 2)]:  # dynamic batch, height and width
        lr = rng.random(shape, dtype=np.float32)
        with torch.inference_mode():
            expected = generator(torch.from_numpy(lr)).numpy()
        actual = model(lr)
        assert actual.shape == expected.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
        assert np.abs(actual - expected).max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_metadata_carries_config_and_provenance(exported, checkpoints, fmt):
    path, checkpoint = exported[True, fmt], checkpoints[True]
    metadata = load_exported(path, BACKEND_OF[fmt], "fp32").metadata
    assert json.loads(metadata["architecture"]) == load_generator(checkpoint).config
    assert metadata["scale"] == "4" and int(metadata["receptive_radius"]) == load_generator(checkpoint).receptive_radius
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert metadata["source"] == str(checkpoint)
    assert json.loads(metadata["checkpoint_provenance"]) == {"seed": 1, "purpose": "test"}
    assert metadata["dpsrgan_version"] and metadata["git_commit"] and metadata["precision"] == "fp32"
    if fmt == "onnx":  # the standard place other tools read: ONNX metadata_props
        import onnx

        props = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
        assert props["dpsrgan.checkpoint_sha256"] == metadata["checkpoint_sha256"]


def test_verification_fails_on_tampered_weights(exported, checkpoints, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(exported[False, "onnx"]))
    largest = max(model.graph.initializer, key=lambda tensor: int(np.prod(tensor.dims)))
    weights = numpy_helper.to_array(largest).copy()
    weights.flat[0] += 0.5  # one weight of one conv
    largest.CopyFrom(numpy_helper.from_array(weights, largest.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))
    generator = load_generator(checkpoints[False])
    assert verify(load_exported(exported[False, "onnx"], "onnxruntime"), generator) <= TOLERANCE
    with pytest.raises(DpsrganError, match=r"verification failed on onnxruntime: max \|exported - torch\| = .* > tolerance 0.001"):
        verify(load_exported(tampered, "onnxruntime"), generator)


def test_failed_verification_leaves_nothing(checkpoints, tmp_path):
    with pytest.raises(DpsrganError, match="verification failed") as caught:
        export(str(checkpoints[False]), "onnx", tmp_path / "model.onnx", tolerance=0.0)  # fp32 rounding > 0
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def _bad_inputs(tmp_path: Path, checkpoint: Path) -> dict[str, tuple[list[str], str]]:
    foreign = tmp_path / "in" / "foreign.pt"
    foreign.parent.mkdir()
    torch.save({"weights": torch.zeros(3)}, foreign)
    text = tmp_path / "in" / "notes.pt"
    text.write_text("not a checkpoint")
    blocker = tmp_path / "out" / "file"
    blocker.parent.mkdir()
    blocker.write_text("a file where a folder should be")
    out = str(tmp_path / "out" / "model.onnx")
    return {
        "not a generator": ([str(foreign), "--format", "onnx", "-o", out], "not a DPSRGAN generator checkpoint"),
        "not a checkpoint": ([str(text), "--format", "onnx", "-o", out], "not loadable as a weights-only"),
        "missing": ([str(tmp_path / "nope.pt"), "--format", "onnx", "-o", out], "no such checkpoint file"),
        "unwritable -o": ([str(checkpoint), "--format", "onnx", "-o", str(blocker / "m.onnx")], "cannot write in"),
        "wrong suffix": ([str(checkpoint), "--format", "openvino", "-o", out], "end -o in .xml"),
        "int8 with onnx": ([str(checkpoint), "--format", "onnx", "--int8", "--calibration", "x", "--heldout", "y", "-o", out], "--int8 needs --format openvino"),
        "int8 without data": ([str(checkpoint), "--format", "openvino", "--int8"], "--int8 needs --calibration"),
    }


def test_bad_input_is_one_line_nonzero_and_leaves_nothing(checkpoints, tmp_path, capsys):
    for case, (args, message) in _bad_inputs(tmp_path, checkpoints[False]).items():
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        assert main(["export", *args]) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("dpsrgan export: error: ") and message in err and "\n" not in err, (case, err)
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, case
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices: usage + one error line
        main(["export", str(checkpoints[False]), "--format", "tflite"])
    assert exit_info.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(DpsrganError, match="--format must be one of onnx, openvino"):
        export(str(checkpoints[False]), "tflite", tmp_path / "m.tflite")


# ---- dpsrgan upscale --backend -------------------------------------------------------------


def _images(folder: Path) -> Path:
    folder.mkdir()
    rgb = smooth_rgb(45, 61, seed=1)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.linspace(0, 255, 45 * 61).reshape(45, 61).astype(np.uint8)]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb[..., 1]).save(folder / "gray.png")
    return folder


def _read_all(folder: Path) -> dict[str, tuple[str, np.ndarray]]:
    return {p.name: (Image.open(p).mode, np.asarray(Image.open(p)).astype(int)) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_upscale_backend_equals_torch_tiled_and_untiled(exported, checkpoints, tmp_path, fmt):
    inputs = _images(tmp_path / "in")
    runs = {
        "torch": ["--backend", "torch", "--model", str(checkpoints[True])],
        "exported": ["--backend", BACKEND_OF[fmt], "--model", str(exported[True, fmt])],
    }
    results = {}
    for name, args in runs.items():
        for tile in ("16", "0"):
            out = tmp_path / f"{name}-{tile}"
            assert main(["upscale", str(inputs), "-o", str(out), "--tile", tile, "--precision", "fp32", *args]) == 0
            results[name, tile] = _read_all(out)
    reference = results["torch", "0"]
    for key, images in results.items():
        assert images.keys() == reference.keys() == {"rgb.png", "rgba.png", "gray.png"}
        for image, (mode, pixels) in images.items():
            assert mode == reference[image][0] and pixels.shape == reference[image][1].shape, (key, image)
            assert np.abs(pixels - reference[image][1]).max() <= 1, (key, image)  # rounding ties only
    for image in reference:  # tiled equals untiled on the exported backend too
        assert np.abs(results["exported", "16"][image][1] - results["exported", "0"][image][1]).max() <= 1


@pytest.mark.slow
def test_exported_backends_run_without_torch(exported, tmp_path):
    image = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(20, 24)).save(image)
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "from dpsrgan.cli import main\n"
        f"assert main(['upscale', {str(image)!r}, '-o', {str(tmp_path / 'ort.png')!r}, '--backend', 'onnxruntime', "
        f"'--model', {str(exported[True, 'onnx'])!r}, '--tile', '8']) == 0\n"
        f"assert main(['upscale', {str(image)!r}, '-o', {str(tmp_path / 'ov.png')!r}, '--backend', 'openvino', "
        f"'--model', {str(exported[True, 'openvino'])!r}, '--tile', '8']) == 0\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(tmp_path / "ort.png").size == Image.open(tmp_path / "ov.png").size == (96, 80)


def test_backend_refuses_the_wrong_kind_of_file(checkpoints, tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(8, 8)).save(image)
    code = main(["upscale", str(image), "-o", str(tmp_path / "o.png"), "--backend", "onnxruntime", "--model", str(checkpoints[False])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "the onnxruntime backend runs .onnx files written by `dpsrgan export`" in err
    assert not (tmp_path / "o.png").exists()


# ---- int8 -------------------------------------------------------------------------------------


def _photo_folder(folder: Path, count: int, seed: int, size: int = 48) -> Path:
    folder.mkdir()
    for index in range(count):
        Image.fromarray(smooth_rgb(size, size, seed + index)).save(folder / f"{index}.png")
    return folder


@pytest.mark.slow
def test_int8_ships_only_within_its_psnr_limit(checkpoints, tmp_path, capsys):
    calibration = _photo_folder(tmp_path / "train", 6, seed=10)
    heldout = _photo_folder(tmp_path / "test", 3, seed=50)
    accepted = export(
        str(checkpoints[True]), "openvino", tmp_path / "ok" / "g.int8.xml",
        int8_options=Int8Options(calibration, heldout, max_delta_db=10.0),
    )
    quality = accepted.quality
    assert quality is not None and quality.images == 3 and quality.delta_mean != 0.0  # int8 moved the output
    int8_model = load_exported(accepted.path, "openvino", "fp32")
    assert int8_model.metadata["precision"] == "int8" and int8_model(np.zeros((1, 3, 5, 7), np.float32)).shape == (1, 3, 20, 28)
    limit = abs(quality.delta_mean) / 2  # the same measurement, now over the limit
    refused = tmp_path / "refused"
    code = main([
        "export", str(checkpoints[True]), "--format", "openvino", "-o", str(refused / "g.int8.xml"), "--int8",
        "--calibration", str(calibration), "--heldout", str(heldout), "--max-delta-db", str(limit),
    ])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert f"int8 refused: int8 vs fp32 PSNR-Y on 3 held-out image(s): mean delta {quality.delta_mean:+.3f} dB" in err
    assert list(refused.iterdir()) == []


# ---- registry ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_registered_version_carries_its_onnx_and_exports_by_alias(checkpoints, tmp_path, mlflow_server, monkeypatch, capsys):
    from mlflow import MlflowClient

    from dpsrgan.lifecycle.registry import register_generator

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    name = f"sr-{uuid.uuid4().hex[:8]}"
    version = register_generator(
        checkpoints[True], registered_model=name, experiment=f"test-{name}",
        metrics={"psnr_y": 30.0, "ssim_y": 0.8}, params={}, tags={}, tracking_uri=mlflow_server.tracking_uri,
    )
    MlflowClient(mlflow_server.tracking_uri).set_registered_model_alias(name, "champion", version.version)
    uri = f"models:/{name}@champion"

    assert main(["export", uri, "--format", "onnx", "-o", "champion.onnx"]) == 0
    metadata = load_exported(tmp_path / "champion.onnx", "onnxruntime").metadata
    assert metadata["source"] == uri
    assert metadata["checkpoint_sha256"] == hashlib.sha256(checkpoints[True].read_bytes()).hexdigest()

    image = tmp_path / "in.png"
    Image.fromarray(smooth_rgb(20, 24)).save(image)
    assert main(["upscale", str(image), "-o", "reg.png", "--backend", "onnxruntime", "--model", uri]) == 0
    assert main(["upscale", str(image), "-o", "torch.png", "--model", str(checkpoints[True]), "--precision", "fp32"]) == 0
    registered, reference = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("reg.png", "torch.png"))
    assert np.abs(registered - reference).max() <= 1
    assert "wrote" in capsys.readouterr().out
