"""Any tree of photographs as a dataset: listing, copying into the pipeline, splitting.

A folder source is a user's own domain, or photographs that ship inside Python packages (the
offline quickstart: ``data.uri: bundled``; ``skimage`` is its scikit-image colour part). Images are identified by their path relative to the tree's
root, and the train/valid/test split of each is decided by a hash of that path alone, so adding
photos never moves the existing ones between splits. A tiny tree still gets at least one image
in every split.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from dpsrgan.data.shards import SPLITS, Split
from dpsrgan.errors import DpsrganError
from dpsrgan.storage import ExtractLimits, extract_zip, fetch

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
"""The RGB photographs in ``skimage/data``. Left out: the grayscale ones, the synthetic ones
(color, chessboard, phantom, logo, horse) and motorcycle_right.png, a stereo twin of
motorcycle_left.png that would leak one image into two splits."""


BUNDLED_PHOTOS = {
    "skimage": SKIMAGE_PHOTOS + ("camera.png", "moon.png", "brick.png", "grass.png", "gravel.png", "coins.png"),
    "matplotlib": ("grace_hopper.jpg",),
    "sklearn": ("china.jpg", "flower.jpg"),
}
"""Photographs that ship inside Python packages (package → files), the offline quickstart's
data: scikit-image's colour photographs plus its grayscale natural ones (camera, moon,
textures, coins: they train luminance detail like any photo), matplotlib's portrait of Grace
Hopper, scikit-learn's two sample photographs. Their relative paths (``package/file``) decide
the hash split; with the quickstart's fractions 6 land in test, 2 in valid and 9 in train."""


def _package_data_dir(package: str) -> Path:
    """Where ``package`` keeps its sample photographs."""
    match package:
        case "skimage":
            import skimage

            return Path(skimage.__file__).parent / "data"
        case "matplotlib":
            import matplotlib

            return Path(matplotlib.get_data_path()) / "sample_data"
        case "sklearn":
            import sklearn

            return Path(sklearn.__file__).parent / "datasets" / "images"
    raise ValueError(f"no bundled photographs known in package {package!r}")


def bundled_photos() -> dict[str, Path]:
    """Relative path (``package/file``) → file of every :data:`BUNDLED_PHOTOS` entry."""
    found: dict[str, Path] = {}
    for package, names in BUNDLED_PHOTOS.items():
        try:
            root = _package_data_dir(package)
        except ImportError:
            raise DpsrganError(
                f"data.uri=bundled: the package {package} is not installed; pip install -e . installs it"
            ) from None
        missing = [name for name in names if not (root / name).is_file()]
        if missing:
            raise DpsrganError(f"data.uri=bundled: {missing} missing from {root}; reinstall {package}")
        found.update({f"{package}/{name}": root / name for name in names})
    return found


def skimage_photos() -> list[Path]:
    """Paths of :data:`SKIMAGE_PHOTOS` in the installed scikit-image."""
    import skimage

    root = Path(skimage.__file__).parent / "data"
    missing = [name for name in SKIMAGE_PHOTOS if not (root / name).is_file()]
    if missing:
        raise DpsrganError(f"data.uri=skimage: {missing} missing from {root}; reinstall scikit-image")
    return [root / name for name in SKIMAGE_PHOTOS]


def list_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under ``root`` (by suffix; hidden entries skipped), sorted."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(directory, name).relative_to(root).as_posix())
    return sorted(found)


def materialise_folder(
    uri: str, out_dir: Path, cache_dir: Path, *, md5: dict[str, str], s3_endpoint_url: str | None,
    limits: ExtractLimits,
) -> int:
    """Put the source's images under ``out_dir`` (replaced atomically); return their count.

    ``uri``: ``skimage``, a local directory (its image files are copied, keeping relative paths),
    or a ``.zip`` anywhere :func:`~dpsrgan.storage.fetch` reaches (safely extracted).
    """
    if uri.endswith(".zip"):
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        archive = fetch(uri, cache_dir / name, md5=md5.get(name), s3_endpoint_url=s3_endpoint_url)
        extract_zip(archive, out_dir, limits)
        count = len(list_images(out_dir))
    else:
        files = _source_files(uri)
        _copy_tree(files, out_dir)
        count = len(files)
    if count == 0:
        raise DpsrganError(f"data.uri={uri}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    log.info("folder source %s: %d image files in %s", uri, count, out_dir)
    return count


def _source_files(uri: str) -> dict[str, Path]:
    """Relative path → source file for ``bundled``, ``skimage`` or a local directory."""
    if uri == "bundled":
        return bundled_photos()
    if uri == "skimage":
        return {path.name: path for path in skimage_photos()}
    root = Path(uri).expanduser()
    if not root.is_dir():
        raise DpsrganError(
            f"data.uri={uri}: not a directory; data.source=folder takes a directory of images, a .zip "
            f"of them, bundled or skimage"
        )
    return {rel: root / rel for rel in list_images(root)}


def _copy_tree(files: dict[str, Path], out_dir: Path) -> None:
    """Copy into a temporary sibling, then rename: an interrupted copy is never taken as done."""
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for rel, source in files.items():
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)


def _unit_hash(rel_path: str) -> float:
    """A uniform number in [0, 1) fixed by the relative path alone."""
    return int.from_bytes(hashlib.sha256(rel_path.encode()).digest()[:8], "big") / 2**64


def assign_splits(rel_paths: Iterable[str], valid_fraction: float, test_fraction: float) -> dict[str, Split]:
    """Split by path hash: ``u < test`` → test, ``u < test + valid`` → valid, else train.

    When a split comes out empty (tiny trees), the image whose hash lies nearest that split's
    interval moves there from the largest split, so each split has at least one image.
    """
    hashes = {rel: _unit_hash(rel) for rel in rel_paths}
    if len(hashes) < len(SPLITS):
        raise DpsrganError(f"a folder source needs at least {len(SPLITS)} images (one per split), found {len(hashes)}")
    bounds: dict[Split, tuple[float, float]] = {
        "test": (0.0, test_fraction),
        "valid": (test_fraction, test_fraction + valid_fraction),
        "train": (test_fraction + valid_fraction, 1.0),
    }
    assignment: dict[str, Split] = {
        rel: next(split for split, (low, high) in bounds.items() if low <= u < high) for rel, u in hashes.items()
    }
    for split in ("test", "valid", "train"):
        if split in assignment.values():
            continue
        sizes = {s: sum(v == s for v in assignment.values()) for s in SPLITS}
        donor = max(SPLITS, key=lambda s: sizes[s])
        low, high = bounds[split]
        moved = min(
            (rel for rel, s in assignment.items() if s == donor),
            key=lambda rel: (min(abs(hashes[rel] - low), abs(hashes[rel] - high)), rel),
        )
        assignment[moved] = split
    return assignment
