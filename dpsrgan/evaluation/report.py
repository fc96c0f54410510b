"""Everything the evaluate stage writes, put together: the per-image metrics of the test split,
their summary (DVC metrics), the paper-style table and the sample grid (:func:`evaluate`). The
stage module calls this one function; each piece lives in its own module of the package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from dpsrgan.evaluation.costs import discriminator_params, generator_costs, published_parameter_counts
from dpsrgan.evaluation.evaluator import BatchEvaluator, EvalSettings
from dpsrgan.evaluation.grid import sample_grid, sample_rows
from dpsrgan.evaluation.lpips import lpips_status
from dpsrgan.evaluation.run import evaluate_split, load_generators
from dpsrgan.evaluation.summary import summarize
from dpsrgan.evaluation.table import paper_table


@dataclass(frozen=True)
class EvaluationReport:
    """Everything the evaluate stage writes."""

    per_image: pd.DataFrame
    summary: dict[str, Any]
    table: str
    grid: Image.Image


def evaluate(
    split_dir: Path,
    checkpoints: Mapping[str, str],
    settings: EvalSettings,
    *,
    discriminators: Mapping[str, str] | None = None,
    off: Mapping[str, str] | None = None,
    batch_size: int,
    grid_images: int,
    dataset: str,
    use_ray: bool = True,
    actors: int = 1,
    cpus_per_actor: float = 1.0,
    cpus_per_read: float = 0.5,
) -> EvaluationReport:
    """Per-image metrics (Ray Data or in-process), their summary, the paper-style table and the
    sample grid (the grid re-runs :class:`BatchEvaluator` on the first ``grid_images`` rows).

    ``checkpoints``: method → generator checkpoint (``pretrained``, ``gan``, and the trained
    baselines); ``discriminators``: method → the discriminator checkpoint it was trained with
    (for the D parameter count); ``off``: baseline → why it was not trained (a marked row)."""
    generators = load_generators(checkpoints, settings.scale)
    per_image = evaluate_split(
        split_dir,
        generators,
        settings,
        batch_size=batch_size,
        use_ray=use_ray,
        actors=actors,
        cpus_per_actor=cpus_per_actor,
        cpus_per_read=cpus_per_read,
    )
    lpips_note = lpips_status()[1] if settings.lpips else "disabled (evaluate.lpips: false)"
    costs = generator_costs(generators, settings.scale)
    for method, count in discriminator_params(discriminators or {}).items():
        costs.setdefault(method, {})["d_params"] = count
    summary = summarize(per_image, costs, lpips_note, off)
    summary["published_parameter_counts"] = published_parameter_counts()
    grid_evaluator = BatchEvaluator(generators, replace(settings, lpips=False))
    grid = sample_grid(grid_evaluator, sample_rows(split_dir, grid_images))
    table = paper_table(summary, dataset, summary["published_parameter_counts"])
    return EvaluationReport(per_image, summary, table, grid)
