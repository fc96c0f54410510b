"""Gated promotion of a registered generator to the ``champion`` alias, and rollback.

The register stage only ever moves ``challenger``; users are served ``champion``. Moving
``champion`` is a decision, so it is made here, by a gate that compares the candidate's
evaluation metrics (logged on the run that registered it) with the current champion's:

* each gate metric must satisfy ``improvement >= margin``, where improvement is
  ``candidate - champion`` for higher-is-better metrics and ``champion - candidate`` for the
  lower-is-better ones in :data:`dpsrgan.config.GATE_LOWER_IS_BETTER`; a negative margin is a tolerance
  (``psnr_y: -0.05`` accepts a candidate up to 0.05 dB worse);
* with no champion yet, absolute thresholds decide (a minimum, or a maximum for lower-is-better).

Every real decision (promoted, refused, forced, rolled back) is written as ``promotion.*`` /
``rollback.*`` tags on the version concerned, so the registry itself is the audit log, and
``promotion.previous_champion`` is what a rollback walks back to.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from dpsrgan.config import GATE_LOWER_IS_BETTER
from dpsrgan.errors import DpsrganError
from dpsrgan.lifecycle.client import CHALLENGER, CHAMPION, alias_version, registry_call
from dpsrgan.provenance import commit_tag

logger = logging.getLogger(__name__)

"""Metric names (as logged by the register stage) where smaller is better."""


@dataclass(frozen=True)
class GateCheck:
    """One metric's comparison; ``reference`` is the champion's value or the absolute bound."""

    metric: str
    candidate: float
    reference: float
    margin: float
    """Smallest allowed improvement (relative gate) or 0 (absolute gate)."""
    absolute: bool

    @property
    def improvement(self) -> float:
        """Positive when the candidate is better than the reference, in the metric's units."""
        diff = self.candidate - self.reference
        return -diff if self.metric in GATE_LOWER_IS_BETTER else diff

    @property
    def passed(self) -> bool:
        return self.improvement >= self.margin

    def describe(self) -> str:
        verdict = "ok  " if self.passed else "FAIL"
        if self.absolute:
            bound = "<=" if self.metric in GATE_LOWER_IS_BETTER else ">="
            must = f"must be {bound} {self.reference:g}"
            return f"{verdict} {self.metric}: {self.candidate:.4f} (absolute: {must})"
        return (
            f"{verdict} {self.metric}: {self.candidate:.4f} vs champion {self.reference:.4f} "
            f"(improvement {self.improvement:+.4f}, must be >= {self.margin:+g})"
        )


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`promote` or :func:`rollback`; ``applied`` is False for dry runs."""

    action: str
    """``promoted`` | ``refused`` | ``forced`` | ``rolled_back``."""
    version: str
    previous_champion: str | None
    checks: tuple[GateCheck, ...] = ()
    applied: bool = False
    reason: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def changes_champion(self) -> bool:
        return self.action in {"promoted", "forced", "rolled_back"}

    def summary(self, name: str) -> str:
        """Human-readable lines for the CLI."""
        was = f"v{self.previous_champion}" if self.previous_champion else "none"
        head = {
            "promoted": f"{name}: champion -> v{self.version} (was {was})",
            "forced": f"{name}: champion -> v{self.version} FORCED past the gate (was {was}): {self.reason}",
            "refused": f"{name}: v{self.version} REFUSED; champion stays {was}",
            "rolled_back": f"{name}: champion rolled back -> v{self.version} (was {was})",
        }[self.action]
        if not self.applied:
            head += "  [dry run: nothing changed]"
        return "\n".join([head, *("  " + check.describe() for check in self.checks)])


def gate_checks(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    gate_metrics: Mapping[str, float],
    gate_absolute: Mapping[str, float],
) -> tuple[GateCheck, ...]:
    """Compare metric dicts: relative to ``champion`` when there is one, else absolute bounds.

    Raises :class:`DpsrganError` when a metric the gate needs is missing, since silently skipping
    it would let an unevaluated model through.
    """
    wanted = gate_metrics if champion is not None else gate_absolute
    if not wanted:
        key = "mlflow.gate_metrics" if champion is not None else "mlflow.gate_absolute"
        raise DpsrganError(f"{key} is empty: name at least one metric (e.g. psnr_y) or use --force --reason")
    checks = []
    for metric, bound in wanted.items():
        if metric not in candidate:
            raise DpsrganError(
                f"candidate has no metric {metric!r} (has: {', '.join(sorted(candidate)) or 'none'}); "
                "run the register stage after evaluate, or drop it from the gate"
            )
        if champion is None:
            checks.append(GateCheck(metric, candidate[metric], bound, 0.0, absolute=True))
            continue
        if metric not in champion:
            raise DpsrganError(
                f"champion has no metric {metric!r} to compare with; drop it from the gate "
                "or use --force --reason"
            )
        checks.append(GateCheck(metric, candidate[metric], champion[metric], bound, absolute=False))
    return tuple(checks)


def _version_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """The evaluation metrics logged on the run that registered ``version``."""
    if not version.run_id:
        raise DpsrganError(
            f"version {version.version} of {version.name!r} has no source run, so no metrics; "
            "register it with the register stage or use --force --reason"
        )
    run = registry_call(lambda: client.get_run(version.run_id), f"run {version.run_id}")
    return dict(run.data.metrics)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def promote(
    client: MlflowClient,
    name: str,
    version: str | None = None,
    *,
    gate_metrics: Mapping[str, float],
    gate_absolute: Mapping[str, float],
    dry_run: bool = False,
    force: bool = False,
    reason: str | None = None,
) -> Decision:
    """Move ``champion`` to ``version`` (default: the current ``challenger``) if it passes the gate.

    A refusal is recorded on the version too (not raised): the caller decides the exit code.
    ``force`` skips the verdict (the checks are still computed and recorded) and needs a reason.
    """
    if force and not (reason and reason.strip()):
        raise DpsrganError(
            "--force needs --reason 'why the gate is bypassed' (it is recorded on the version)"
        )
    candidate, champion = _candidate_and_champion(client, name, version)
    checks = _gate(client, candidate, champion, gate_metrics, gate_absolute, force)
    passed = bool(checks) and all(check.passed for check in checks)
    action = "promoted" if passed else ("forced" if force else "refused")
    tags = _promotion_tags(action, champion, checks, reason)
    decision = Decision(
        action=action,
        version=candidate.version,
        previous_champion=champion.version if champion is not None else None,
        checks=checks,
        applied=not dry_run,
        reason=reason,
        tags=tags,
    )
    if dry_run:
        return decision
    _tag_and_move(client, name, candidate.version, tags, candidate.version if decision.changes_champion else None)
    if decision.changes_champion:
        logger.debug("%s: champion -> v%s (%s)", name, candidate.version, action)
    return decision


def _candidate_and_champion(
    client: MlflowClient, name: str, version: str | None
) -> tuple[ModelVersion, ModelVersion | None]:
    """The version to promote (``version``, default the ``challenger``) and the current champion
    (None: no champion yet); promoting the champion itself is an error, not a no-op."""
    candidate = (
        registry_call(lambda: client.get_model_version(name, str(version)), f"version {version} of {name!r}")
        if version is not None
        else alias_version(client, name, CHALLENGER, required=True)
    )
    champion = alias_version(client, name, CHAMPION, required=False)
    if champion is not None and champion.version == candidate.version:
        raise DpsrganError(f"version {candidate.version} of {name!r} is already the champion; nothing to do")
    return candidate, champion


def _gate(
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    gate_metrics: Mapping[str, float],
    gate_absolute: Mapping[str, float],
    force: bool,
) -> tuple[GateCheck, ...]:
    """The gate's checks on the versions' logged metrics; with ``force``, a gate that cannot be
    evaluated (a missing metric) gives no checks instead of an error."""
    candidate_metrics = _version_metrics(client, candidate)
    champion_metrics = _version_metrics(client, champion) if champion is not None else None
    try:
        return gate_checks(candidate_metrics, champion_metrics, gate_metrics, gate_absolute)
    except DpsrganError:
        if not force:
            raise
        return ()


def _promotion_tags(
    action: str, champion: ModelVersion | None, checks: tuple[GateCheck, ...], reason: str | None
) -> dict[str, str]:
    """The ``promotion.*`` tags recorded on the candidate: the decision, who/when/which commit,
    the champion it replaces, and each metric's delta (relative gate) or value (absolute)."""
    tags = {
        "promotion.decision": action,
        "promotion.time": _now(),
        "promotion.commit": commit_tag(),
        "promotion.user": getpass.getuser(),
        "promotion.previous_champion": champion.version if champion is not None else "none",
        "promotion.gate": "relative" if champion is not None else "absolute",
    }
    for check in checks:
        tags[f"promotion.{'value' if check.absolute else 'delta'}.{check.metric}"] = (
            f"{check.candidate:.6g}" if check.absolute else f"{check.candidate - check.reference:+.6g}"
        )
    if reason:
        tags["promotion.reason"] = reason.strip()
    return tags


