"""Typed, validated view of ``params.yaml``.

Every knob of the pipeline lives in ``params.yaml`` (DVC tracks it per key). This module maps its
top-level sections onto frozen pydantic models, checks ranges and choices once, and turns any
problem into a single :class:`ParamsError` line that names the key path and the fix. After
:func:`load_params` nothing downstream touches raw dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dpsrgan.errors import DpsrganError

CELEBA_MD5 = {
    "img_align_celeba.zip": "00d2c5bc6d35e252742224ab0c1e8fcb",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}

Precision = Literal["fp32", "bf16", "fp16", "auto"]


class ParamsError(DpsrganError, ValueError):
    """A user-facing configuration error: one line naming the file, the key and the fix."""


class _Section(BaseModel):
    """Base for every params section: immutable, and an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    """Where the photographs come from and how they are cut into HR/LR pairs."""

    source: Literal["celeba", "folder"] = "folder"
    """``celeba``: the official aligned archive + partition file; ``folder``: any image tree."""
    uri: str = "bundled"
    """``gdrive`` | ``s3://bucket/prefix`` | ``https://…`` | a local zip or directory |
    ``bundled`` (photographs that ship with scikit-image, matplotlib and scikit-learn: the
    offline quickstart) | ``skimage`` (scikit-image's colour photographs only)."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (MinIO, Ceph, moto) for ``s3://`` URIs; None means AWS."""
    md5: dict[str, str] = Field(default_factory=lambda: dict(CELEBA_MD5))
    """Expected MD5 per downloaded file name; override per file for re-packed mirrors."""
    hr_size: int = Field(128, ge=16)
    """HR patch / face size in pixels (the paper: 128)."""
    patch_stride: int = Field(64, ge=8)
    """Folder sources: stride of the grid that cuts train photos into HR patches."""
    eval_max_side: int = Field(512, ge=16)
    """Folder sources: valid/test images are centre-cropped to at most this many pixels per side
    (and to a multiple of the scale), so evaluation on whole images stays fast."""
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    max_images: dict[Literal["train", "valid", "test"], int] = Field(default_factory=dict)
    """Optional cap on images per split (smoke runs, quick CelebA subsets); absent = all."""
    max_rejected_fraction: float = Field(0.01, ge=0, le=1)
    """The degrade stage fails when more than this fraction of the inputs is unreadable."""
    shard_rows: int = Field(4096, ge=1)
    """Rows per Parquet shard written by the degrade stage."""
    max_extract_bytes: int = Field(4 * 1024**3, ge=1)
    """Cap on an archive's total uncompressed size (zip-bomb guard)."""
    max_extract_files: int = Field(250_000, ge=1)
    """Cap on an archive's member count."""
    max_image_pixels: int = Field(64_000_000, ge=1)
    """Decompression-bomb guard for every decoded image."""

    @model_validator(mode="after")
    def _fractions_leave_a_train_split(self) -> DataParams:
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must be < 1 (e.g. 0.1 and 0.1)")
        return self


class DegradeParams(_Section):
    """HR→LR degradation: MATLAB-style bicubic by default, optional real-world noise."""

    scale: Literal[2, 4, 8] = 4
    real_world: bool = False
    """Add blur, noise and JPEG on top of bicubic (the paper's named future work)."""
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    noise_sigma: tuple[float, float] = (0.0, 5.0)
    """Gaussian noise std range, in 0–255 units."""
    jpeg_quality: tuple[int, int] = (60, 95)
    seed: int = 0

    @field_validator("blur_sigma", "noise_sigma", "jpeg_quality")
    @classmethod
    def _ordered_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if low > high or low < 0:
            raise ValueError(f"must be [low, high] with 0 <= low <= high, got {list(value)}")
        return value


