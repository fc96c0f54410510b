"""S3 (and S3-compatible: MinIO, Ceph, …) download into a resumable ``.part`` file.

Credentials come only from boto3's standard chain (environment, ``~/.aws`` profiles, instance or
container roles), never from params. A partial file resumes with a ranged GET.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

from dpsrgan.errors import DpsrganError
from dpsrgan.storage.transfer import append_stream
from dpsrgan.storage.retry import TransientError, retrying

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MISSING = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → (``bucket``, ``some/key``)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise DpsrganError(f"not an S3 URI: {uri!r}; expected s3://bucket/prefix")
    return parsed.netloc, parsed.path.lstrip("/")


def download_s3(
    uri: str, partial: Path, label: str, endpoint_url: str | None = None, setting: str = "data.uri"
) -> None:
    """Fetch ``s3://bucket/key`` into ``partial``, resuming what is there; retries transient errors.
    ``setting`` is the param that names the source, which a missing object tells the user to check."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError, NoCredentialsError

    bucket, key = split_s3_uri(uri)
    client = boto3.client("s3", endpoint_url=endpoint_url)
    where = f"s3://{bucket}/{key}" + (f" at {endpoint_url}" if endpoint_url else "")

    def attempt() -> None:
        try:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            offset = partial.stat().st_size if partial.exists() else 0
            if offset > size:
                offset = 0
            if offset == size and size:
                return
            extra = {"Range": f"bytes={offset}-"} if offset else {}
            if offset:
                log.info("%s: resuming at byte %d", label, offset)
            body = client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
            written = append_stream(body.iter_chunks(_CHUNK), partial, offset, size, label, setting)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise DpsrganError(f"{label}: {where} does not exist; check {setting} (s3://bucket/prefix)") from None
            if code in _DENIED:
                raise DpsrganError(
                    f"{label}: access to {where} denied ({code}); check the AWS credentials "
                    f"(environment, AWS_PROFILE, ~/.aws) and the bucket policy"
                ) from None
            raise TransientError(f"S3 error {code}") from error
        except NoCredentialsError:
            raise DpsrganError(
                f"{label}: no AWS credentials for {where}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                f"or AWS_PROFILE (the standard AWS chain; never in params.yaml)"
            ) from None
        except (HTTPClientError, IncompleteReadError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error
        except BotoCoreError as error:
            raise DpsrganError(f"{label}: S3 failure for {where}: {error}") from None
        if written != size:
            raise TransientError(f"stream ended at byte {written} of {size}")

    try:
        for retry in retrying():
            with retry:
                attempt()
    except TransientError as error:
        raise DpsrganError(f"{label}: giving up on {where}: {error}; {partial} resumes on the next run") from None