def rollback(client: MlflowClient, name: str, *, dry_run: bool = False) -> Decision:
    """Re-point ``champion`` to the version it replaced (``promotion.previous_champion``).

    The previous champion's own ``promotion.previous_champion`` tag is left intact, so repeated
    rollbacks walk further back through the promotion history.
    """
    current = alias_version(client, name, CHAMPION, required=True)
    previous = current.tags.get("promotion.previous_champion", "none")
    if previous == "none":
        raise DpsrganError(
            f"champion v{current.version} of {name!r} has no recorded previous champion to roll back to; "
            "promote a specific version instead: dpsrgan promote --version N"
        )
    target = registry_call(
        lambda: client.get_model_version(name, previous), f"version {previous} of {name!r}"
    )
    tags = {"rollback.time": _now(), "rollback.to": target.version, "rollback.commit": commit_tag()}
    decision = Decision(
        action="rolled_back",
        version=target.version,
        previous_champion=current.version,
        applied=not dry_run,
        tags=tags,
    )
    if dry_run:
        return decision
    _tag_and_move(client, name, current.version, tags, target.version)
    logger.debug("%s: champion rolled back v%s -> v%s", name, current.version, target.version)
    return decision


def _tag_and_move(
    client: MlflowClient, name: str, tagged: str, tags: Mapping[str, str], champion: str | None
) -> None:
    """Record a decision: ``tags`` on version ``tagged``, then ``champion`` onto that version
    (None: the alias stays). Tags first, so an alias never points at an unexplained move."""
    for key, value in tags.items():
        registry_call(lambda k=key, v=value: client.set_model_version_tag(name, tagged, k, v), "tagging")
    if champion is not None:
        registry_call(lambda: client.set_registered_model_alias(name, CHAMPION, champion), "setting alias")
