"""Uploads are read as `dpsrgan upscale` reads files, and the MLflow pyfunc answers as the CLI writes.

* bytes and files decode to the same arrays, mode and ICC profile (EXIF orientation applied);
* the pyfunc, through MLflow's own scoring code (``scoring_server.invocations``, what
  ``mlflow models serve`` runs), returns the CLI's PNG byte for byte for every image mode, a
  JPEG with EXIF orientation 6 and an ICC-tagged image;
* every malformed upload is a 400 whose message is our one line: no traceback, no ``stack_trace``,
  no echo of the input.

``sample_uploads``/``bad_uploads`` are shared with the Ray Serve tests.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import struct
import zlib
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from PIL import Image, ImageCms

from dpsrgan.inference import upscale_paths
from dpsrgan.inference.images import decode_image, decode_planes, encode_image, load_planes, save_image
from dpsrgan.lifecycle.serving import log_pyfunc
from tests._tiny import save_tiny_generator, smooth_image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` (a decompression bomb's calling card)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")


@functools.cache
def sample_uploads() -> dict[str, bytes]:
    """Image files of every mode the CLI handles, plus EXIF orientation 6 and an ICC profile.
    Made once: a new sRGB profile carries the time it was made, so two calls would differ."""
    rgb = Image.fromarray(smooth_image(1, 20)).crop((0, 0, 20, 14))
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    gray16 = Image.fromarray((np.asarray(rgb.convert("L"), np.uint16) * 257 + 3).astype(np.uint16))
    exif = rgb.getexif()
    exif[0x0112] = 6  # stored 20 wide x 14 tall, displayed rotated: 14 x 20
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return {
        "rgb.png": _encoded(rgb, "PNG"),
        "gray.png": _encoded(rgb.convert("L"), "PNG"),
        "rgba.png": _encoded(rgba, "PNG"),
        "gray16.png": _encoded(gray16, "PNG"),
        "palette.png": _encoded(rgb.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "exif6.jpg": _encoded(rgb, "JPEG", exif=exif.tobytes(), quality=90),
        "icc.png": _encoded(rgb, "PNG", icc_profile=srgb),
    }


def bad_uploads() -> dict[str, tuple[bytes, str]]:
    """Malformed uploads → the start of the reason our one line gives."""
    photo = _encoded(Image.fromarray(smooth_image(2, 48)), "PNG")
    jpeg = _encoded(Image.fromarray(smooth_image(3, 48)), "JPEG")
    return {
        "empty": (b"", "empty, not an image"),
        "text": (b"hello, not an image\n", "not an image"),
        "truncated png": (photo[: len(photo) // 2], "not a readable image"),
        "truncated jpeg": (jpeg[: len(jpeg) // 2], "not a readable image"),
        "60000x60000 header": (png_claiming(60000, 60000), "the image is over the pixel limit"),
        "float tiff": (_encoded(Image.new("F", (4, 4)), "TIFF"), "32-bit float (mode F) images are not supported"),
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("parity") / "g.pt", seed=5)


@pytest.fixture(scope="module")
def cli_outputs(checkpoint, tmp_path_factory) -> dict[str, bytes]:
    """What `dpsrgan upscale` writes for each sample (its defaults: tile 512, auto device/precision)."""
    folder = tmp_path_factory.mktemp("cli")
    for name, data in sample_uploads().items():
        (folder / name).write_bytes(data)
    report = upscale_paths([folder], folder / "out", str(checkpoint), progress=False)
    assert report.ok
    return {name: (folder / "out" / Path(name).with_suffix(".png").name).read_bytes() for name in sample_uploads()}


@pytest.mark.parametrize("name", sorted(sample_uploads()))
def test_bytes_decode_like_the_file(name, tmp_path):
    data = sample_uploads()[name]
    (tmp_path / name).write_bytes(data)
    from_file, from_bytes = load_planes(tmp_path / name), decode_planes(data, "upload", 10**6)
    (file_planes, file_mode, file_icc), (planes, mode, icc) = from_file, from_bytes
    assert (mode, icc) == (file_mode, file_icc)
    assert np.array_equal(planes.color, file_planes.color)
    assert (planes.alpha is None) == (file_planes.alpha is None)
    image = decode_image(data, "upload", 10**6)
    save_image(image, tmp_path / "saved.png", "PNG")
    assert encode_image(image, "PNG") == (tmp_path / "saved.png").read_bytes()


@pytest.mark.parametrize("name", sorted(bad_uploads()))
def test_bad_uploads_are_one_line_naming_the_upload(name):
    data, reason = bad_uploads()[name]
    with pytest.raises(Exception) as raised:
        decode_planes(data, "upload", 10**6)
    message = str(raised.value)
    assert message.startswith(f"upload: {reason}") and "\n" not in message


@pytest.fixture(scope="module")
def scoring_model(checkpoint, tmp_path_factory):
    """The pyfunc as `mlflow models serve` loads it: logged to a local store, loaded by MLflow."""
    root = tmp_path_factory.mktemp("mlflow-local")
    previous = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri keeps the env in step
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        mlflow.set_experiment("parity")
        with mlflow.start_run():
            info = log_pyfunc(checkpoint)
        yield mlflow.pyfunc.load_model(info.model_uri)
    finally:
        mlflow.set_tracking_uri(previous)


def _invoke(model, cells: list[str]):
    body = json.dumps({"dataframe_records": [{"image_b64": cell} for cell in cells]})
    return scoring_server.invocations(body, "application/json", model, model.metadata.get_input_schema())


def test_the_pyfunc_returns_the_clis_png_byte_for_byte(scoring_model, cli_outputs):
    names = sorted(sample_uploads())
    answer = _invoke(scoring_model, [base64.b64encode(sample_uploads()[name]).decode() for name in names])
    assert answer.status == 200
    served = [base64.b64decode(row["sr_b64"]) for row in json.loads(answer.response)["predictions"]]
    for name, png in zip(names, served, strict=True):
        assert png == cli_outputs[name], name
    rotated = Image.open(io.BytesIO(served[names.index("exif6.jpg")]))
    assert rotated.size == (14 * 4, 20 * 4)  # the displayed orientation, as the CLI writes it
    assert Image.open(io.BytesIO(served[names.index("icc.png")])).info.get("icc_profile")


@pytest.mark.parametrize("name", sorted(bad_uploads()))
def test_the_pyfunc_answers_a_bad_upload_with_our_line_and_no_traceback(scoring_model, name):
    data, reason = bad_uploads()[name]
    good = base64.b64encode(sample_uploads()["rgb.png"]).decode()
    with pytest.raises(MlflowException) as raised:
        _invoke(scoring_model, [good, base64.b64encode(data).decode()])
    body = json.loads(raised.value.serialize_as_json())
    assert raised.value.get_http_status_code() == 400
    assert body["message"].startswith(f"row 1: {reason}") and "\n" not in body["message"]
    assert "stack_trace" not in body and "Failed to predict" not in body["message"]


def test_the_pyfunc_refuses_what_is_not_base64(scoring_model):
    with pytest.raises(MlflowException) as raised:
        _invoke(scoring_model, ["@@not base64@@"])
    assert json.loads(raised.value.serialize_as_json())["message"] == "row 0: image_b64 is not valid base64"
