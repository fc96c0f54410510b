"""Image files and PIL images in and out of the engine's arrays (:class:`Planes`).

Mode policy (the output keeps what the input meant, not necessarily Pillow's storage):

========================  ===========================  ===================================
input mode                 through the model            output
========================  ===========================  ===================================
RGB, RGBX                  RGB                          RGB
RGBA, RGBa                 RGB + bicubic alpha          RGBA
L, 1                       gray → RGB → BT.601 luma     L
LA, La                     as L + bicubic alpha         LA
I;16*, I (16-bit PNG)      as L, 16-bit precision       I;16 (I stays I)
P, PA                      RGB(A) from the palette      RGB or RGBA (a palette is not kept)
CMYK, YCbCr, LAB, HSV      converted to RGB             RGB
F (32-bit float)           refused
========================  ===========================  ===================================

Files: the first frame is read, EXIF orientation is applied (and not written back), the ICC
profile is kept when it describes the output's colour space (RGB or gray). Pillow decodes
16-bit *colour* PNGs to 8 bits, so those come out 8-bit (with a warning); 16-bit gray is exact.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dpsrgan.atomic_io import atomic_file
from dpsrgan.errors import DpsrganError
from dpsrgan.inference.planes import Planes
from dpsrgan.upscale_defaults import DEFAULT_MAX_PIXELS

logger = logging.getLogger(__name__)

_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
_ICC_SPACES = {"RGB": b"RGB ", "RGBA": b"RGB ", "L": b"GRAY", "LA": b"GRAY", "I;16": b"GRAY", "I": b"GRAY"}
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


def to_planes(image: Image.Image) -> tuple[Planes, str]:
    """Split a PIL image into arrays for the engine; also return the mode to rebuild."""
    match image.mode:
        case "RGB" | "RGBX":
            return Planes(np.asarray(image.convert("RGB"))), "RGB"
        case "RGBA" | "RGBa":
            rgba = np.asarray(image.convert("RGBA"))
            return Planes(rgba[..., :3], rgba[..., 3]), "RGBA"
        case "L" | "1":
            return Planes(np.asarray(image.convert("L"))[..., None]), "L"
        case "LA" | "La":
            la = np.asarray(image.convert("LA"))
            return Planes(la[..., :1], la[..., 1]), "LA"
        case "I;16" | "I;16L" | "I;16B" | "I;16N":
            return Planes(np.asarray(image).astype(np.uint16)[..., None]), "I;16"
        case "I":
            return Planes(np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]), "I"
        case "P" | "PA":
            has_alpha = image.mode == "PA" or "transparency" in image.info
            return to_planes(image.convert("RGBA" if has_alpha else "RGB"))
        case "F":
            raise DpsrganError("32-bit float (mode F) images are not supported; save them as 8- or 16-bit")
        case _:
            return to_planes(image.convert("RGB"))


def array_to_planes(array: np.ndarray) -> Planes:
    """H×W (gray), H×W×1, H×W×2 (gray + alpha), H×W×3 (RGB) or H×W×4 (RGBA) → planes."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise DpsrganError(
            f"image arrays must be H×W or H×W×C with C in 1..4 (gray, gray+alpha, RGB, RGBA), got shape {array.shape}"
        )
    has_alpha = array.shape[-1] in (2, 4)
    return Planes(array[..., :-1] if has_alpha else array, array[..., -1] if has_alpha else None)


def planes_to_array(planes: Planes, like: np.ndarray) -> np.ndarray:
    """The inverse of :func:`array_to_planes`, in the layout of the input array ``like``."""
    if planes.alpha is None:
        return planes.color[..., 0] if like.ndim == 2 else planes.color
    return np.concatenate([planes.color, planes.alpha[..., None]], axis=-1)


