"""Setting up a model replica's process: quiet logs, bounded registry calls, torch threads sized
to the CPUs Ray gave it, the model loaded and warmed up."""

from __future__ import annotations

import logging

from dpsrgan.serving.settings import ServeSettings
from dpsrgan.serving.worker import UpscaleWorker

logger = logging.getLogger(__name__)


def start_worker(settings: ServeSettings) -> UpscaleWorker:
    """The replica's worker for ``settings.model`` (an alias is pinned to its current version)."""
    import ray
    import torch

    from dpsrgan.lifecycle.client import apply_client_limits
    from dpsrgan.serving.model_source import load, pin

    logging.getLogger("dpsrgan").setLevel(logging.INFO)
    apply_client_limits()
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
    torch.set_num_threads(max(1, int(cpus)))
    pinned = pin(settings.model)
    worker = UpscaleWorker(load(pinned, settings.device), settings)
    logger.info("replica serving %s on %s, %d torch thread(s)", pinned.version, worker.model.upscaler.device,
                torch.get_num_threads())
    return worker