class ModelParams(_Section):
    """Generator and discriminator shapes (DESIGN.md: the paper's architecture)."""

    channels: int = Field(64, ge=4)
    num_blocks: int = Field(16, ge=1)
    dilation: int | None = Field(2, ge=1)
    """PyTorch dilation of the extra conv in alternating blocks; 2 = the paper's 'rate 1'; null:
    no extra conv, i.e. SRResNet (what the baselines' ``srresnet`` arm trains)."""
    bicubic_skip: bool = True
    """The generator predicts a residual over MATLAB-bicubic upsampling, its last conv zero-
    initialised, so it starts at bicubic (false: the paper's form). Why it is our default:
    benchmarks/convergence.py — the paper's form is still below bicubic after minutes of CPU
    training, this one is above it."""
    d_channels: int = Field(64, ge=4)
    d_spectral_norm: bool = False
    d_residual_input: bool = True
    """The PatchGAN judges the candidate's detail over bicubic LR↑ beside LR↑ (an invertible
    recoding of the paper's (candidate, LR↑) input that D learns from in tens of steps instead of
    hundreds; models/discriminator.py); false is the paper's input."""
    discriminator: Literal["patchgan", "srgan"] = "patchgan"
    """``patchgan``: the paper's conditional PatchGAN on (HR, LR); ``srgan``: SRGAN's, on HR alone,
    with a dense head sized for the GAN crop (what the baselines' ``srgan`` arm trains)."""

    @model_validator(mode="after")
    def _srgan_discriminator_has_no_spectral_norm(self) -> ModelParams:
        if self.discriminator == "srgan" and self.d_spectral_norm:
            raise ValueError("d_spectral_norm applies to the PatchGAN only; use discriminator: patchgan")
        return self


class LossParams(_Section):
    """Perceptual + adversarial loss (l_G = l_perceptual + adv_weight · l_adv)."""

    vgg_weights: str = "torch-hub"
    """``torch-hub`` (torchvision's vgg19-dcbb9e9d.pth via torch.hub's cache/URL), a local path,
    an ``s3://`` URI, or ``random`` (explicit opt-in to an untrained VGG, with a warning)."""
    vgg_layer: str = "conv5_4"
    adv_weight: float = Field(1e-3, ge=0)
    pixel_weight: float = Field(10.0, ge=0)
    """Weight of an L1 pixel term in the GAN generator's loss (as ESRGAN's) that anchors the
    content whatever the VGG weights are; 0 is the paper's loss (perceptual + adversarial only).
    Measured from the quickstart's pretrained G (random VGG, 30 steps): at 0.01 the held-out
    PSNR-Y gain over bicubic fell from +0.92 to −2.2 dB; at 10 it stayed at +0.8 while the
    high-frequency energy rose by a fifth."""
    perceptual_normalized: bool = True
    """Divide the perceptual MSE by the mean square of HR's features, so it is a relative error
    (about 0.02–0.1 here) whatever the VGG weights' and layer's scale, and the pixel and
    adversarial weights mean the same with ImageNet and random weights; false is the paper's raw
    feature MSE."""
    real_label_range: tuple[float, float] = (0.7, 1.0)
    fake_label_range: tuple[float, float] = (0.0, 0.3)

    @field_validator("real_label_range", "fake_label_range")
    @classmethod
    def _probability_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 <= low <= high <= 1:
            raise ValueError(f"must be [low, high] within [0, 1], got {list(value)}")
        return value


class _TrainingParams(_Section):
    """Knobs shared by the two training stages."""

    epochs: int = Field(1, ge=1)
    steps_per_epoch: int | None = Field(None, ge=1)
    """Cap on optimiser steps per epoch (None: one pass over the train shard)."""
    batch_size: int = Field(16, ge=1)
    """Per-worker batch size."""
    betas: tuple[float, float] = (0.9, 0.999)
    precision: Precision = "auto"
    channels_last: bool = True
    checkpoint_every_steps: int = Field(200, ge=1)
    """Mid-epoch checkpoint interval (every epoch end is checkpointed too)."""
    crop_size: int | None = Field(None, ge=8)
    """Random HR crop side taken from each training patch (a multiple of the scale; a crop as
    large as the patch takes it whole); None trains on whole patches. Smaller crops: more,
    cheaper steps per second."""
    augment: bool = False
    """Random flips and 90° rotations of each training pair (the 8 symmetries of a square)."""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """After ``warmup_steps`` of linear warm-up: ``constant``, or ``cosine`` decay to 5 % by the last step."""
    warmup_steps: int = Field(0, ge=0)
    """Linear warm-up of every learning rate of the stage (both, in the GAN stage), whatever the schedule."""
    valid_max_images: int | None = Field(None, ge=1)
    """Cap on validation images per epoch (None: the whole valid split)."""
    seed: int = 0


