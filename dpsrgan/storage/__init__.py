"""Fetching inputs from Google Drive, S3, HTTP(S) mirrors or local paths, and unpacking them safely.

The pipeline's download stage reads CelebA (or a user's own archive) from wherever the user keeps
it. Every remote transfer goes to a ``.part`` file, resumes after a dropped connection (HTTP
``Range`` / S3 ranged GET), retries with exponential backoff, shows a progress bar, is checked
against an expected MD5 and only then renamed into place; a file that was verified once is not
fetched again. A saved HTML page (Drive's warning, quota or login page) is recognised and named
before anyone tries to unzip it, and archives are extracted with path, link and size guards.

Public entry points: :func:`fetch` (one file from any source) and :func:`extract_zip`.
"""

from dpsrgan.storage.extract import ExtractLimits, UnsafeArchiveError, extract_zip
from dpsrgan.storage.fetch import FetchError, fetch, redact

__all__ = ["ExtractLimits", "FetchError", "UnsafeArchiveError", "extract_zip", "fetch", "redact"]
