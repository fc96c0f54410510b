"""Typed, validated view of ``params.yaml``.

Every knob of the pipeline lives in ``params.yaml`` (DVC tracks it per key). This module maps its
top-level sections onto frozen pydantic models, checks ranges and choices once, and turns any
problem into a single :class:`ParamsError` line that names the key path and the fix. After
:func:`load_params` nothing downstream touches raw dicts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dpsrgan.errors import DpsrganError
from dpsrgan.models.vgg_layers import LAYER_HINT, LAYER_INDEX

CELEBA_MD5 = {
    "img_align_celeba.zip": "00d2c5bc6d35e252742224ab0c1e8fcb",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}

Precision = Literal["fp32", "bf16", "fp16", "auto"]
LrSchedule = Literal["constant", "cosine"]
CropSize = Annotated[int, Field(ge=8)]
AdamBeta = Annotated[float, Field(ge=0, lt=1)]

GATE_HIGHER_IS_BETTER = frozenset({"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "psnr_y_gain"})
GATE_LOWER_IS_BETTER = frozenset({"lpips", "ms_per_image", "num_params"})
"""What the promotion gate can compare (``mlflow.gate_metrics`` / ``mlflow.gate_absolute`` keys):
the candidate's numbers in the evaluate stage's summary (its ``gan`` section, which the register
stage logs unprefixed) whose better direction the gate knows (the promotion gate reads the
directions from here). Left out: ``color_shift`` and
``gflops_per_output_mp`` (lower is better, but the gate would compare them as higher-is-better)
and ``hf_ratio`` (best near HR's 1, no better direction)."""
GATE_METRICS = GATE_HIGHER_IS_BETTER | GATE_LOWER_IS_BETTER

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_REMOTE = ("s3://", "http://", "https://")


class ParamsError(DpsrganError, ValueError):
    """A user-facing configuration error: one line naming the file, the key and the fix."""


class _Section(BaseModel):
    """Base for every params section: immutable, an unknown key is an error, and every float is
    finite (YAML's ``.inf`` / ``.nan`` are refused where they are read, not steps later)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _not_blank(value: str, example: str) -> str:
    if not value.strip():
        raise ValueError(f"must not be empty; e.g. {example}")
    return value


def _endpoint_url(value: str | None) -> str | None:
    """An S3-compatible endpoint: ``http(s)://host[:port]`` (boto3, pyarrow and DVC all need the scheme)."""
    if value is None:
        return value
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be http(s)://host:port, e.g. http://127.0.0.1:9000, or null for AWS")
    return value


EndpointUrl = Annotated[str | None, AfterValidator(_endpoint_url)]
"""An optional S3-compatible endpoint param (``data.s3_endpoint_url``, ``ray.s3_endpoint_url``)."""


def _ordered_range(value: tuple[float, float], low_bound: float, high_bound: float | None, example: str) -> tuple:
    """A ``[low, high]`` range within ``[low_bound, high_bound]`` (None: no upper bound)."""
    low, high = value
    upper = "" if high_bound is None else f" <= {high_bound:g}"
    if not low_bound <= low <= high or (high_bound is not None and high > high_bound):
        raise ValueError(f"must be [low, high] with {low_bound:g} <= low <= high{upper}, e.g. {example}")
    return value


class DataParams(_Section):
    """Where the photographs come from and how they are cut into HR/LR pairs."""

    source: Literal["celeba", "folder"] = "folder"
    """``celeba``: the official aligned archive + partition file; ``folder``: any image tree."""
    uri: str = "bundled"
    """``gdrive`` | ``s3://bucket/prefix`` | ``https://…`` | a local zip or directory |
    ``bundled`` (photographs that ship with scikit-image, matplotlib and scikit-learn: the
    offline quickstart) | ``skimage`` (scikit-image's colour photographs only). Never empty: an
    empty path is the working directory, which the download stage would copy whole."""
    s3_endpoint_url: EndpointUrl = None
    """S3-compatible endpoint (MinIO, Ceph, moto) for ``s3://`` URIs; None means AWS."""
    md5: dict[str, str] = Field(default_factory=lambda: dict(CELEBA_MD5))
    """Expected MD5 (32 hex digits) per downloaded file name; override per file for re-packed mirrors."""
    hr_size: int = Field(128, ge=16)
    """HR patch / face size in pixels (the paper: 128); a multiple of ``degrade.scale``."""
    patch_stride: int = Field(48, ge=8)
    """Folder sources: stride of the grid that cuts train photos into HR patches."""
    eval_max_side: int = Field(512, ge=16)
    """Folder sources: valid/test images are centre-cropped to at most this many pixels per side
    (and to a multiple of the scale), so evaluation on whole images stays fast."""
    valid_fraction: float = Field(0.04, gt=0, lt=1)
    """Folder sources: share of the photographs (by a hash of each relative path) in valid."""
    test_fraction: float = Field(0.36, gt=0, lt=1)
    """Folder sources: share in test (the bundled 17 photographs: 6 test, 2 valid, 9 train)."""
    max_images: dict[Literal["train", "valid", "test"], PositiveInt] = Field(default_factory=dict)
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

    @field_validator("uri")
    @classmethod
    def _uri_given(cls, value: str) -> str:
        return _not_blank(value, "bundled, gdrive, s3://bucket/prefix or a local directory")

    @field_validator("md5")
    @classmethod
    def _md5_hex(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if not _MD5.match(str(digest)):
                example = CELEBA_MD5.get(name, CELEBA_MD5["list_eval_partition.txt"])
                raise ValueError(f"{name}: {digest!r} is not an MD5; give 32 hex digits, e.g. {example}")
        return value

    @model_validator(mode="after")
    def _fractions_leave_a_train_split(self) -> DataParams:
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("data.valid_fraction + data.test_fraction must be < 1 (e.g. 0.04 and 0.36)")
        return self


class DegradeParams(_Section):
    """HR→LR degradation: MATLAB-style bicubic by default, optional real-world noise."""

    scale: Literal[2, 4, 8] = 4
    real_world: bool = False
    """Add blur, noise and JPEG on top of bicubic (the paper's named future work)."""
    blur_sigma: tuple[float, float] = (0.2, 1.5)
    """Gaussian blur std range, in HR pixels (0: no blur)."""
    noise_sigma: tuple[float, float] = (0.0, 5.0)
    """Gaussian noise std range, in 0–255 units."""
    jpeg_quality: tuple[int, int] = (60, 95)
    """JPEG quality range; PIL's scale is 1..100."""
    seed: int = 0

    @field_validator("blur_sigma", "noise_sigma")
    @classmethod
    def _sigma_range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple[float, float]:
        return _ordered_range(value, 0, None, "[0.2, 1.5]" if info.field_name == "blur_sigma" else "[0.0, 5.0]")

    @field_validator("jpeg_quality")
    @classmethod
    def _quality_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        return _ordered_range(value, 1, 100, "[60, 95]")


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
            raise ValueError("model.d_spectral_norm applies to the PatchGAN only; set it false or use model.discriminator: patchgan")
        return self


class LossParams(_Section):
    """Perceptual + adversarial loss (l_G = l_perceptual + adv_weight · l_adv)."""

    vgg_weights: str = "random"
    """``torch-hub`` (torchvision's vgg19-dcbb9e9d.pth via torch.hub's cache/URL), a local path,
    an ``s3://`` URI, or ``random`` (explicit opt-in to an untrained VGG, with a warning: the
    offline quickstart cannot download ImageNet weights; the CelebA profile sets torch-hub)."""
    vgg_layer: str = "conv5_4"
    """The VGG19 feature map Φ_ij compared (the paper: conv5_4, before its ReLU); any name
    :mod:`dpsrgan.models.vgg_layers` lists (convB_K, reluB_K, poolB)."""
    adv_weight: float = Field(1e-2, ge=0)
    """Weight of l_adv in l_G (the paper: 1e-3, as the CelebA profile sets); the tune sweep's
    first trial, and what train_gan uses with ``tune.enabled: false``."""
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
    """Label smoothing of the discriminator's real targets: each patch's label is drawn from
    this range (the paper's [0.7, 1.0])."""
    fake_label_range: tuple[float, float] = (0.0, 0.3)
    """... and of its fake targets (the paper's [0.0, 0.3])."""

    @field_validator("vgg_weights")
    @classmethod
    def _weights_given(cls, value: str) -> str:
        return _not_blank(value, "torch-hub, random, s3://bucket/vgg19-dcbb9e9d.pth or a local path")

    @field_validator("vgg_layer")
    @classmethod
    def _known_layer(cls, value: str) -> str:
        if value not in LAYER_INDEX:
            raise ValueError(f"not a VGG19 layer; use {LAYER_HINT}")
        return value

    @field_validator("real_label_range", "fake_label_range")
    @classmethod
    def _probability_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered_range(value, 0, 1, "[0.7, 1.0] for real, [0.0, 0.3] for fake")


class _TrainingParams(_Section):
    """Knobs shared by the two training stages. The first six differ per stage in params.yaml,
    so each stage's class sets their defaults (here they are documented, and required)."""

    epochs: PositiveInt
    steps_per_epoch: PositiveInt | None
    """Cap on optimiser steps per epoch (None: one pass over the train shard)."""
    batch_size: PositiveInt
    """Per-worker batch size."""
    crop_size: CropSize | None
    """Random HR crop side taken from each training patch (a multiple of the scale; a crop as
    large as the patch takes it whole); None trains on whole patches. Smaller crops: more,
    cheaper steps per second."""
    lr_schedule: LrSchedule
    """After ``warmup_steps`` of linear warm-up: ``constant``, or ``cosine`` decay to 5 % by the last step."""
    warmup_steps: NonNegativeInt
    """Linear warm-up of every learning rate of the stage (both, in the GAN stage), whatever the schedule."""
    betas: tuple[AdamBeta, AdamBeta] = (0.9, 0.999)
    """Adam's (β1, β2), each in [0, 1)."""
    precision: Precision = "auto"
    """auto: bf16 on GPUs and AMX CPUs, fp16 with a grad scaler on older GPUs, else fp32."""
    channels_last: bool = True
    checkpoint_every_steps: PositiveInt = 1000
    """Mid-epoch checkpoint interval (every epoch end is checkpointed too)."""
    augment: bool = True
    """Random flips and 90° rotations of each training pair (the 8 symmetries of a square)."""
    valid_max_images: PositiveInt | None = None
    """Cap on validation images per epoch (None: the whole valid split)."""
    seed: int = 0


class PretrainParams(_TrainingParams):
    """MSE pretraining of the generator (the paper's initialisation)."""

    epochs: PositiveInt = 5
    steps_per_epoch: PositiveInt | None = 240
    batch_size: PositiveInt = 3
    """Per worker: more, smaller steps beat fewer big ones in the quickstart's budget."""
    crop_size: CropSize | None = 96
    lr_schedule: LrSchedule = "cosine"
    warmup_steps: NonNegativeInt = 50
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

    epochs: PositiveInt = 4
    """4 × 25 steps: the first epoch is D's warm-up, so the history shows D learn."""
    steps_per_epoch: PositiveInt | None = 25
    batch_size: PositiveInt = 4
    crop_size: CropSize | None = 64
    lr_schedule: LrSchedule = "constant"
    warmup_steps: NonNegativeInt = 40
    """Adam's first steps jolt a converged generator: both learning rates warm up linearly."""
    lr_g: float = Field(2e-5, gt=0)
    """Fine-tuning: a fifth of the pretraining rate keeps the content."""
    lr_d: float = Field(1e-4, gt=0)
    d_warmup_steps: int = Field(25, ge=0)
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
    s3_endpoint_url: EndpointUrl = None
    """S3-compatible endpoint for an ``s3://`` storage_path (http(s)://host:port); None means AWS."""
    max_failures: int = Field(2, ge=0)
    """Worker-group restarts (from the last checkpoint) before the run fails."""
    log_to_driver: bool = False
    """Stream every worker's own log lines to the console (quiet by default; Ray's logs stay
    in its temp dir)."""

    @field_validator("storage_path")
    @classmethod
    def _storage_given(cls, value: str) -> str:
        return _not_blank(value, "outputs/ray or s3://bucket/prefix")

    @model_validator(mode="after")
    def _gpu_workers_get_gpus(self) -> RayParams:
        if self.use_gpu and self.gpus_per_worker <= 0:
            raise ValueError("ray.use_gpu: true needs ray.gpus_per_worker > 0 (e.g. 1.0), or set ray.use_gpu: false")
        return self


class TuneParams(_Section):
    """Ray Tune search over the adversarial weight with ASHA (dpsrgan/tuning)."""

    enabled: bool = True
    """Off: no sweep; train_gan uses ``loss.adv_weight``, ``gan.lr_g`` and ``gan.lr_d`` as set."""
    num_samples: int = Field(2, ge=1)
    """Trials; the first is the params' own ``loss.adv_weight``, the rest log-uniform samples."""
    adv_weight_min: float = Field(1e-3, gt=0)
    adv_weight_max: float = Field(5e-2, gt=0)
    tune_lr: bool = False
    epochs: int = Field(4, ge=1)
    """ASHA's max_t: completed epochs per trial (as long as the GAN stage's ``gan.epochs``)."""
    grace_period: int = Field(4, ge=1)
    """Epochs before ASHA may stop a trial (= epochs: none stopped; every trial ties during D's
    warm-up)."""
    reduction_factor: int = Field(2, ge=2)
    max_concurrent_trials: int = Field(2, ge=1)
    cpus_per_trial: float = Field(0.25, gt=0)
    """The trial's driver; 0.25 fits 2 trials beside one 0.5-CPU data read on 2 CPUs."""
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
            raise ValueError("tune.adv_weight_min must be < tune.adv_weight_max (e.g. 0.001 and 0.05)")
        return self


class EvaluateParams(_Section):
    """Test-split evaluation: bicubic vs pretrained vs GAN generator."""

    crop_border: int | None = Field(None, ge=0)
    """Border crop for PSNR/SSIM; None = the scale (SR convention)."""
    lpips: bool = True
    """Compute LPIPS when its weights are available (skipped with a note otherwise)."""
    grid_images: int = Field(3, ge=1)
    """Test images shown in the sample grid (rows)."""
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

    experiment: str = "dpsrgan-quickstart"
    """MLflow experiment of every stage's runs (the CelebA profile: dpsrgan-celeba)."""
    registered_model: str = "dpsrgan"
    gate_metrics: dict[str, float] = Field(default_factory=lambda: {"psnr_y": -0.05, "ssim_y": -0.002})
    """Promotion gate vs the champion: metric (one of :data:`GATE_METRICS`) → smallest allowed
    improvement (negative = tolerance)."""
    gate_absolute: dict[str, float] = Field(default_factory=lambda: {"psnr_y_gain": 0.0})
    """With no champion yet: metric → minimum value (maximum for lower-is-better ones).
    ``psnr_y_gain`` is the model's PSNR-Y minus bicubic's on the same test images: promotion
    needs a model that beats the free baseline."""

    @field_validator("experiment", "registered_model")
    @classmethod
    def _name_given(cls, value: str) -> str:
        return _not_blank(value, "dpsrgan")

    @field_validator("gate_metrics", "gate_absolute")
    @classmethod
    def _gate_can_compare(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - GATE_METRICS)
        if unknown:
            raise ValueError(
                f"the promotion gate cannot compare {', '.join(unknown)}; use metrics of the evaluate "
                f"summary it knows: {', '.join(sorted(GATE_METRICS))} (e.g. {{psnr_y: -0.05}})"
            )
        return value


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
    def _sizes_align_with_lr_pixels(self) -> Params:
        scale = self.degrade.scale
        if self.data.hr_size % scale:
            raise ValueError(f"data.hr_size={self.data.hr_size} must be a multiple of degrade.scale={scale} (e.g. 128)")
        for key in ("pretrain", "gan"):
            crop = getattr(self, key).crop_size
            if crop is not None and crop % scale:
                raise ValueError(f"{key}.crop_size={crop} must be a multiple of degrade.scale={scale} (e.g. 64)")
        return self

    @model_validator(mode="after")
    def _uri_fits_the_source(self) -> Params:
        """A folder source's URI that the download stage could only refuse with a misleading
        'not a directory'. (``data.source: celeba`` with ``data.uri: bundled`` is left to the
        download stage, the only one that reads the URI: its one line already says what CelebA
        takes, and the later stages' own params files leave the URI at its default.)"""
        source, uri = self.data.source, self.data.uri
        if source == "folder" and uri == "gdrive":
            raise ValueError("data.uri=gdrive names CelebA's Drive files; set data.source: celeba, or data.uri: bundled")
        if source == "folder" and uri.startswith(_REMOTE) and not uri.endswith(".zip"):
            raise ValueError(f"data.uri={uri}: a remote folder source is a .zip of images, e.g. s3://bucket/photos.zip")
        return self

    @model_validator(mode="after")
    def _gate_metrics_are_measured(self) -> Params:
        for key in ("gate_metrics", "gate_absolute"):
            if "lpips" in getattr(self.mlflow, key) and not self.evaluate.lpips:
                raise ValueError(
                    f"mlflow.{key} gates on lpips, which evaluate.lpips: false never measures; "
                    "set evaluate.lpips: true or drop lpips from the gate"
                )
        return self

    @model_validator(mode="after")
    def _generator_trains_after_d_warmup(self) -> Params:
        """D's warm-up must leave the generator steps to train, in the stage and in each tune trial
        (checked where the step count is known from params: ``gan.steps_per_epoch`` set)."""
        per_epoch, warmup = self.gan.steps_per_epoch, self.gan.d_warmup_steps
        if per_epoch is None or warmup == 0:
            return self
        runs = {"gan.epochs": self.gan.epochs}
        if self.tune.enabled:
            runs["tune.epochs"] = self.tune.epochs
        for key, epochs in runs.items():
            if epochs * per_epoch <= warmup:
                raise ValueError(
                    f"gan.d_warmup_steps={warmup} leaves the generator no step in {key}={epochs} × "
                    f"gan.steps_per_epoch={per_epoch}; lower gan.d_warmup_steps or raise {key}"
                )
        return self


def _describe(error: ValidationError, source: str) -> str:
    """First validation problem as ``source: key.path: message (got value)``; a cross-field
    check's message names its keys itself."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (misspelt? see params.yaml's documented keys)"
    got = first.get("input")
    shown = "" if first["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
    where = "" if not key or message.startswith(key) else f"{key}: "
    more = len(error.errors()) - 1
    tail = f"; and {more} more problem(s)" if more else ""
    return f"{source}: {where}{message}{shown}{tail}"


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
