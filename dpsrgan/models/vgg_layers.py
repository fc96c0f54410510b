"""VGG19's layer names and indices, without torch: what ``loss.vgg_layer`` may name.

torchvision's VGG19 ("E") ``features`` Sequential is convs of these widths, each followed by a
ReLU, with a 2×2 max-pool ("M") closing each of the five blocks. Conv k of block b is called
``convb_k`` (before its ReLU) and ``relub_k`` (after it); the pool closing block b is ``poolb``.
:mod:`dpsrgan.models.vgg` builds the network from these; :mod:`dpsrgan.config` checks the layer
name on load, so this module imports nothing heavy.
"""

from __future__ import annotations

VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip


def _vgg19_layers() -> tuple[dict[str, int], dict[int, tuple[int, int]]]:
    """(layer name → index in ``features``, conv index → (out, in) channels)."""
    names: dict[str, int] = {}
    convs: dict[int, tuple[int, int]] = {}
    index, block, conv_in_block, in_channels = 0, 1, 1, 3
    for item in VGG19_CFG:
        if item == "M":
            names[f"pool{block}"] = index
            index, block, conv_in_block = index + 1, block + 1, 1
            continue
        assert isinstance(item, int)
        names[f"conv{block}_{conv_in_block}"] = index
        names[f"relu{block}_{conv_in_block}"] = index + 1
        convs[index] = (item, in_channels)
        index, conv_in_block, in_channels = index + 2, conv_in_block + 1, item
    return names, convs


LAYER_INDEX, CONV_SHAPES = _vgg19_layers()
"""``conv5_4`` → 34 (of 37 layers); conv index → (out, in) channels, e.g. 0 → (64, 3)."""

LAYER_HINT = "convB_K / reluB_K (blocks 1-2: K 1-2; blocks 3-5: K 1-4) or poolB, e.g. conv5_4, relu2_2, pool4"
"""How to name a layer, for error messages."""