class PretrainParams(_TrainingParams):
    """MSE pretraining of the generator (the paper's initialisation)."""

    lr: float = Field(1e-4, gt=0)
    pixel_loss: Literal["mse", "l1"] = "mse"
    """``mse`` is the paper's (SRResNet's) pretraining loss; ``l1`` (EDSR, ESRGAN) reaches a
    higher PSNR in a short run on small data."""


class GanParams(_TrainingParams):
    """Adversarial training: one D step then one G step per iteration.

    The generator's BatchNorm layers stay in eval mode throughout: normalised with the running
    statistics of pretraining (their affine weights still train), so G computes in training what
    it computes in inference. Recomputing them from GAN batches (4 crops of 64², where
    pretraining saw 6 of 96²) drifted them 7 % on average (up to 22 %) in 15 steps and moved the
    colour of held-out photos by 0.1/255 in 200 steps even with G's learning rate at 0."""

    lr_g: float = Field(1e-4, gt=0)
    lr_d: float = Field(1e-4, gt=0)
    d_warmup_steps: int = Field(0, ge=0)
    """Discriminator-only steps before the generator trains (G fixed, its learning rate 0; its
    warm-up starts after them): D learns to tell SR from HR before its judgement steers G. They
    cost about half a full step (no generator backward, no VGG)."""
    ema_decay: float = Field(0.999, ge=0, lt=1)
    """EMA of generator weights (0 disables); the EMA copy is evaluated and saved."""
    max_guard_restores: int = Field(3, ge=0)
    """Instability guard: restores of the last good checkpoint before the run fails."""
    guard_lr_factor: float = Field(0.5, gt=0, le=1)
    d_collapse_threshold: float = Field(0.02, ge=0, le=0.5)
    """D collapsed when mean D(real) and D(fake) (sigmoid, all ranks) sit within t of the same
    end (D no longer separates) or are inverted (D(real) < t, D(fake) > 1 - t)."""
    d_collapse_patience: int = Field(20, ge=1)
    """Consecutive collapsed steps before the guard acts (a non-finite loss acts at once)."""


class RayParams(_Section):
    """Where and how wide the Ray Train / Tune runs are."""

    address: str | None = None
    """Cluster address; None uses RAY_ADDRESS or starts a local Ray for the stage."""
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(0.5, gt=0)
    """0.5 on a 2-CPU box leaves room for Ray Data reads (API-FACTS: avoids a deadlock)."""
    cpus_per_data_task: float = Field(0.5, gt=0)
    """What each Ray Data read/decode task asks for; it must fit in what the workers leave free
    on a node (on a cluster the reads run on the driver's node), or the reads never start."""
    gpus_per_worker: float = Field(1.0, ge=0)
    storage_path: str = "outputs/ray"
    """Ray Train storage: a local directory (relative to the repo) or ``s3://…``."""
    s3_endpoint_url: str | None = None
    max_failures: int = Field(2, ge=0)
    """Worker-group restarts (from the last checkpoint) before the run fails."""
    log_to_driver: bool = False
    """Stream every worker's own log lines to the console (quiet by default; Ray's logs stay
    in its temp dir)."""


class TuneParams(_Section):
    """Ray Tune search over the adversarial weight with ASHA (dpsrgan/tuning)."""

    enabled: bool = True
    """Off: no sweep; train_gan uses ``loss.adv_weight``, ``gan.lr_g`` and ``gan.lr_d`` as set."""
    num_samples: int = Field(4, ge=1)
    """Trials; the first is the params' own ``loss.adv_weight``, the rest log-uniform samples."""
    adv_weight_min: float = Field(1e-3, gt=0)
    adv_weight_max: float = Field(5e-2, gt=0)
    tune_lr: bool = False
    epochs: int = Field(2, ge=1)
    """ASHA's max_t: completed epochs per trial."""
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)
    max_concurrent_trials: int = Field(2, ge=1)
    cpus_per_trial: float = Field(0.5, gt=0)
    workers_per_trial: int = Field(1, ge=1)
    objective: Literal["detail_within_bounds", "perceptual_with_psnr_floor", "perceptual", "psnr"] = (
        "detail_within_bounds"
    )
    """See dpsrgan/tuning/objective.py: the default wants HR's amount of fine detail among the
    trials that keep every bound below."""
    psnr_floor_db: float = Field(0.15, ge=0)
    """Allowed PSNR-Y drop below the pretrained generator before a trial is penalised; a trial
    below bicubic on the valid split is penalised whatever this allows."""
    max_color_shift: float = Field(1.0, ge=0)
    """Largest colour shift (0–255) allowed on any valid image."""
    min_hf_gain: float = Field(1.25, ge=0)
    """HF energy wanted, as a multiple of the pretrained generator's (1.25: a quarter sharper)."""
    seed: int = 0

    @model_validator(mode="after")
    def _ordered_bounds(self) -> TuneParams:
        if self.adv_weight_min >= self.adv_weight_max:
            raise ValueError("adv_weight_min must be < adv_weight_max (e.g. 1e-4 and 1e-2)")
        return self


