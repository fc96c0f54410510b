"""Regression guard for model quality: a short pretraining on real photographs must beat bicubic
on a photograph it never saw. Fixed photos, seed and step count; nothing is timed.

It runs the pipeline's own pieces — :func:`~dpsrgan.training.steps.pretrain_step`, the
augmentation of the training loop, the residual-over-bicubic generator, the MATLAB
degradation and the evaluation's PSNR-Y — so a change that breaks training (a wrong loss, a
broken skip, an initialisation that starts elsewhere than bicubic, misaligned crops) fails
here instead of surfacing as a pipeline whose models lose to bicubic.
"""

from __future__ import annotations

import pytest

from dpsrgan.models.generator import Generator
from tests._photo_pretrain import gain_over_bicubic, pretrained_generator


@pytest.mark.slow
def test_short_pretraining_beats_bicubic_on_a_held_out_photo():
    assert gain_over_bicubic(pretrained_generator()) > 0.15


def test_an_untrained_generator_is_bicubic_so_the_quality_test_can_fail():
    generator = Generator(channels=32, num_blocks=4, bicubic_skip=True).eval()
    assert abs(gain_over_bicubic(generator)) < 0.01
