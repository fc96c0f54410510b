"""Upscaling defaults shared by ``dpsrgan upscale``, :func:`dpsrgan.inference.upscale_paths` and
the served model (:mod:`dpsrgan.lifecycle.serving`), defined once so the three cannot drift apart.

Plain numbers and no imports: the CLI reads them to build ``--help`` without loading torch.
"""

DEFAULT_TILE = 512
"""Tile size in LR pixels: bounds peak memory for any image size (see README numbers).
Each tile reads the receptive radius (56 LR px) of context per side, so bigger tiles waste less:
1000² → 4000² does 1.24× the untiled work at 512, 1.79× at 256. The generator's full-resolution
part runs in bands (:mod:`dpsrgan.inference.fast`), so a 512 tile peaks under 1 GB on CPU."""

PILLOW_BOMB_PIXELS = 89_478_485
"""Pillow's default ``Image.MAX_IMAGE_PIXELS`` (it refuses images over twice this)."""
DEFAULT_MAX_PIXELS = 2 * PILLOW_BOMB_PIXELS // 16
"""Input pixel limit: Pillow's hard bomb limit applied to the ×4 *output* (16× the input
pixels), i.e. about 11.2 MP in (≈ 3344×3344), 179 MP out."""

SERVE_MAX_PIXELS = 1024 * 1024
"""Input pixel limit of the servers (``dpsrgan serve --max-pixels`` and the pyfunc's
``max_pixels``): 1 MP in, 16.8 MP out. A 1024² photograph takes about 26 s on 2 CPU cores, inside
the 60 s request timeout; a GPU server can raise it (the CLI's file limit is 11x larger)."""