class EvaluateParams(_Section):
    """Test-split evaluation: bicubic vs pretrained vs GAN generator."""

    crop_border: int | None = Field(None, ge=0)
    """Border crop for PSNR/SSIM; None = the scale (SR convention)."""
    lpips: bool = True
    """Compute LPIPS when its weights are available (skipped with a note otherwise)."""
    grid_images: int = Field(4, ge=1)
    batch_size: int = Field(8, ge=1)
    tile: int = Field(0, ge=0)
    """Inference tile size for large test images (0 = whole image)."""


class BaselinesParams(_Section):
    """SRResNet and SRGAN (Ledig et al., 2017) trained beside DPSRGAN by the same stages, on the
    same data, with the same pretrain.* / gan.* budget and seeds (dvc.yaml's ``pretrain_baseline``
    and ``train_gan_baseline`` stages; :mod:`dpsrgan.baselines`)."""

    enabled: bool = False
    """Off: the baseline stages write an 'off' marker and train nothing; evaluate marks their rows."""
    srgan_adv_weight: float = Field(1e-3, ge=0)
    """SRGAN's adversarial weight (its paper's 1e-3; the baselines get no tune sweep)."""


class MlflowParams(_Section):
    """Tracking experiment, registry name and the promotion gate."""

    experiment: str = "dpsrgan"
    registered_model: str = "dpsrgan"
    gate_metrics: dict[str, float] = Field(default_factory=lambda: {"psnr_y": -0.05, "ssim_y": -0.002})
    """Promotion gate vs the champion: metric → smallest allowed delta (negative = tolerance)."""
    gate_absolute: dict[str, float] = Field(default_factory=lambda: {"psnr_y_gain": 0.0})
    """With no champion yet: metric → minimum value. ``psnr_y_gain`` is the model's PSNR-Y minus
    bicubic's on the same test images: promotion needs a model that beats the free baseline."""


class Params(_Section):
    """The whole of ``params.yaml``."""

    data: DataParams = DataParams()
    degrade: DegradeParams = DegradeParams()
    model: ModelParams = ModelParams()
    loss: LossParams = LossParams()
    pretrain: PretrainParams = PretrainParams()
    gan: GanParams = GanParams()
    ray: RayParams = RayParams()
    tune: TuneParams = TuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    baselines: BaselinesParams = BaselinesParams()
    mlflow: MlflowParams = MlflowParams()


    @model_validator(mode="after")
    def _crops_align_with_lr_pixels(self) -> Params:
        for key in ("pretrain", "gan"):
            crop = getattr(self, key).crop_size
            if crop is not None and crop % self.degrade.scale:
                raise ValueError(
                    f"{key}.crop_size={crop} must be a multiple of degrade.scale={self.degrade.scale} (e.g. 64)"
                )
        return self


def _describe(error: ValidationError, source: str) -> str:
    """First validation problem as ``source: key.path: message (got value)``."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<top level>"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (misspelt? see params.yaml's documented keys)"
    got = first.get("input")
    shown = "" if first["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f"; and {more} more problem(s)" if more else ""
    return f"{source}: {key}: {message}{shown}{tail}"


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    """Validate a params mapping; raise :class:`ParamsError` with one readable line."""
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(_describe(error, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml`` (or any file with the same layout)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repo root or pass --params PATH") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections (data, model, ...)")
    return parse_params(raw, source=str(path))