def from_planes(planes: Planes, mode: str, icc_profile: bytes | None = None) -> Image.Image:
    """Rebuild a PIL image of ``mode`` (from :func:`to_planes`); attach the ICC profile when it
    describes that mode's colour space."""
    color = planes.color
    match mode:
        case "RGB":
            image = Image.fromarray(color)
        case "RGBA":
            image = Image.merge("RGBA", (*Image.fromarray(color).split(), Image.fromarray(planes.alpha)))
        case "L" | "I;16":
            image = Image.fromarray(color[..., 0])
        case "LA":
            image = Image.merge("LA", (Image.fromarray(color[..., 0]), Image.fromarray(planes.alpha)))
        case "I":
            image = Image.fromarray(color[..., 0]).convert("I")
        case _:
            raise ValueError(f"no planes layout for mode {mode!r}")
    if icc_profile and icc_profile[16:20] == _ICC_SPACES[mode]:
        image.info["icc_profile"] = icc_profile
    return image


@contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Let Pillow open up to ``max_pixels`` quietly; our own check (with the option's name)
    refuses larger images before any pixel is decoded."""
    previous = Image.MAX_IMAGE_PIXELS
    if previous is not None:
        Image.MAX_IMAGE_PIXELS = max(previous, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


FILE_HINT = "raise --max-pixels if you trust this file"
"""What a file over the pixel limit is told; a server names its own limit instead."""


class ImageTooLarge(DpsrganError):
    """An image over the pixel limit (a server answers 413 to it, not 400)."""


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file, EXIF orientation applied; any problem is one DpsrganError line
    naming the file (empty, truncated, not an image, over the pixel limit)."""
    try:
        if path.stat().st_size == 0:
            raise DpsrganError(f"{path}: empty file, not an image")
    except OSError as error:
        raise DpsrganError(f"{path}: cannot read ({error.strerror or error})") from error
    with path.open("rb") as file:
        head = file.read(26)
    return decode_image(path, str(path), max_pixels, head=head)


def decode_image(
    source: Path | bytes, label: str, max_pixels: int, *, head: bytes | None = None, hint: str = FILE_HINT
) -> Image.Image:
    """Decode a file or the bytes of one (an upload) the same way: first frame, EXIF orientation
    applied, the pixel limit checked before any pixel is decoded. Errors are one DpsrganError line
    starting with ``label`` (:class:`ImageTooLarge` for the pixel limit, ``hint`` its fix)."""
    if isinstance(source, bytes):
        head = source[:26]
    with _opened(source, label, max_pixels, hint) as image:
        image.load()
        oriented = ImageOps.exif_transpose(image)
    if head is not None and _is_16bit_color_png(head):
        logger.warning("%s: 16-bit colour PNG is decoded to 8 bits by Pillow; the output is 8-bit", label)
    return oriented


def image_size(data: bytes, label: str, max_pixels: int, hint: str = FILE_HINT) -> tuple[int, int]:
    """(width, height) of an image file's bytes from its header alone, with the checks of
    :func:`decode_image` that need no pixels: a server refuses a bomb before queueing it."""
    with _opened(data, label, max_pixels, hint) as image:
        return image.size


@contextmanager
def _opened(source: Path | bytes, label: str, max_pixels: int, hint: str) -> Iterator[Image.Image]:
    """The image, opened lazily and within the pixel limit; Pillow's errors (here and in the
    caller's block, e.g. truncated pixel data at ``load``) become one DpsrganError line."""
    if isinstance(source, bytes):
        if not source:
            raise DpsrganError(f"{label}: empty, not an image")
        source = io.BytesIO(source)
    try:
        with _pixel_limit(max_pixels), Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise _over_limit(label, f"{width}x{height} = {width * height:,} pixels", max_pixels, hint)
            yield image
    except Image.DecompressionBombError as error:
        raise _over_limit(label, "the image", max_pixels, hint) from error
    except UnidentifiedImageError as error:
        raise DpsrganError(f"{label}: not an image (no image format recognises it)") from error
    except _READ_ERRORS as error:
        raise DpsrganError(f"{label}: not a readable image ({error})") from error


def load_planes(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Planes, str, bytes | None]:
    """Read a file into the engine's arrays: (planes, output mode, ICC profile or None)."""
    return image_planes(read_image(path, max_pixels), str(path))


def decode_planes(
    data: bytes, label: str, max_pixels: int, hint: str = FILE_HINT
) -> tuple[Planes, str, bytes | None]:
    """:func:`load_planes` for the bytes of an image file (an upload): same decode, same result."""
    return image_planes(decode_image(data, label, max_pixels, hint=hint), label)


def image_planes(image: Image.Image, label: str) -> tuple[Planes, str, bytes | None]:
    """A decoded image as (planes, output mode, ICC profile or None); errors name ``label``."""
    try:
        planes, mode = to_planes(image)
    except DpsrganError as error:
        raise DpsrganError(f"{label}: {error}") from error
    return planes, mode, image.info.get("icc_profile")


def _over_limit(label: str, size: str, max_pixels: int, hint: str) -> ImageTooLarge:
    return ImageTooLarge(f"{label}: {size} is over the pixel limit of {max_pixels:,}; {hint}")


def _is_16bit_color_png(head: bytes) -> bool:
    """True for a PNG whose IHDR (in the file's first 26 bytes) says 16 bits per sample with
    colour (types 2, 4, 6)."""
    return len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 4, 6)


