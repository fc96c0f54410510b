"""Exponential moving average of the generator's weights (what the GAN stage evaluates and saves).

GAN training oscillates; an EMA of the generator's weights averages the oscillation out and is
a cheap, well-established improvement (ESRGAN-family and StyleGAN practice). The shadow is a
frozen copy of the *unwrapped* generator:

    shadow ← shadow + (1 − d_t) · (online − shadow),   d_t = min(decay, (1 + t) / (10 + t))

The warm-up ``d_t`` lets the shadow follow the pretrained start quickly in short runs instead of
lagging a thousand steps behind. Buffers (BatchNorm running statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """The shadow copy of ``model``; ``decay == 0`` makes the shadow track the model exactly."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards ``model`` (the unwrapped online generator)."""
        decay = self.current_decay()
        shadow = [p for p in self.module.parameters()]
        online = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(shadow, online, 1.0 - decay)
        for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["weights"])
