"""Degrade throughput: the whole degrade stage with 1 and 2 worker processes, and what its parts
cost per image.

Run: ``python -m benchmarks.degrade [--images 2000] [--workers 1 2] [--repeats 2] [--dvc-status] [--per-image]``
(``python -m benchmarks`` runs :func:`degrade_rows` as its ``degrade`` section.)

The sample stands in for CelebA: ``img_align_celeba.zip`` of 178×218 JPEGs (quality 95) cut from
scikit-image's photographs, and ``list_eval_partition.txt`` in the official 80/10/10
proportions. The download stage's library call unpacks it once; then the whole degrade stage
(decode, centre crop, MATLAB-bicubic 128-px HR, ×4 LR, PNG encode, Parquet shards, manifest) is
timed per worker count, the counts taking turns so that a burst of outside load hits them alike:
median wall-clock images/s, and CPU ms per image (this process plus its workers), the steadier
figure on a shared machine.

- ``--dvc-status``: also ``dvc repro degrade`` on the sample in a temporary copy of this repo,
  then the median time of ``dvc status degrade`` and of plain ``dvc status`` (3 runs each).
- ``--per-image``: single-process ms per image of the ×4 bicubic downscale alone (the acceptance
  bar: well under 1 ms), of decode + face crop + HR resize + ×4 LR, and of the real-world
  degradation (blur, noise, JPEG).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image
from skimage import data

from dpsrgan.config import DataParams, DegradeParams
from dpsrgan.data.pairs import centre_crop, resize_uint8
from dpsrgan.data.prepare import prepare
from dpsrgan.data.raw import download
from dpsrgan.degradation import bicubic_downscale, degrade
from dpsrgan.storage.checksum import md5_file

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = (162_770, 19_867, 19_962)
"""CelebA's official train/valid/test sizes: the sample's partition keeps their proportions."""
FACE_HEIGHT, FACE_WIDTH = 218, 178
"""CelebA's aligned faces."""
SAMPLE_FILES = ("img_align_celeba.zip", "list_eval_partition.txt")


def celeba_like_jpegs(count: int) -> Iterator[bytes]:
    """``count`` 178×218 JPEGs (quality 95) cut at random from scikit-image's photographs (seed 0)."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - FACE_HEIGHT), rng.integers(0, photo.shape[1] - FACE_WIDTH)
        face = photo[top : top + FACE_HEIGHT, left : left + FACE_WIDTH]
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="JPEG", quality=95)
        yield buffer.getvalue()


def sample_md5(root: Path) -> dict[str, str]:
    """The sample's MD5s, as ``data.md5`` wants them."""
    return {name: md5_file(root / name) for name in SAMPLE_FILES}


def make_sample(root: Path, count: int) -> dict[str, str]:
    """Write the CelebA-format sample under ``root``; return its MD5s."""
    bounds = np.cumsum(OFFICIAL) / sum(OFFICIAL)
    lines = []
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w", zipfile.ZIP_STORED) as zf:
        for i, jpeg in enumerate(celeba_like_jpegs(count)):
            name = f"{i + 1:06d}.jpg"
            zf.writestr(f"img_align_celeba/{name}", jpeg)
            lines.append(f"{name} {int(np.searchsorted(bounds, (i + 0.5) / count))}\n")
    (root / "list_eval_partition.txt").write_text("".join(lines))
    return sample_md5(root)


