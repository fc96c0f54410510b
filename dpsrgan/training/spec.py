"""What every Ray Train worker of a run receives: the frozen params (the tune stage's choice and a
baseline arm's model already applied) and the few things the driver resolves — the generator's
architecture, the steps per epoch the data allows, the grid's images — plus a small handle for
Ray object refs, sinks and run ids. No field is a copy of a param: workers read the params."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dpsrgan.config import GanParams, Params, PretrainParams
from dpsrgan.training.faults import FaultInjection

Stage = Literal["pretrain", "gan"]


@dataclass(frozen=True)
class RunHandles:
    """The run's live handles (not params): set by the driver, the same on every worker."""

    pretrained: Any = None
    """ObjectRef of the starting generator's state_dict (GAN stage)."""
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    sink: Any = None
    """:class:`~dpsrgan.training.progress.ProgressSink` handle (None: no live progress)."""
    faults: FaultInjection = field(default_factory=FaultInjection)
    meta: dict[str, Any] = field(default_factory=dict)
    """Saved in every checkpoint (stage, run name, architectures)."""


@dataclass(frozen=True)
class GuardSettings:
    """The instability guard's budget (:mod:`dpsrgan.training.guard`)."""

    max_restores: int
    lr_factor: float
    collapse_threshold: float | None
    collapse_patience: int


PRETRAIN_GUARD = GuardSettings(max_restores=0, lr_factor=0.5, collapse_threshold=None, collapse_patience=1)
"""The MSE pretraining has no discriminator to collapse, and a non-finite loss there is a bug or a
learning rate to lower, not an oscillation to ride out: it fails at once."""


@dataclass(frozen=True)
class WorkerSpec:
    """One run's worker input (``train_loop_config={"spec": WorkerSpec(...)}``)."""

    stage: Stage
    params: Params
    generator: dict[str, Any]
    """The generator's architecture (the pretrained checkpoint's in the GAN stage)."""
    steps_per_epoch: int
    """``<stage>.steps_per_epoch`` capped by what each worker's share of the train split allows."""
    grid_ids: tuple[str, ...] = ()
    validate: bool = True
    handles: RunHandles = field(default_factory=RunHandles)

    @property
    def section(self) -> PretrainParams | GanParams:
        """The stage's own params section (``pretrain`` or ``gan``)."""
        return self.params.pretrain if self.stage == "pretrain" else self.params.gan

    @property
    def lr_g(self) -> float:
        return self.params.pretrain.lr if self.stage == "pretrain" else self.params.gan.lr_g

    @property
    def lr_d(self) -> float:
        return self.params.gan.lr_d

    @property
    def d_warmup_steps(self) -> int:
        return 0 if self.stage == "pretrain" else self.params.gan.d_warmup_steps

    @property
    def crop_border(self) -> int:
        border = self.params.evaluate.crop_border
        return self.params.degrade.scale if border is None else border

    @property
    def discriminator(self) -> dict[str, Any]:
        """The discriminator's architecture (``model.discriminator``'s kind)."""
        return discriminator_architecture(self.params)

    @property
    def guard(self) -> GuardSettings:
        if self.stage == "pretrain":
            return PRETRAIN_GUARD
        gan = self.params.gan
        return GuardSettings(gan.max_guard_restores, gan.guard_lr_factor, gan.d_collapse_threshold, gan.d_collapse_patience)

    @property
    def guard_hint(self) -> str:
        """The fix the instability guard's failure message suggests."""
        if self.stage == "pretrain":
            return "lower pretrain.lr, or set pretrain.precision: fp32"
        return "lower gan.lr_g / gan.lr_d, try model.d_spectral_norm: true, or raise gan.max_guard_restores"


def discriminator_architecture(params: Params) -> dict[str, Any]:
    """The GAN stage's discriminator as :func:`~dpsrgan.models.discriminator.build_discriminator`
    takes it: the paper's PatchGAN, or SRGAN's with its dense head sized for the training crop."""
    model = params.model
    match model.discriminator:
        case "patchgan":
            return {
                "in_channels": 3,
                "channels": model.d_channels,
                "spectral_norm": model.d_spectral_norm,
                "residual_input": model.d_residual_input,
            }
        case "srgan":  # whole patches when there is no crop
            side = min(params.gan.crop_size or params.data.hr_size, params.data.hr_size)
            return {"kind": "srgan", "hr_size": [side, side], "in_channels": 3, "channels": model.d_channels}
