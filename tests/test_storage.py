"""Fetching from HTTP mirrors, Google Drive (emulated on loopback), moto S3 and local paths."""

from __future__ import annotations

import logging

import pytest

from dpsrgan.data.celeba import DRIVE_IDS
from dpsrgan.errors import DpsrganError
from dpsrgan.storage import fetch, redact
from dpsrgan.storage.checksum import ChecksumError
from dpsrgan.storage.gdrive import DriveQuotaError
from tests.fixtures.data import QUOTA_PAGE, md5_bytes

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, not HTML


def test_http_download_verifies_and_is_not_fetched_twice(http_server, tmp_path):
    http_server.files["/mirror/blob.bin"] = PAYLOAD
    dest = tmp_path / "blob.bin"
    path = fetch(f"{http_server.url}/mirror/blob.bin", dest, md5=md5_bytes(PAYLOAD))
    assert path == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("blob.bin.part").exists()
    fetch(f"{http_server.url}/mirror/blob.bin", dest, md5=md5_bytes(PAYLOAD))
    assert http_server.count("/mirror/blob.bin") == 1


def test_dropped_connection_resumes_with_range(http_server, tmp_path, fast_retries):
    http_server.files["/blob.bin"] = PAYLOAD
    http_server.drop_after["/blob.bin"] = 300_000
    dest = fetch(f"{http_server.url}/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    (resumed,) = http_server.ranges_requested("/blob.bin")
    assert 0 < int(resumed.removeprefix("bytes=").rstrip("-")) <= 300_000


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path, fast_retries):
    http_server.files["/blob.bin"] = PAYLOAD
    http_server.drop_after["/blob.bin"] = 100_000
    http_server.ignore_range.add("/blob.bin")
    dest = fetch(f"{http_server.url}/blob.bin", tmp_path / "blob.bin", md5=md5_bytes(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_refused_and_names_the_override(http_server, tmp_path):
    http_server.files["/img_align_celeba.zip"] = PAYLOAD
    dest = tmp_path / "img_align_celeba.zip"
    with pytest.raises(ChecksumError, match=r"data\.md5\.img_align_celeba\.zip: " + md5_bytes(PAYLOAD)):
        fetch(f"{http_server.url}/img_align_celeba.zip", dest, md5="0" * 32)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_html_page_from_a_mirror_is_not_saved(http_server, tmp_path):
    http_server.files["/img_align_celeba.zip"] = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
    dest = tmp_path / "img_align_celeba.zip"
    with pytest.raises(DpsrganError, match="login page"):
        fetch(f"{http_server.url}/img_align_celeba.zip", dest, md5=None)
    assert not dest.exists()


def test_http_404_is_a_clear_error(http_server, tmp_path):
    with pytest.raises(DpsrganError, match="HTTP 404.*check data.uri"):
        fetch(f"{http_server.url}/nothing.zip", tmp_path / "nothing.zip", md5=None)


def test_drive_confirmation_form_then_resume(drive_server, tmp_path, fast_retries):
    file_id = DRIVE_IDS["img_align_celeba.zip"]
    drive_server.drive_files[file_id] = PAYLOAD
    drive_server.drive_mode = "form"
    drive_server.drop_after[f"drive:{file_id}"] = 500_000
    dest = fetch(f"gdrive:{file_id}", tmp_path / "img_align_celeba.zip", md5=md5_bytes(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    resumed = [h.get("Range") for p, q, h in drive_server.requests if p == "/download"]
    assert resumed[0] is None and 0 < int(resumed[-1].removeprefix("bytes=").rstrip("-")) <= 500_000
    assert all(q["uuid"] == drive_server.drive_uuid for p, q, _ in drive_server.requests if p == "/download")


def test_drive_confirm_link_token(drive_server, tmp_path):
    file_id = DRIVE_IDS["img_align_celeba.zip"]
    drive_server.drive_files[file_id] = PAYLOAD
    drive_server.drive_mode = "link"
    dest = fetch(f"gdrive:{file_id}", tmp_path / "img_align_celeba.zip", md5=md5_bytes(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert any(q.get("confirm") == "AbC1-x_" for p, q, _ in drive_server.requests if p == "/uc")


def test_drive_small_file_is_served_directly(drive_server, tmp_path):
    file_id = DRIVE_IDS["list_eval_partition.txt"]
    drive_server.drive_files[file_id] = b"000001.jpg 0\n"
    drive_server.drive_mode = "form"
    dest = fetch(f"gdrive:{file_id}", tmp_path / "list_eval_partition.txt", md5=md5_bytes(b"000001.jpg 0\n"))
    assert dest.read_bytes() == b"000001.jpg 0\n"


def test_drive_quota_page_names_the_alternatives(drive_server, tmp_path):
    file_id = DRIVE_IDS["img_align_celeba.zip"]
    drive_server.drive_files[file_id] = PAYLOAD
    drive_server.drive_mode = "quota"
    with pytest.raises(DriveQuotaError) as caught:
        fetch(f"gdrive:{file_id}", tmp_path / "img_align_celeba.zip", md5=md5_bytes(PAYLOAD))
    message = str(caught.value)
    assert "too many users" in message and "s3://" in message and "https://" in message and "local zip" in message
    assert "\n" not in message
    assert not (tmp_path / "img_align_celeba.zip").exists()


def test_s3_download_and_ranged_resume(s3_server, tmp_path, caplog):
    client = s3_server.client()
    client.create_bucket(Bucket="mirror-resume")
    client.put_object(Bucket="mirror-resume", Key="celeba/blob.bin", Body=PAYLOAD)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(PAYLOAD[:123_456])
    with caplog.at_level(logging.INFO, logger="dpsrgan.storage.s3"):
        fetch("s3://mirror-resume/celeba/blob.bin", dest, md5=md5_bytes(PAYLOAD), s3_endpoint_url=s3_server.endpoint_url)
    assert dest.read_bytes() == PAYLOAD
    assert "resuming at byte 123456" in caplog.text


def test_s3_resume_appends_rather_than_restarts(s3_server, tmp_path):
    """A corrupt partial file proves the ranged GET appends: the result fails its checksum."""
    client = s3_server.client()
    client.create_bucket(Bucket="mirror-append")
    client.put_object(Bucket="mirror-append", Key="blob.bin", Body=PAYLOAD)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(b"\x00" * 1000)
    with pytest.raises(ChecksumError):
        fetch("s3://mirror-append/blob.bin", dest, md5=md5_bytes(PAYLOAD), s3_endpoint_url=s3_server.endpoint_url)


def test_s3_missing_key_is_a_clear_error(s3_server, tmp_path):
    s3_server.client().create_bucket(Bucket="mirror-empty")
    with pytest.raises(DpsrganError, match=r"s3://mirror-empty/nope\.zip .*does not exist"):
        fetch("s3://mirror-empty/nope.zip", tmp_path / "nope.zip", md5=None, s3_endpoint_url=s3_server.endpoint_url)


def test_local_html_saved_as_archive_is_detected(tmp_path):
    fake = tmp_path / "img_align_celeba.zip"
    fake.write_bytes(QUOTA_PAGE)
    with pytest.raises(DpsrganError, match="quota page.*not the file itself"):
        fetch(str(fake), tmp_path / "cache" / "img_align_celeba.zip", md5=None)


def test_local_file_is_verified_in_place(tmp_path):
    source = tmp_path / "list_eval_partition.txt"
    source.write_bytes(b"000001.jpg 0\n")
    assert fetch(str(source), tmp_path / "cache" / source.name, md5=md5_bytes(source.read_bytes())) == source
    with pytest.raises(ChecksumError):
        fetch(str(source), tmp_path / "cache" / source.name, md5="f" * 32)


def test_redact_drops_credentials_and_tokens():
    assert redact("https://user:secret@host:8443/path/file.zip?X-Amz-Signature=abc") == "https://host:8443/path/file.zip"
    assert redact("/local/dir") == "/local/dir"


def test_drive_resume_of_an_earlier_partial_survives_the_confirmation_page(drive_server, tmp_path):
    file_id = DRIVE_IDS["img_align_celeba.zip"]
    drive_server.drive_files[file_id] = PAYLOAD
    drive_server.drive_mode = "form"
    dest = tmp_path / "img_align_celeba.zip"
    dest.with_name(dest.name + ".part").write_bytes(PAYLOAD[:200_000])
    fetch(f"gdrive:{file_id}", dest, md5=md5_bytes(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert [h.get("Range") for p, _, h in drive_server.requests if p == "/download"] == ["bytes=200000-"]
