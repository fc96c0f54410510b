"""Serving: the pyfunc's predict contract in-process, then live on loopback — `mlflow models serve`
of models:/NAME@champion answering an image request, and `dpsrgan upscale --model models:/...`."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModelContext
from PIL import Image

from dpsrgan.checkpoint import load_generator
from dpsrgan.cli import build_parser
from dpsrgan.cli import main as cli_main
from dpsrgan.inference import upscale
from dpsrgan.lifecycle.client import CHAMPION
from dpsrgan.lifecycle.registry import register_generator
from dpsrgan.lifecycle.serving import (
    DEFAULT_CONFIG,
    SRPyfunc,
    image_to_b64,
    pinned_requirements,
)
from dpsrgan.upscale_defaults import SERVE_MAX_PIXELS
from tests._tiny import save_tiny_generator, smooth_image
from tests.fixtures.services import free_port, stop_group, wait_http
from tests.test_serve_parity import bad_uploads


def _pixels(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_generator(tmp_path_factory.mktemp("serving") / "g.pt", seed=3)


@pytest.fixture(scope="module")
def pyfunc(checkpoint):
    model = SRPyfunc()
    model.load_context(
        PythonModelContext(artifacts={"weights": str(checkpoint)}, model_config={"precision": "fp32"})
    )
    return model


def test_predict_upscales_rgb_gray_and_alpha_as_png(pyfunc, checkpoint):
    rgb = Image.fromarray(smooth_image(1, 12))
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize((12, 12)))
    gray = rgb.convert("L")
    frame = pd.DataFrame({"image_b64": [image_to_b64(rgb), image_to_b64(rgba, "WEBP"), image_to_b64(gray)]})
    out = [_pixels(text) for text in pyfunc.predict(None, frame)["sr_b64"]]
    assert [(image.format, image.mode, image.size) for image in out] == [
        ("PNG", "RGB", (48, 48)),
        ("PNG", "RGBA", (48, 48)),
        ("PNG", "L", (48, 48)),
    ]
    expected = upscale(rgb, load_generator(checkpoint), tile=DEFAULT_CONFIG["tile"], precision="fp32")
    assert np.array_equal(np.asarray(out[0]), np.asarray(expected))


def test_predict_rejects_bad_input_with_the_row_number(pyfunc):
    with pytest.raises(MlflowException, match="row 1: image_b64 is not valid base64"):
        pyfunc.predict(None, pd.DataFrame({"image_b64": [image_to_b64(Image.new("RGB", (4, 4))), "@@"]}))
    not_image = base64.b64encode(b"hello").decode()
    with pytest.raises(MlflowException, match="row 0: not an image"):
        pyfunc.predict(None, pd.DataFrame({"image_b64": [not_image]}))
    with pytest.raises(MlflowException, match="needs a 'image_b64' column"):
        pyfunc.predict(None, pd.DataFrame({"image": ["x"]}))


def test_served_model_tiles_like_the_cli():
    cli_defaults = build_parser().parse_args(["upscale", "in.png", "-o", "out.png", "--model", "g.pt"])
    assert DEFAULT_CONFIG["tile"] == cli_defaults.tile


def test_the_models_max_pixels_refuses_larger_uploads(checkpoint):
    model = SRPyfunc()
    model.load_context(PythonModelContext(artifacts={"weights": str(checkpoint)}, model_config={"max_pixels": 100}))
    with pytest.raises(MlflowException, match=r"row 0: 20x20 = 400 pixels is over the pixel limit of 100; send a smaller"):
        model.predict(None, pd.DataFrame({"image_b64": [image_to_b64(Image.new("RGB", (20, 20)))]}))
    assert DEFAULT_CONFIG["max_pixels"] == SERVE_MAX_PIXELS


def test_requirements_are_exact_pins_without_local_labels():
    pins = pinned_requirements()
    assert all("==" in pin and "+" not in pin for pin in pins)
    assert {pin.split("==")[0] for pin in pins} >= {"mlflow", "torch", "pillow", "pandas", "numpy"}


@pytest.fixture(scope="module")
def champion(checkpoint, mlflow_server, tmp_path_factory):
    """A registered tiny generator with the champion alias, on the real tracking server."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("register"))
    try:
        name = f"serve-{uuid.uuid4().hex[:8]}"
        version = register_generator(
            checkpoint,
            registered_model=name,
            experiment=f"test-{name}",
            metrics={"psnr_y": 25.0, "ssim_y": 0.7},
            params={},
            tags={},
            tracking_uri=mlflow_server.tracking_uri,
        )
        MlflowClient(mlflow_server.tracking_uri).set_registered_model_alias(name, CHAMPION, version.version)
    finally:
        os.chdir(cwd)
    return f"models:/{name}@{CHAMPION}"


@pytest.mark.slow
def test_mlflow_models_serve_answers_an_image_request(champion, checkpoint, mlflow_server, tmp_path):
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.tracking_uri)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            champion,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=120, proc=proc)
        image = Image.fromarray(smooth_image(7, 16))
        body = json.dumps({"dataframe_records": [{"image_b64": image_to_b64(image)}]}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = json.load(response)["predictions"]
        served = _pixels(predictions[0]["sr_b64"])
        assert served.size == (64, 64) and served.mode == "RGB"
        # Same engine, same settings as the model's config: the served pixels are the local ones.
        local = upscale(
            image,
            load_generator(checkpoint),
            tile=DEFAULT_CONFIG["tile"],
            precision=DEFAULT_CONFIG["precision"],
        )
        assert np.abs(np.asarray(served, np.int16) - np.asarray(local, np.int16)).max() <= 1

        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": [{"image_b64": "@@"}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=60)
        assert refused.value.code == 400 and "not valid base64" in refused.value.read().decode()

        for name, (data, reason) in bad_uploads().items():  # the live server: 400, our line, no trace
            body = json.dumps({"dataframe_records": [{"image_b64": base64.b64encode(data).decode()}]}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            error = json.loads(refused.value.read())
            assert refused.value.code == 400 and error["message"].startswith(f"row 0: {reason}"), name
            assert "stack_trace" not in error and "\n" not in error["message"], name
    finally:
        stop_group(proc)
        log.close()


@pytest.mark.slow
def test_dpsrgan_upscale_loads_the_champion_from_the_registry(
    champion, checkpoint, mlflow_server, tmp_path, monkeypatch, capsys
):
    source = tmp_path / "face.png"
    Image.fromarray(smooth_image(9, 20)).save(source)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.tracking_uri)
    args = ["upscale", str(source), "--precision", "fp32", "--device", "cpu", "--no-progress"]
    assert cli_main([*args, "-o", str(tmp_path / "sr.png"), "--model", champion]) == 0
    served = Image.open(tmp_path / "sr.png")
    local = upscale(Image.open(source), load_generator(checkpoint), precision="fp32", device="cpu")
    assert served.size == (80, 80)
    assert np.array_equal(np.asarray(served), np.asarray(local))

    capsys.readouterr()
    assert (
        cli_main([*args, "-o", str(tmp_path / "x.png"), "--model", champion.replace(CHAMPION, "nosuchalias")])
        == 2
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "nosuchalias" in error[0], error
