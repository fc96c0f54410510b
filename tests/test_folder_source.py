"""Folder sources: listing, hash splits, skimage quickstart, patches for train, whole images for eval."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpsrgan.config import DegradeParams
from dpsrgan.data import folder
from dpsrgan.data.prepare import prepare
from dpsrgan.data.raw import download
from dpsrgan.data.shards import read_split, split_dirs
from dpsrgan.errors import DpsrganError
from dpsrgan.storage import ExtractLimits
from tests.fixtures.data import data_params, md5_bytes, photo


def make_tree(root: Path) -> dict[str, np.ndarray]:
    """Six RGB photos of assorted sizes in nested folders, plus files that are not photos."""
    sizes = {"a.png": (300, 260), "b.jpg": (200, 150), "sub/c.png": (700, 520), "sub/d.png": (160, 140),
             "sub/deeper/e.png": (256, 256), "f.png": (129, 131)}
    pixels = {}
    for i, (rel, (w, h)) in enumerate(sizes.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        image = photo(w, h, seed=i)
        image.save(path, quality=95) if rel.endswith(".jpg") else image.save(path)
        pixels[rel] = np.asarray(Image.open(path).convert("RGB"))
    (root / "README.txt").write_text("not a photo")
    (root / ".hidden").mkdir()
    photo(200, 200, seed=9).save(root / ".hidden" / "x.png")
    return pixels


def test_list_images_skips_hidden_and_non_images(tmp_path):
    make_tree(tmp_path)
    assert folder.list_images(tmp_path) == ["a.png", "b.jpg", "f.png", "sub/c.png", "sub/d.png", "sub/deeper/e.png"]


def test_hash_split_is_stable_and_proportional():
    names = [f"img{i:04d}.png" for i in range(400)]
    splits = folder.assign_splits(names, valid_fraction=0.1, test_fraction=0.2)
    counts = {s: sum(v == s for v in splits.values()) for s in ("train", "valid", "test")}
    assert 0.6 < counts["train"] / 400 < 0.8 and 0.04 < counts["valid"] / 400 < 0.16 and 0.13 < counts["test"] / 400 < 0.27
    grown = folder.assign_splits([*names, *(f"new{i}.png" for i in range(100))], 0.1, 0.2)
    assert all(grown[name] == split for name, split in splits.items())


@pytest.mark.parametrize("n", [3, 4, 5])
def test_tiny_folder_gets_every_split(n):
    names = [f"p{i}.jpg" for i in range(n)]
    splits = folder.assign_splits(names, 0.1, 0.1)
    assert set(splits.values()) == {"train", "valid", "test"}
    assert folder.assign_splits(list(reversed(names)), 0.1, 0.1) == splits


def test_fewer_than_three_images_is_an_error():
    with pytest.raises(DpsrganError, match="at least 3 images"):
        folder.assign_splits(["a.png", "b.png"], 0.1, 0.1)


def test_skimage_quickstart_source(tmp_path):
    limits = ExtractLimits(max_bytes=1, max_files=1)  # unused: nothing is extracted
    count = folder.materialise_folder("skimage", tmp_path / "images", tmp_path / "cache", md5={}, s3_endpoint_url=None, limits=limits)
    assert count == len(folder.SKIMAGE_PHOTOS) == 8
    for name in folder.SKIMAGE_PHOTOS:
        assert Image.open(tmp_path / "images" / name).mode == "RGB"


def test_patches_for_train_whole_images_for_eval(tmp_path):
    pixels = make_tree(tmp_path / "photos")
    data = data_params(source="folder", uri=str(tmp_path / "photos"), hr_size=64, patch_stride=48, eval_max_side=160,
                       valid_fraction=0.2, test_fraction=0.2)
    download(data, tmp_path / "raw", tmp_path / "cache")
    manifest = prepare(data, DegradeParams(scale=4), tmp_path / "raw", tmp_path / "processed", workers=1)
    splits = folder.assign_splits(list(pixels), 0.2, 0.2)
    dirs = split_dirs(tmp_path / "processed")

    train = list(read_split(dirs["train"]))
    expected_ids = []
    for rel in sorted(r for r, s in splits.items() if s == "train"):
        h, w = pixels[rel].shape[:2]
        expected_ids += [f"{rel}#y{y}x{x}" for y in range(0, h - 63, 48) for x in range(0, w - 63, 48)]
    assert [s.id for s in train] == expected_ids
    for sample in train:
        rel, _, pos = sample.id.partition("#y")
        top, left = (int(v) for v in pos.split("x"))
        assert np.array_equal(sample.hr, pixels[rel][top : top + 64, left : left + 64])
        assert sample.lr.shape == (16, 16, 3)
    assert manifest["splits"]["train"]["hr_shape"] == [64, 64, 3]

    for split in ("valid", "test"):
        for sample in read_split(dirs[split]):
            h, w = pixels[sample.id].shape[:2]
            eh, ew = min(h, 160) // 4 * 4, min(w, 160) // 4 * 4
            assert sample.hr.shape == (eh, ew, 3) and sample.lr.shape == (eh // 4, ew // 4, 3)
            top, left = (h - eh) // 2, (w - ew) // 2
            assert np.array_equal(sample.hr, pixels[sample.id][top : top + eh, left : left + ew])


def test_folder_zip_from_an_http_mirror(tmp_path, http_server):
    make_tree(tmp_path / "photos")
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel in folder.list_images(tmp_path / "photos"):
            zf.write(tmp_path / "photos" / rel, f"holiday/{rel}")
    http_server.files["/share/photos.zip"] = archive.read_bytes()
    data = data_params(source="folder", uri=f"{http_server.url}/share/photos.zip", md5={"photos.zip": md5_bytes(archive.read_bytes())})
    download(data, tmp_path / "raw", tmp_path / "cache")
    assert folder.list_images(tmp_path / "raw" / "images") == [f"holiday/{r}" for r in folder.list_images(tmp_path / "photos")]


def test_raw_dir_of_another_source_is_refused(celeba_raw, tmp_path):
    with pytest.raises(DpsrganError, match="holds a 'celeba' source but data.source=folder"):
        prepare(data_params(source="folder"), DegradeParams(), celeba_raw, tmp_path / "out", workers=1)