def pillow_format(path: Path) -> str | None:
    """Pillow's writer name for a file extension (``.jpg`` → ``JPEG``), or None if unknown."""
    name = Image.registered_extensions().get(path.suffix.lower())
    return name if name in Image.SAVE else None


def _fit_format(image: Image.Image, pil_format: str, path: Path) -> Image.Image:
    """Adapt an image to what ``pil_format`` can store, or refuse with the fix."""
    if pil_format == "JPEG" and image.mode in ("RGBA", "LA"):
        raise DpsrganError(f"{path}: JPEG cannot store the alpha channel; use --format png (or webp, tiff)")
    if pil_format not in ("PNG", "TIFF") and image.mode in ("I;16", "I"):
        logger.warning("%s: %s stores 8 bits per sample; reducing the 16-bit output", path, pil_format)
        icc = image.info.get("icc_profile")
        image = Image.fromarray((np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8))
        if icc:
            image.info["icc_profile"] = icc
    return image


def encode_image(image: Image.Image, pil_format: str = "PNG", label: str = "output") -> bytes:
    """The bytes :func:`save_image` would write for ``image`` (a server's response body): the
    same format adaptation and options, so served files equal the CLI's byte for byte."""
    buffer = io.BytesIO()
    _write(image, buffer, pil_format, Path(label))
    return buffer.getvalue()


def _write(image: Image.Image, file: BinaryIO, pil_format: str, path: Path) -> None:
    image = _fit_format(image, pil_format, path)
    options = dict(_SAVE_OPTIONS.get(pil_format, {}))
    if image.info.get("icc_profile"):
        options["icc_profile"] = image.info["icc_profile"]
    image.save(file, format=pil_format, **options)


def save_image(image: Image.Image, path: Path, pil_format: str) -> None:
    """Write atomically (:func:`~dpsrgan.atomic_io.atomic_file`: a hidden temp file beside
    ``path``, fsync, rename). An interrupted run leaves at most a hidden ``.*.tmp`` file, never a
    truncated image under the final name; any OS failure, a folder removed mid-run included, fails
    this one file with one line, not the whole run."""
    try:
        with atomic_file(path) as file:
            _write(image, file, pil_format, path)
    except OSError as error:
        raise DpsrganError(f"{path}: cannot write ({_reason(error)})") from error


def _reason(error: OSError) -> str:
    """The OS's words ("Is a directory") without the errno and the temp file's name, which
    would only confuse; Pillow's own OSErrors ("cannot write mode P as JPEG") have no strerror."""
    return error.strerror or str(error)
