"""Image files through the real file path (``upscale_paths`` with a tiny generator): every mode
keeps its meaning, EXIF orientation and ICC profiles are honoured, bad files are refused with
one line naming them, and writes are atomic."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from dpsrgan.errors import DpsrganError
from dpsrgan.inference import upscale, upscale_paths
from dpsrgan.inference.images import read_image, save_image
from tests._upscale_helpers import smooth_rgb, tiny_generator


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


def _run(generator, source: Path, target: Path, **options) -> Image.Image:
    report = upscale_paths([source], target, generator, device="cpu", precision="fp32", tile=8, **options)
    assert report.ok, report.failed
    return Image.open(target)


def _png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    height, width, channels = array.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_rgba_keeps_alpha_upscaled_bicubically(generator, tmp_path):
    rgb = smooth_rgb(10, 14)
    alpha = np.zeros((10, 14), np.uint8)
    alpha[2:8, 3:11] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "in.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = _run(generator, tmp_path / "in.png", tmp_path / "out.png")
    rgb_only = _run(generator, tmp_path / "rgb.png", tmp_path / "rgb_out.png")
    assert out.mode == "RGBA" and out.size == (56, 40)
    smooth = Image.fromarray(alpha.astype(np.float32)).resize((56, 40), Image.Resampling.BICUBIC)  # mode F
    expected_alpha = np.clip(np.asarray(smooth), 0, 255).round()
    out_alpha = np.asarray(out)[..., 3]
    assert np.abs(out_alpha - expected_alpha).max() <= 1
    assert out_alpha[16:24, 20:36].min() == 255 and out_alpha[:, :4].max() == 0
    np.testing.assert_array_equal(np.asarray(out)[..., :3], np.asarray(rgb_only))  # alpha never touches colour


def test_gray_in_gray_out(generator, tmp_path):
    gray = smooth_rgb(9, 12)[..., 1]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    out = _run(generator, tmp_path / "gray.png", tmp_path / "out.png")
    assert out.mode == "L" and out.size == (48, 36)
    via_rgb = upscale(np.dstack([gray] * 3), generator, tile=8, device="cpu", precision="fp32")
    luma = np.asarray(Image.fromarray(via_rgb).convert("L")).astype(int)
    assert np.abs(np.asarray(out).astype(int) - luma).max() <= 1


def test_la_keeps_gray_and_alpha(generator, tmp_path):
    la = Image.merge("LA", (Image.fromarray(smooth_rgb(8, 8)[..., 0]), Image.new("L", (8, 8), 128)))
    la.save(tmp_path / "la.png")
    out = _run(generator, tmp_path / "la.png", tmp_path / "out.png")
    assert out.mode == "LA" and out.size == (32, 32)
    assert set(np.unique(np.asarray(out)[..., 1])) == {128}


def test_palette_becomes_rgb_and_transparency_becomes_alpha(generator, tmp_path):
    palette = Image.fromarray(smooth_rgb(8, 12)).quantize(16)
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "p_transparent.png", transparency=0)
    out = _run(generator, tmp_path / "p.png", tmp_path / "out.png")
    transparent = _run(generator, tmp_path / "p_transparent.png", tmp_path / "out_t.png")
    assert out.mode == "RGB" and out.size == (48, 32)
    assert transparent.mode == "RGBA"
    hidden = np.asarray(palette) == 0
    alpha = np.asarray(transparent)[..., 3][1::4, 1::4]  # one output pixel inside each input pixel
    assert alpha[hidden].mean() < alpha[~hidden].mean()


def test_16bit_gray_png_stays_16bit(generator, tmp_path):
    values = (smooth_rgb(8, 10)[..., :1].astype(np.uint16) * 257 + 77)
    (tmp_path / "deep.png").write_bytes(_png16(values))
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    out = _run(generator, tmp_path / "deep.png", tmp_path / "out.png")
    assert out.mode == "I;16" and out.size == (40, 32)
    pixels = np.asarray(out)
    assert np.count_nonzero(pixels % 257) > pixels.size // 2  # real 16-bit values, not 8-bit × 257


def test_16bit_colour_png_is_upscaled_at_8_bits_with_a_warning(generator, tmp_path, caplog):
    (tmp_path / "deep_rgb.png").write_bytes(_png16((np.random.default_rng(0).random((6, 6, 3)) * 65535).astype(np.uint16)))
    with caplog.at_level(logging.WARNING, logger="dpsrgan.inference"):
        out = _run(generator, tmp_path / "deep_rgb.png", tmp_path / "out.png")
    assert out.mode == "RGB"
    assert any("16-bit colour PNG" in r.getMessage() and "deep_rgb.png" in r.getMessage() for r in caplog.records)


def test_exif_orientation_is_applied(generator, tmp_path):
    image = Image.fromarray(smooth_rgb(6, 10))  # stored 10 wide × 6 tall
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image.save(tmp_path / "photo.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "photo.jpg").size == (6, 10)
    out = _run(generator, tmp_path / "photo.jpg", tmp_path / "out.png")
    assert out.size == (24, 40)  # displayed orientation, ×4
    assert out.getexif().get(0x0112) in (None, 1)


def test_icc_profile_is_kept(generator, tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(smooth_rgb(6, 6)).save(tmp_path / "tagged.jpg", icc_profile=profile)
    out = _run(generator, tmp_path / "tagged.jpg", tmp_path / "out.png")
    assert out.info.get("icc_profile") == profile
    jpeg_out = _run(generator, tmp_path / "tagged.jpg", tmp_path / "out.webp")
    assert jpeg_out.info.get("icc_profile") == profile


def test_cmyk_is_converted_and_its_profile_dropped(generator, tmp_path):
    Image.fromarray(smooth_rgb(6, 6)).convert("CMYK").save(tmp_path / "print.jpg")
    out = _run(generator, tmp_path / "print.jpg", tmp_path / "out.png")
    assert out.mode == "RGB" and out.size == (24, 24)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"hello, not an image\n", "not an image"), ("truncated", "not a readable image")],
)
def test_bad_files_are_one_line_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content == "truncated":
        Image.fromarray(smooth_rgb(40, 40)).save(path)
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(DpsrganError) as error:
        read_image(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and reason in message


def test_pixel_limit_is_refused_before_decoding(tmp_path):
    Image.fromarray(smooth_rgb(20, 30)).save(tmp_path / "big.png")
    with pytest.raises(DpsrganError, match=r"30x20 = 600 pixels is over the pixel limit of 500.*--max-pixels"):
        read_image(tmp_path / "big.png", max_pixels=500)
    assert read_image(tmp_path / "big.png", max_pixels=600).size == (30, 20)


def test_pixel_limit_above_pillows_own_bomb_limit_is_honoured(tmp_path, monkeypatch):
    """--max-pixels overrides Pillow's decompression-bomb guard in both directions."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's guard, shrunk for the test
    Image.fromarray(smooth_rgb(20, 30)).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=1000).size == (30, 20)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_jpeg_output_refuses_alpha(generator, tmp_path):
    Image.new("RGBA", (4, 4), (10, 20, 30, 40)).save(tmp_path / "a.png")
    report = upscale_paths([tmp_path / "a.png"], tmp_path / "a.jpg", generator, device="cpu", precision="fp32")
    assert not report.ok and "JPEG cannot store the alpha channel" in report.failed[0][1]
    assert not (tmp_path / "a.jpg").exists()


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.png"
    target.mkdir()  # the final rename cannot replace a folder
    (target / "keep").write_text("x")
    with pytest.raises(DpsrganError, match="out.png: cannot write"):
        save_image(Image.new("RGB", (4, 4)), target, "PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert (target / "keep").read_text() == "x"
