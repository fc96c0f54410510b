"""The Ray Train per-worker function shared by the MSE pretraining and the GAN stage.

Each worker: build the models (same seed on every rank, then DDP), resume from Ray Train's
latest checkpoint if there is one, then per epoch::

    for each batch of its train shard:   crop/flip (augment.py) → learning rate (schedule.py)
                                         → step (steps.py) → all-rank health check (guard.py)
                                         → EMA update → every N steps: checkpoint
    validate (validation.py: every rank on its own rows, all-reduced) → history row → checkpoint

Checkpoints hold the full state (state.py) and are written by rank 0 only; every rank also
keeps the last one in memory as the instability guard's "last good" state. A worker that dies
makes Ray Train restart the whole group, and this function starts over from the top, resuming
from the latest registered checkpoint — mid-epoch included (the consumed batches are skipped).

In the GAN stage the generator's BatchNorm keeps its pretrained statistics (steps.py's
``freeze_batch_norm_statistics``) and its learning rate starts after the discriminator's warm-up
(schedule.py). Rank 0 renders the comparison grid and is the only rank that talks to MLflow and
the progress sink.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from dpsrgan.checkpoint import unwrap
from dpsrgan.models.discriminator import build_discriminator
from dpsrgan.models.generator import Generator
from dpsrgan.training.augment import random_crop, random_dihedral
from dpsrgan.training.ema import EMA
from dpsrgan.training.guard import InstabilityGuard, all_rank_health
from dpsrgan.training.precision import images_to_device, select_precision, to_channels_last
from dpsrgan.training.progress import StepReporter
from dpsrgan.training.schedule import stage_learning_rates
from dpsrgan.training.spec import WorkerSpec
from dpsrgan.training.state import (
    Progress,
    TrainingParts,
    capture,
    load_state,
    restore,
    rng_state,
    save_state,
    seed_everything,
    set_rng_state,
)
from dpsrgan.training.steps import freeze_batch_norm_statistics, gan_step, pretrain_step
from dpsrgan.training.validation import GridImages, Validator

logger = logging.getLogger("dpsrgan.training")

VALID_READ_BATCH = 16
RANK_SEED_STRIDE = 7919


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point: ``train_loop_config={"spec": WorkerSpec(...)}``."""
    _Worker(config["spec"]).run()


