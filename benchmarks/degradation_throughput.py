"""Throughput of the HR → LR degradation at CelebA scale (single process, wall clock).

Run: ``python benchmarks/degradation_throughput.py [--images 500]``

CelebA's aligned faces are 178×218 JPEGs. We stand in for them with crops of scikit-image's
photographs encoded as 178×218 JPEGs in memory, then time, per image:

1. ``bicubic 128→32``: :func:`dpsrgan.degradation.bicubic_downscale` alone (the acceptance bar:
   well under 1 ms per image);
2. ``decode+crop+128+32``: JPEG decode, centre crop to 178×178, MATLAB-bicubic resize to 128×128,
   then the ×4 bicubic downscale — what a data stage does per CelebA image;
3. ``real-world 128→32``: :func:`dpsrgan.degradation.degrade` with blur, noise and JPEG.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image
from skimage import data

from dpsrgan.degradation import DegradationConfig, bicubic_downscale, degrade, imresize


def celeba_like_jpegs(count: int) -> list[bytes]:
    """``count`` 178×218 JPEGs cut from scikit-image's photographs (quality 95)."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - 218)
        left = rng.integers(0, photo.shape[1] - 178)
        buffer = io.BytesIO()
        Image.fromarray(photo[top : top + 218, left : left + 178]).save(buffer, format="JPEG", quality=95)
        out.append(buffer.getvalue())
    return out


def to_hr(jpeg: bytes, size: int = 128) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        face = np.asarray(image.convert("RGB"))
    top = (face.shape[0] - face.shape[1]) // 2
    square = face[top : top + face.shape[1]]
    return np.floor(np.clip(imresize(square, output_shape=(size, size)), 0, 255) + 0.5).astype(np.uint8)


def rate(label: str, fn, items) -> None:
    fn(items[0])  # warm the weight-matrix cache
    start = time.perf_counter()
    for item in items:
        fn(item)
    seconds = time.perf_counter() - start
    print(f"{label:<22} {len(items) / seconds:9.0f} images/s   {1e3 * seconds / len(items):7.3f} ms/image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    jpegs = celeba_like_jpegs(args.images)
    hrs = [to_hr(j) for j in jpegs]
    real_world = DegradationConfig(real_world=True)
    rate("bicubic 128→32", lambda hr: bicubic_downscale(hr, 4), hrs)
    rate("decode+crop+128+32", lambda j: bicubic_downscale(to_hr(j), 4), jpegs)
    rate("real-world 128→32", lambda hr: degrade(hr, real_world, seed=7), hrs)


if __name__ == "__main__":
    main()