def time_degrade(data_params: DataParams, raw: Path, out: Path, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its reaped worker processes)."""

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    prepare(data_params, DegradeParams(), raw, out, workers=workers)
    return time.perf_counter() - start, cpu() - cpu_start


def degrade_rows(images: int, repeats: int, workdir: Path, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """The whole degrade stage on an ``images``-image sample in ``workdir``, ``repeats`` rounds
    of every worker count; the sample stays in ``workdir / "sample"``."""
    md5 = make_sample(workdir / "sample", images)
    params = DataParams(source="celeba", uri=str(workdir / "sample"), md5=md5)
    download(params, workdir / "raw", workdir / "cache")
    walls: dict[int, list[float]] = {count: [] for count in workers}
    cpus: dict[int, list[float]] = {count: [] for count in workers}
    for _ in range(repeats):  # interleaved: a burst of outside load hits every count
        for count in workers:
            wall, cpu = time_degrade(params, workdir / "raw", workdir / f"out{count}", count)
            walls[count].append(wall)
            cpus[count].append(cpu)
    rates = {str(count): images / statistics.median(times) for count, times in walls.items()}
    return {
        "images": images,
        "repeats": repeats,
        "images_per_s": rates,
        "speedup_2_vs_1": rates["2"] / rates["1"] if {"1", "2"} <= rates.keys() else None,
        # CPU time of this process and its workers: equal per-image cost at 1 and 2 processes means
        # the work splits cleanly, whatever share of the CPUs the machine could give it.
        "cpu_ms_per_image": {str(count): 1e3 * statistics.median(times) / images for count, times in cpus.items()},
        "seconds": {str(count): times for count, times in walls.items()},
    }


def face_hr(jpeg: bytes, size: int = 128) -> np.ndarray:
    """A CelebA JPEG → the degrade stage's HR face: decode, centre square crop, MATLAB-bicubic resize."""
    with Image.open(io.BytesIO(jpeg)) as image:
        face = np.asarray(image.convert("RGB"))
    side = min(face.shape[:2])
    return resize_uint8(centre_crop(face, side, side), size)


def per_image_ms(images: int) -> dict[str, float]:
    """Single-process milliseconds per image of the stage's parts (after one warm-up call each,
    which fills the resize weight cache)."""
    jpegs = list(celeba_like_jpegs(images))
    hrs = [face_hr(jpeg) for jpeg in jpegs]
    real_world = DegradeParams(real_world=True)
    parts = {
        "bicubic_128_to_32": (lambda hr: bicubic_downscale(hr, 4), hrs),
        "decode_crop_hr_lr": (lambda jpeg: bicubic_downscale(face_hr(jpeg), 4), jpegs),
        "real_world_128_to_32": (lambda hr: degrade(hr, real_world, seed=7), hrs),
    }
    costs = {}
    for name, (part, items) in parts.items():
        part(items[0])
        start = time.perf_counter()
        for item in items:
            part(item)
        costs[name] = 1e3 * (time.perf_counter() - start) / len(items)
    return costs


def dvc_status_seconds(tmp: Path, sample: Path) -> dict[str, float]:
    """``dvc repro degrade`` on the sample in a repo copy, then the median ``dvc status`` time."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout.decode()
    copy = tmp / "repo"
    for rel in filter(None, files.split("\0")):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, copy / rel)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"].update(source="celeba", uri=str(sample), md5=sample_md5(sample))
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", GIT_AUTHOR_NAME="b",
               GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")

    def run(*cmd: str) -> float:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=copy, env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    run("git", "init", "-q")
    if not (copy / ".dvc").is_dir():
        run(sys.executable, "-m", "dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "benchmark")
    repro = run(sys.executable, "-m", "dvc", "repro", "degrade")
    scoped = [run(sys.executable, "-m", "dvc", "status", "degrade") for _ in range(3)]
    plain = [run(sys.executable, "-m", "dvc", "status") for _ in range(3)]  # also checks later stages
    return {
        "dvc_repro_degrade_s": round(repro, 2),
        "dvc_status_degrade_s": round(statistics.median(scoped), 3),
        "dvc_status_s": round(statistics.median(plain), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.degrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="rounds of every worker count; the median counts")
    parser.add_argument("--dvc-status", action="store_true", help="also time dvc repro/status on the sample")
    parser.add_argument("--per-image", action="store_true", help="also the single-process cost of each part")
    args = parser.parse_args(argv)
    from benchmarks.common import machine_info

    result: dict[str, Any] = {"machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="dpsrgan-bench-degrade-") as name:
        tmp = Path(name)
        result["degrade"] = degrade_rows(args.images, args.repeats, tmp, tuple(args.workers))
        if args.dvc_status:
            result["dvc"] = dvc_status_seconds(tmp, tmp / "sample")
    if args.per_image:
        result["per_image_ms"] = per_image_ms(args.images)
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
