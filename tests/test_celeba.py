"""CelebA end to end on a generated archive: fetched from moto S3, an HTTP mirror (with a dropped
connection), emulated Drive and a local zip; then degraded with the official partition."""

from __future__ import annotations

import io
import json
import logging
import zipfile

import numpy as np
import pytest
from PIL import Image

from dpsrgan.config import DegradeParams
from dpsrgan.data import celeba
from dpsrgan.data.pairs import centre_crop, resize_uint8
from dpsrgan.data.prepare import prepare
from dpsrgan.data.raw import download
from dpsrgan.data.shards import read_split, split_dirs
from dpsrgan.degradation import bicubic_downscale
from dpsrgan.errors import DpsrganError
from tests.fixtures.data import data_params


def celeba_params(celeba_files, uri: str, **extra):
    return data_params(source="celeba", uri=uri, md5=celeba_files.md5, **extra)


def assert_raw_complete(raw, celeba_files):
    images = celeba.images_dir(raw)
    assert images.name == "img_align_celeba"
    assert sorted(p.name for p in images.iterdir()) == sorted(
        [*celeba_files.broken, *(n for names in celeba_files.good.values() for n in names)]
    )
    assert (raw / celeba.PARTITION).read_bytes() == celeba_files.partition.read_bytes()
    assert json.loads((raw / "source.json").read_text()) == {"source": "celeba"}


def test_sources_for_each_uri(tmp_path):
    assert celeba.sources("gdrive")[celeba.ARCHIVE] == "gdrive:1zmsC4yvw-e089uHXj5EdP0BSZ0AlDQRR"
    assert celeba.sources("s3://bkt/pre/")[celeba.PARTITION] == "s3://bkt/pre/list_eval_partition.txt"
    assert celeba.sources("https://m.example/celeba")[celeba.ARCHIVE] == "https://m.example/celeba/img_align_celeba.zip"
    assert celeba.sources(str(tmp_path))[celeba.ARCHIVE] == str(tmp_path / celeba.ARCHIVE)
    zipped = celeba.sources(str(tmp_path / "copy.zip"))
    assert zipped == {celeba.ARCHIVE: str(tmp_path / "copy.zip"), celeba.PARTITION: str(tmp_path / celeba.PARTITION)}
    with pytest.raises(DpsrganError, match="data.uri=ftp://x"):
        celeba.sources("ftp://x")


def test_malformed_partition_names_the_line(tmp_path):
    path = tmp_path / celeba.PARTITION
    path.write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(DpsrganError, match=r"list_eval_partition.txt:2: expected"):
        celeba.read_partition(path)


def test_from_s3_with_licence_notice(celeba_files, s3_server, tmp_path, caplog):
    client = s3_server.client()
    client.create_bucket(Bucket="celeba-mirror")
    for name in (celeba.ARCHIVE, celeba.PARTITION):
        client.put_object(Bucket="celeba-mirror", Key=f"celeba/{name}", Body=celeba_files.bytes_of(name))
    params = celeba_params(celeba_files, "s3://celeba-mirror/celeba", s3_endpoint_url=s3_server.endpoint_url)
    with caplog.at_level(logging.WARNING):
        download(params, tmp_path / "raw", tmp_path / "cache")
    assert "non-commercial research purposes only" in caplog.text
    assert_raw_complete(tmp_path / "raw", celeba_files)
    assert (tmp_path / "cache" / celeba.ARCHIVE).is_file()


def test_from_http_mirror_after_a_dropped_connection(celeba_files, http_server, tmp_path, fast_retries):
    for name in (celeba.ARCHIVE, celeba.PARTITION):
        http_server.files[f"/mirror/celeba/{name}"] = celeba_files.bytes_of(name)
    http_server.drop_after[f"/mirror/celeba/{celeba.ARCHIVE}"] = 100_000
    download(celeba_params(celeba_files, f"{http_server.url}/mirror/celeba/"), tmp_path / "raw", tmp_path / "cache")
    assert_raw_complete(tmp_path / "raw", celeba_files)
    assert len(http_server.ranges_requested(f"/mirror/celeba/{celeba.ARCHIVE}")) == 1


def test_from_drive_through_the_confirmation_form(celeba_files, drive_server, tmp_path):
    for name, file_id in celeba.DRIVE_IDS.items():
        drive_server.drive_files[file_id] = celeba_files.bytes_of(name)
    drive_server.drive_mode = "form"
    download(celeba_params(celeba_files, "gdrive"), tmp_path / "raw", tmp_path / "cache")
    assert_raw_complete(tmp_path / "raw", celeba_files)


def test_from_local_zip_with_partition_beside_it(celeba_files, tmp_path):
    download(celeba_params(celeba_files, str(celeba_files.archive)), tmp_path / "raw", tmp_path / "cache")
    assert_raw_complete(tmp_path / "raw", celeba_files)
    assert not (tmp_path / "cache").exists()  # local files are verified in place, not copied


def test_degrade_faces_with_official_partition_and_rejects(celeba_files, celeba_raw, tmp_path):
    manifest = prepare(data_params(source="celeba"), DegradeParams(), celeba_raw, tmp_path / "processed", workers=1)
    splits = manifest["splits"]
    assert {s: splits[s]["rows"] for s in splits} == {s: len(names) for s, names in celeba_files.good.items()}
    assert all(splits[s]["hr_shape"] == [128, 128, 3] and splits[s]["lr_shape"] == [32, 32, 3] for s in splits)
    reasons = {entry["file"].rsplit("/", 1)[-1]: entry["reason"] for entry in manifest["rejected"]}
    assert set(reasons) == set(celeba_files.broken)
    for name, word in celeba_files.broken.items():
        assert word in reasons[name], (name, reasons[name])
    assert [len(s["shards"]) for s in splits.values()] == [2, 1, 1]  # 5 train rows, shard_rows=3

    train = list(read_split(split_dirs(tmp_path / "processed")["train"]))
    assert [s.id for s in train] == celeba_files.good["train"]
    first = train[0]
    with zipfile.ZipFile(celeba_files.archive) as zf:
        original = np.asarray(Image.open(io.BytesIO(zf.read(f"img_align_celeba/{first.id}"))).convert("RGB"))
    assert np.array_equal(first.hr, resize_uint8(centre_crop(original, 178, 178), 128))
    assert np.array_equal(first.lr, bicubic_downscale(first.hr, 4))
    on_disk = json.loads((tmp_path / "processed" / "manifest.json").read_text())
    assert on_disk == manifest and on_disk["params"]["data"]["source"] == "celeba"


def test_max_images_caps_each_split_in_id_order(celeba_raw, tmp_path):
    params = data_params(source="celeba", max_images={"train": 2, "valid": 1})
    manifest = prepare(params, DegradeParams(), celeba_raw, tmp_path / "processed", workers=1)
    assert manifest["inputs"] == 2 + 1 + 2
    assert [e["file"] for e in manifest["rejected"]] == ["celeba/img_align_celeba/000002.jpg"]