class _Worker:
    def __init__(self, cfg: WorkerSpec) -> None:
        context = ray.train.get_context()
        self.cfg = cfg
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()
        torch.backends.cudnn.benchmark = True  # fixed train shapes: let cuDNN pick its fastest kernels
        self.plan = select_precision(cfg.section.precision, self.device)
        self.parts, self.perceptual = self._build()
        self.progress = self._resume_or_start()
        self.last_good = capture(self.parts, self.progress, [], cfg.handles.meta)
        self.guard = InstabilityGuard(cfg.guard.collapse_threshold, cfg.guard.collapse_patience)
        self.validator = Validator(
            cfg.generator["scale"],
            cfg.crop_border,
            self.rank,
            self.world,
            self.device,
            cfg.section.channels_last,
            grid_ids=cfg.grid_ids,
            perceptual=self.perceptual,
        )
        self.mlflow = None
        self.reporter = None
        if self.rank == 0:
            if cfg.handles.tracking_uri and cfg.handles.mlflow_run_id:
                from dpsrgan.lifecycle.tracking import RunLogger

                self.mlflow = RunLogger(cfg.handles.tracking_uri, cfg.handles.mlflow_run_id)
            if cfg.handles.sink is not None:
                self.reporter = StepReporter(
                    cfg.handles.sink, cfg.stage, cfg.section.epochs, cfg.steps_per_epoch, cfg.section.batch_size * self.world
                )

    # --- construction and resumption --------------------------------------------------------

    def _build(self) -> tuple[TrainingParts, torch.nn.Module | None]:
        cfg, device = self.cfg, self.device
        seed_everything(cfg.section.seed)  # identical initial weights (and random VGG) on every rank
        generator = Generator.from_config(cfg.generator)
        if cfg.handles.pretrained is not None:
            generator.load_state_dict(ray.get(cfg.handles.pretrained))
        generator = to_channels_last(generator.to(device), cfg.section.channels_last)
        ema = EMA(generator, cfg.params.gan.ema_decay) if cfg.stage == "gan" and cfg.params.gan.ema_decay > 0 else None
        generator = ray.train.torch.prepare_model(generator)
        if cfg.stage == "gan":
            freeze_batch_norm_statistics(generator)
        optimizer_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=cfg.section.betas)
        parts = TrainingParts(generator, optimizer_g, self.plan.grad_scaler(), ema=ema)
        if cfg.stage != "gan":
            return parts, None

        from dpsrgan.losses import PerceptualLoss
        from dpsrgan.models.vgg import VGG19Features

        discriminator = build_discriminator(cfg.discriminator)
        discriminator = ray.train.torch.prepare_model(
            to_channels_last(discriminator.to(device), cfg.section.channels_last)
        )
        parts.discriminator = discriminator
        parts.optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=cfg.section.betas)
        parts.scaler_d = self.plan.grad_scaler()
        features = VGG19Features(cfg.params.loss.vgg_layer, cfg.params.loss.vgg_weights)
        perceptual = PerceptualLoss(
            to_channels_last(features.to(device), cfg.section.channels_last), normalized=cfg.params.loss.perceptual_normalized
        )
        return parts, perceptual

    def _resume_or_start(self) -> Progress:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            progress = Progress()
            seed_everything(self.cfg.section.seed + RANK_SEED_STRIDE * self.rank)  # per-rank label noise
        else:
            with checkpoint.as_directory() as directory:
                state = load_state(Path(directory))
            progress = restore(self.parts, state)
            if len(state["rng"]) == self.world:
                set_rng_state(state["rng"][self.rank])
            else:  # resumed with another number of workers: fresh, distinct streams
                seed_everything(self.cfg.section.seed + RANK_SEED_STRIDE * self.rank + progress.global_step)
        progress.starts.append(progress.global_step)
        return progress

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        cfg, progress = self.cfg, self.progress
        if progress.global_step and self.reporter:
            self.reporter.event(f"resumed from the checkpoint at step {progress.global_step}", logging.INFO)
        while self.progress.epoch < cfg.section.epochs:
            outcome = self._train_epoch()
            if outcome == "failed":
                break
            if outcome == "done":
                self._finish_epoch()
        if self.mlflow:
            self.mlflow.flush()

    def _train_epoch(self) -> str:
        """Train until the epoch's step budget is spent; ``done``, ``restored`` or ``failed``."""
        cfg, p = self.cfg, self.progress
        self.epoch_started = time.monotonic()
        shard = ray.train.get_dataset_shard("train")
        batches = iter(
            shard.iter_torch_batches(
                batch_size=cfg.section.batch_size,
                drop_last=True,
                device=self.device,
                local_shuffle_buffer_size=4 * cfg.section.batch_size,
                local_shuffle_seed=cfg.section.seed + p.epoch,
            )
        )
        for _ in range(p.step_in_epoch):  # resumed mid-epoch: skip what was already trained on
            next(batches)
        if self.reporter:
            self.reporter.restart_clock()
        while p.step_in_epoch < cfg.steps_per_epoch:
            batch = next(batches)
            lr, hr = self._augment(
                images_to_device(batch["lr"], self.device, cfg.section.channels_last),
                images_to_device(batch["hr"], self.device, cfg.section.channels_last),
            )
            self.parts.set_learning_rates(self._learning_rates(p.global_step))
            cfg.handles.faults.maybe_kill(self.rank, p.global_step + 1)
            if cfg.handles.faults.poison(self.rank, p.global_step + 1):
                lr = lr * math.nan
            losses = self._step(lr, hr)
            nonfinite, real_mean, fake_mean = all_rank_health(losses, self.device)
            reason = self.guard.observe(nonfinite, real_mean, fake_mean)
            if reason:
                return self._recover(reason, p.global_step + 1)
            if self.parts.ema is not None:
                self.parts.ema.update(unwrap(self.parts.generator))
            p.global_step += 1
            p.step_in_epoch += 1
            for key, value in losses.items():
                p.epoch_sums[key] = p.epoch_sums.get(key, 0.0) + value
                p.epoch_counts[key] = p.epoch_counts.get(key, 0) + 1
            self._log_step(losses)
            if p.global_step % cfg.section.checkpoint_every_steps == 0 and p.step_in_epoch < cfg.steps_per_epoch:
                self._checkpoint({"epoch": p.epoch, "global_step": p.global_step, **losses})
                if self.reporter:
                    self.reporter.restart_clock()
        return "done"

    def _augment(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crop and dihedral turn of the batch (torch's RNG: seeded per rank, checkpointed)."""
        cfg = self.cfg
        if cfg.section.crop_size is not None:
            lr, hr = random_crop(lr, hr, min(cfg.section.crop_size, *hr.shape[-2:]))
        if cfg.section.augment:
            lr, hr = random_dihedral(lr, hr)
        if cfg.section.crop_size is None and not cfg.section.augment:
            return lr, hr
        memory_format = torch.channels_last if cfg.section.channels_last else torch.contiguous_format
        return lr.contiguous(memory_format=memory_format), hr.contiguous(memory_format=memory_format)

    def _learning_rates(self, step: int) -> dict[str, float]:
        cfg = self.cfg
        return stage_learning_rates(
            step,
            lr_g=cfg.lr_g,
            lr_d=cfg.lr_d,
            schedule=cfg.section.lr_schedule,
            total_steps=cfg.section.epochs * cfg.steps_per_epoch,
            warmup_steps=cfg.section.warmup_steps,
            d_warmup_steps=cfg.d_warmup_steps,
            scale=self.progress.lr_scale,
        )

    def _step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        cfg, parts = self.cfg, self.parts
        if cfg.stage == "pretrain":
            return pretrain_step(
                parts.generator,
                parts.optimizer_g,
                lr,
                hr,
                precision=self.plan,
                scaler=parts.scaler_g,
                loss=cfg.params.pretrain.pixel_loss,
            )
        return gan_step(
            parts.generator,
            parts.discriminator,
            self.perceptual,
            parts.optimizer_g,
            parts.optimizer_d,
            lr,
            hr,
            adv_weight=cfg.params.loss.adv_weight,
            pixel_weight=cfg.params.loss.pixel_weight,
            real_label_range=cfg.params.loss.real_label_range,
            fake_label_range=cfg.params.loss.fake_label_range,
            precision=self.plan,
            scaler_g=parts.scaler_g,
            scaler_d=parts.scaler_d,
            train_generator=self.progress.global_step >= cfg.d_warmup_steps,
        )

    def _log_step(self, losses: dict[str, float]) -> None:
        p = self.progress
        if self.reporter:
            self.reporter.step(p.epoch, p.step_in_epoch, p.global_step, losses)
        if self.mlflow:
            rate = {"perf/samples_per_s": self.reporter.samples_per_s} if self.reporter else {}
            self.mlflow.log_metrics({**losses, **rate}, step=p.global_step)

    def _finish_epoch(self) -> None:
        p = self.progress
        row: dict[str, float] = {"epoch": p.epoch + 1, "global_step": p.global_step}
        row.update({key: total / p.epoch_counts[key] for key, total in p.epoch_sums.items()})
        row["perf/samples_per_s"] = self.reporter.samples_per_s if self.reporter else math.nan
        row["lr_scale"] = p.lr_scale
        grid = None
        if self.cfg.validate:
            metrics, grid = self._validate()
            row.update(metrics)
        row["perf/epoch_s"] = time.monotonic() - self.epoch_started  # this process's share of it
        p.history.append(row)
        p.epoch += 1
        p.step_in_epoch, p.epoch_sums, p.epoch_counts = 0, {}, {}
        self._checkpoint(row)
        if self.reporter:
            self.reporter.epoch(p.epoch - 1, row)
        if self.mlflow:
            self.mlflow.log_metrics(
                {f"epoch/{k}" if k.startswith(("loss/", "d/")) else k: v for k, v in row.items()},
                step=p.global_step,
            )
            self.mlflow.flush()
            if grid:
                from dpsrgan.visualize import comparison_grid

                self.mlflow.log_png(
                    comparison_grid([grid[key] for key in sorted(grid)]), f"grids/epoch_{p.epoch:03d}.png"
                )

    # --- checkpoints and the instability guard ----------------------------------------------------

    def _checkpoint(self, metrics: dict[str, float]) -> None:
        """Snapshot every rank's state (kept as "last good"); rank 0 reports it to Ray Train."""
        rngs = [rng_state()]
        if dist.is_available() and dist.is_initialized() and self.world > 1:
            rngs = [None] * self.world
            dist.all_gather_object(rngs, rng_state())
        self.last_good = capture(self.parts, self.progress, rngs, self.cfg.handles.meta)
        directory = None
        checkpoint = None
        if self.rank == 0:
            directory = Path(tempfile.mkdtemp(prefix="dpsrgan-ckpt-"))
            save_state(self.last_good, directory)
            checkpoint = ray.train.Checkpoint.from_directory(str(directory))
        try:
            ray.train.report(
                metrics,
                checkpoint=checkpoint,
                checkpoint_dir_name=f"ckpt_step_{self.progress.global_step:08d}",
            )
        finally:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)

    def _recover(self, reason: str, at_step: int) -> str:
        """Restore the last good state with a lower learning rate, or give up (``failed``)."""
        cfg, current = self.cfg, self.progress
        if current.guard_restores >= cfg.guard.max_restores:
            message = (
                f"instability guard: {reason} at step {at_step} with the restore budget spent "
                f"({current.guard_restores} of {cfg.guard.max_restores}); {cfg.guard_hint}"
            )
            if self.rank == 0:
                logger.error(message)
                if self.mlflow:
                    self.mlflow.set_tag("guard.failure", message)
                    self.mlflow.flush()
                if cfg.handles.sink is not None:
                    ray.get(cfg.handles.sink.fail.remote(message))
            return "failed"
        progress = restore(self.parts, self.last_good)
        progress.guard_restores = current.guard_restores + 1
        progress.lr_scale = current.lr_scale * cfg.guard.lr_factor
        progress.starts = current.starts
        event = {
            "step": at_step,
            "reason": reason,
            "restored_to_step": progress.global_step,
            "lr_scale": progress.lr_scale,
        }
        progress.guard_events = [*current.guard_events, event]
        self.progress = progress
        self.guard.reset()
        if self.rank == 0:
            message = (
                f"instability guard: {reason} at step {at_step}; restored step {progress.global_step} with "
                f"lr × {progress.lr_scale:g} (restore {progress.guard_restores}/{cfg.guard.max_restores})"
            )
            logger.warning(message)
            if self.reporter:
                self.reporter.event(message)
            if self.mlflow:
                self.mlflow.log_metrics(
                    {"guard/restores": progress.guard_restores, "guard/lr_scale": progress.lr_scale},
                    step=at_step,
                )
                self.mlflow.set_tag(f"guard.event_{progress.guard_restores}", message)
        return "restored"

    # --- validation -------------------------------------------------------------------------------

    def _validate(self) -> tuple[dict[str, float], GridImages]:
        """The evaluated generator (the EMA when on) on the valid split, all ranks."""
        parts = self.parts
        model = parts.ema.module if parts.ema is not None else unwrap(parts.generator)
        batches = ray.train.get_dataset_shard("valid").iter_batches(batch_size=VALID_READ_BATCH, batch_format="numpy")
        return self.validator.run(model, batches)
