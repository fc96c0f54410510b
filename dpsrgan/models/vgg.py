"""Frozen VGG19 feature extractor for the perceptual loss (Φ_ij of SRGAN / DPSRGAN).

Weights are torchvision's ImageNet file ``vgg19-dcbb9e9d.pth`` (keys ``features.N.weight|bias``;
the 8 hex digits are the start of the file's SHA-256). We build the ``features`` Sequential
ourselves with torchvision's indices, so the keys match without depending on torchvision, and
only up to the requested layer (conv5_4 is index 34 of 37). Where the file comes from:

- ``"torch-hub"``: torch.hub's cache, ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``,
  downloaded from :data:`VGG19_URL` when absent (``TORCH_HOME`` moves the cache);
- a local path, an ``https://`` URL (cached like torch-hub), or an ``s3://bucket/key`` URI
  (``s3_endpoint_url`` or ``AWS_ENDPOINT_URL`` for S3-compatible stores);
- ``"random"``: untrained weights, only on explicit request and with a warning (smoke runs).

Downloads go through :mod:`dpsrgan.storage`, as CelebA's do: resumed, retried, and given their
name only once checked. A file whose name ends in ``-<hex>.pth`` must have a SHA-256 starting
with those digits. A missing, corrupt or foreign file is a :class:`~dpsrgan.errors.DpsrganError`,
never a silent fallback to random weights.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from dpsrgan.checkpoint import read_checkpoint
from dpsrgan.errors import DpsrganError
from dpsrgan.models.vgg_layers import CONV_SHAPES, LAYER_HINT, LAYER_INDEX, VGG19_CFG
from dpsrgan.storage import fetch, redact
from dpsrgan.storage.checksum import ChecksumError, verify_sha256

logger = logging.getLogger(__name__)

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.pth$")


def load_vgg19_state_dict(source: str, s3_endpoint_url: str | None = None) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of torchvision's VGG19 file from ``source`` ("torch-hub", a
    local path, an https:// URL or an s3:// URI), checked for hash and shapes."""
    if source == "torch-hub":
        source = VGG19_URL
    if source.startswith(("https://", "http://")):
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(source).path).name
        return _load_checked(_download(source, cached, f"put torchvision's file at {cached}, or "))
    if source.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="dpsrgan-vgg19-") as tmp:
            path = _download(source, Path(tmp) / _s3_file_name(source), "", s3_endpoint_url)
            return _load_checked(path, origin=source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DpsrganError(
            f"VGG19 weights file not found: {path}; give torchvision's vgg19-dcbb9e9d.pth as a path, "
            "'torch-hub', an s3:// URI, or 'random' for an untrained VGG (smoke runs only)"
        )
    return _load_checked(path)


def _download(source: str, dest: Path, hint: str, s3_endpoint_url: str | None = None) -> Path:
    """``source`` (https:// or s3://) at ``dest``, kept there: through :func:`dpsrgan.storage.fetch`
    (resumed, retried, an HTML page refused), and given its name only once its SHA-256 starts with
    the digits the name promises. ``hint`` starts the fix a failed download suggests."""
    shown = redact(source)
    promised = _HASH_IN_NAME.search(dest.name)
    try:
        return fetch(
            source, dest, md5=None, sha256=promised and promised.group(1),
            s3_endpoint_url=s3_endpoint_url, setting="loss.vgg_weights",
        )
    except ChecksumError as error:
        fix = "the download is corrupt or not torchvision's VGG19 — retry, or point loss.vgg_weights at a local copy"
        raise DpsrganError(_hash_mismatch(shown, error, fix)) from None
    except DpsrganError as error:
        raise DpsrganError(
            f"could not download VGG19 weights {shown} ({error}); {hint}set loss.vgg_weights to a local "
            "path or s3:// URI"
        ) from None


def _s3_file_name(uri: str) -> str:
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if not parsed.netloc or not key:
        raise DpsrganError(f"VGG19 weights URI {uri!r} must look like s3://bucket/path/vgg19-dcbb9e9d.pth")
    return Path(key).name


def _hash_mismatch(origin: str, error: ChecksumError, fix: str) -> str:
    found = error.actual[: len(error.expected)]
    return f"{origin}: SHA-256 starts with {found}, but the name promises {error.expected}; {fix}"


def _load_checked(path: Path, origin: str | None = None) -> dict[str, torch.Tensor]:
    """Verify the name's hash promise, load with weights_only, keep and check ``features.*``."""
    origin = origin or str(path)
    promised = _HASH_IN_NAME.search(Path(origin).name)
    if promised:
        try:
            verify_sha256(path, promised.group(1), origin)
        except ChecksumError as error:
            fix = "the file is corrupt or not torchvision's VGG19 — delete it and fetch it again"
            raise DpsrganError(_hash_mismatch(origin, error, fix)) from None
    try:
        state = read_checkpoint(path)
    except DpsrganError as error:
        where = "" if origin == str(path) else f" {origin}"
        raise DpsrganError(
            f"VGG19 weights{where}: {error}; expected torchvision's vgg19-dcbb9e9d.pth"
        ) from error
    for index, (out_channels, in_channels) in CONV_SHAPES.items():
        for suffix, shape in (("weight", (out_channels, in_channels, 3, 3)), ("bias", (out_channels,))):
            tensor = state.get(f"features.{index}.{suffix}")
            if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
                found = None if not isinstance(tensor, torch.Tensor) else tuple(tensor.shape)
                raise DpsrganError(
                    f"{origin}: features.{index}.{suffix} should have shape {shape}, found {found}; "
                    "this is not torchvision's VGG19 (vgg19-dcbb9e9d.pth)"
                )
    return {key: value for key, value in state.items() if key.startswith("features.")}


class VGG19Features(nn.Module):
    """Frozen VGG19 ``features`` up to ``layer`` (e.g. ``conv5_4``, before its ReLU; ``relu5_4``
    after it). ``forward``: float N×3×H×W RGB in [0, 1] → feature map N×C×H/2^k×W/2^k; the
    ImageNet normalisation happens inside. Always in eval mode with ``requires_grad=False``;
    gradients still flow to the input (the SR image).
    """

    def __init__(
        self, layer: str = "conv5_4", weights: str = "torch-hub", s3_endpoint_url: str | None = None
    ) -> None:
        super().__init__()
        if layer not in LAYER_INDEX:
            raise DpsrganError(f"unknown VGG19 layer {layer!r}; use {LAYER_HINT}")
        self.layer, self.weights = layer, weights
        self.features = nn.Sequential(*_build_features(LAYER_INDEX[layer]))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights == "random":
            logger.warning(
                "VGG19 perceptual loss uses RANDOM weights (loss.vgg_weights=random): smoke runs only"
            )
            _init_random_features(self.features)
        else:
            state = load_vgg19_state_dict(weights, s3_endpoint_url)
            self.load_state_dict({key: state[key] for key in self.state_dict()})
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode whatever a parent module asks: the extractor is frozen."""
        return super().train(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.features((image - self.mean) / self.std)


def _init_random_features(features: nn.Sequential, seed: int = 0) -> None:
    """Seeded He (fan-out) init, as torchvision initialises an untrained VGG. PyTorch's default
    conv init shrinks activations about 3x per layer, so conv5_4 features of a default-initialised
    VGG19 are ~1e-7 and the "perceptual" loss vanishes; He init keeps their scale through the
    16 convs, so a random-feature perceptual loss still carries a (weak) signal in smoke runs."""
    generator = torch.Generator().manual_seed(seed)
    for module in features:
        if isinstance(module, nn.Conv2d):
            std = (2.0 / (module.out_channels * 9)) ** 0.5
            with torch.no_grad():
                module.weight.normal_(0.0, std, generator=generator)
                module.bias.zero_()


def _build_features(last_index: int) -> list[nn.Module]:
    """torchvision's VGG19 ``features`` layers 0..last_index, same indices, same key names."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            in_channels = item
    return layers[: last_index + 1]
