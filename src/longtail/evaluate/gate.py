"""The gate: which model becomes champion, on numbers with intervals, and which targets it meets.

Rules (`GateConfig`, configurable per target in ``env/<target>.yaml`` under ``evaluate``):

1. **No champion yet.** The first model that passes the sanity floors becomes champion: its
   mAP@0.5 over the test suites and every class's AP@0.5 (classes with test objects) are at least
   ``sanity``'s floors. A refusal names the failed floor with the value and its interval. Product
   targets do not block the first champion: the report lists which it still misses.
2. **With a champion**, a challenger is promoted only if both hold:
   a. it is not worse on any suite beyond its interval: for every suite measurable for both
      models, the 95% interval of (challenger - champion) from a *paired* bootstrap over drives
      (the same drives drawn for both models) does not lie wholly below 0;
   b. it reduces critical false positives plus negatives (pedestrian, cyclist, cut-in vehicle)
      over the test frames: challenger's count < champion's. Whether the reduction is larger
      than its interval (paired bootstrap of the difference) is reported beside it.
3. **Targets** (`Targets`): AP@0.5 per class on objects tall enough to score, recall of the
   critical classes at the operating point, and each suite's threshold (`EvalConfig`). Each is *met* when the
   interval's low end reaches it, *not met* when the high end stays below it, and *inside the
   interval* otherwise; *not measurable* where the suite says so. Targets are reported, never
   tuned on: the test suites only report.

A model scored alone (no per-frame statistics, e.g. read back from evaluation.json) is compared
with unpaired intervals: worse beyond the interval when the challenger's high end is below the
champion's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import Field

from longtail.config import _Frozen
from longtail.evaluate.bootstrap import BootstrapConfig, bootstrap, compute_pooled, draw_resamples, drive_stats


class SanityFloors(_Frozen):
    """What the first champion must reach: proof that the model learned, not a product target."""

    map50: float = Field(0.25, ge=0, le=1, description="least mAP@0.5 over the test suites")
    class_ap50: float = Field(0.05, ge=0, le=1, description="least AP@0.5 of every class with test objects")


class Targets(_Frozen):
    """The product's per-class and per-suite targets (reported as met / not met with intervals).

    Defaults are the targets for the embedded default fleet at 320x192 (README: "Targets").
    """

    class_ap50: dict[str, float] = Field(
        default_factory=lambda: {"car": 0.85, "truck": 0.6, "cyclist": 0.5, "pedestrian": 0.35},
        description="class -> least AP@0.5 over the test suites, objects tall enough to score")
    recall: dict[str, float] = Field(
        default_factory=lambda: {"pedestrian": 0.5, "cyclist": 0.6},
        description="critical class -> least recall at its calibrated operating threshold")


class GateConfig(_Frozen):
    """Promotion rules (module docstring)."""

    sanity: SanityFloors = Field(default_factory=SanityFloors)
    targets: Targets = Field(default_factory=Targets)
    require_critical_reduction: bool = Field(True, description="rule 2b: critical FP+FN must fall")


@dataclass(frozen=True)
class Decision:
    """Promote or not, and why: ``reasons`` starts with what blocked promotion, if anything;
    ``evidence`` holds the numbers with their intervals."""

    promote: bool
    headline: str
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _fmt(value: float | None, ci: Sequence[float] | None = None, digits: int = 3) -> str:
    if value is None:
        return "undefined"
    text = f"{value:.{digits}f}"
    return text + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def _suites(evaluation: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in evaluation.get("suites", [])}


def assess_targets(evaluation: Mapping[str, Any], targets: Targets) -> list[dict[str, Any]]:
    """Each target met, not met, inside the interval or not measurable (rule 3).

    Returns:
        One row per target: ``target`` (what), ``goal``, ``value``, ``ci``, ``status``.
    """
    def row(what: str, goal: float, value: float | None, ci: Sequence[float] | None, measurable: bool = True
            ) -> dict[str, Any]:
        if not measurable or value is None:
            status = "not measurable"
        elif ci is not None and ci[0] >= goal:
            status = "met"
        elif (ci is not None and ci[1] < goal) or (ci is None and value < goal):
            status = "not met"
        elif ci is None:
            status = "met"
        else:
            status = "inside the interval"
        return {"target": what, "goal": goal, "value": value, "ci": list(ci) if ci else None, "status": status}

    rows = []
    per_class = evaluation["overall"]["per_class"]
    for cls, goal in targets.class_ap50.items():
        pc = per_class.get(cls, {})
        rows.append(row(f"{cls} AP@0.5", goal, pc.get("ap50"), pc.get("ap50_ci"), bool(pc.get("gt"))))
    for cls, goal in targets.recall.items():
        pc = per_class.get(cls, {})
        rows.append(row(f"{cls} recall at its operating threshold", goal, pc.get("recall"), pc.get("recall_ci"),
                        bool(pc.get("gt"))))
    for s in evaluation.get("suites", []):  # each suite's threshold (EvalConfig) is its target
        rows.append(row(f"suite {s['name']} ({s.get('metric', 'map50')})", float(s["threshold"]), s.get("value"),
                        s.get("ci"), s.get("status") not in ("not_measurable", "no_data")))
    return rows


def paired_difference(a: Mapping[str, Any], b: Mapping[str, Any], drive_of: Mapping[str, str],
                      classes: Sequence[str], metric: str, config: BootstrapConfig) -> list[float] | None:
    """Interval of metric(a) - metric(b) by a paired bootstrap over drives (rule 2a).

    Args:
        a, b: `compute_frame_stats` of two models on the same frames.
        drive_of: frame_id -> drive.
        classes: the classes ``a`` and ``b`` hold, in order.
        metric: a `compute_pooled` key (``map50``, ``ap50:<class>``).
        config: resamples, seed, confidence.
    """
    da, db = drive_stats(a, drive_of), drive_stats(b, drive_of)
    drives = sorted(set(da) & set(db))
    units = [(da[d], db[d]) for d in drives]

    def diff(us: list[tuple[Any, Any]]) -> dict[str, float | None]:
        va = compute_pooled([u[0] for u in us], classes)[metric]
        vb = compute_pooled([u[1] for u in us], classes)[metric]
        return {"diff": None if va is None or vb is None else va - vb}

    draws = draw_resamples(len(units), config.resamples, config.seed)
    return bootstrap(units, diff, draws, config.confidence)["diff"]


def paired_count_difference(a: Mapping[str, float], b: Mapping[str, float], config: BootstrapConfig
                            ) -> list[float] | None:
    """Interval of sum(a) - sum(b) over drives, drawing the same drives for both (drive -> count)."""
    drives = sorted(set(a) | set(b))
    units = [(a.get(d, 0.0), b.get(d, 0.0)) for d in drives]
    draws = draw_resamples(len(units), config.resamples, config.seed)
    return bootstrap(units, lambda us: {"diff": float(sum(x - y for x, y in us))}, draws, config.confidence)["diff"]


CRITICAL_VERDICTS = ("fewer beyond its interval", "more beyond its interval", "inside its interval")


def critical_verdict(ci: Sequence[float] | None) -> str:
    """A sentence for a difference in critical errors (challenger - champion) from its interval:
    fewer (or more) beyond its interval when the interval lies wholly below (above) 0."""
    if ci is not None and ci[1] < 0:
        return CRITICAL_VERDICTS[0]
    if ci is not None and ci[0] > 0:
        return CRITICAL_VERDICTS[1]
    return CRITICAL_VERDICTS[2]


def compare_critical(challenger: Mapping[str, Mapping[str, Mapping[str, float]]],
                     champion: Mapping[str, Mapping[str, Mapping[str, float]]], config: BootstrapConfig
                     ) -> dict[str, dict[str, dict[str, Any]]]:
    """Critical false positives plus negatives of two models on the same frames, per suite and
    group, with the interval of their difference by a paired bootstrap over drives.

    Args:
        challenger, champion: suite (``all``, ``test_longtail``, ``test_common``, a failure mode)
            -> drive -> group (`longtail.evaluate.run.CRITICAL_GROUP_NAMES` and ``total``) -> errors
            (``critical_by_suite`` of `evaluate`'s ``stats_out``).
        config: resamples, seed, confidence.

    Returns:
        suite -> group -> ``challenger``, ``champion``, ``diff`` (challenger - champion),
        ``ci`` [lo, hi] or None, ``verdict`` (`critical_verdict`); suites of both models only.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for suite in (s for s in challenger if s in champion):
        a, b = challenger[suite], champion[suite]
        drives = sorted(set(a) | set(b))
        groups = sorted({g for d in drives for g in (*a.get(d, {}), *b.get(d, {}))})
        units = [(a.get(d, {}), b.get(d, {})) for d in drives]

        def diff(us: list[tuple[Mapping[str, float], Mapping[str, float]]], groups: list[str] = groups
                 ) -> dict[str, float | None]:
            return {g: float(sum(x.get(g, 0) - y.get(g, 0) for x, y in us)) for g in groups}

        ci = bootstrap(units, diff, draw_resamples(len(units), config.resamples, config.seed), config.confidence) \
            if units else {}
        out[suite] = {}
        for g in groups:
            va, vb = int(sum(x.get(g, 0) for x, _ in units)), int(sum(y.get(g, 0) for _, y in units))
            out[suite][g] = {"challenger": va, "champion": vb, "diff": va - vb, "ci": ci.get(g),
                             "verdict": critical_verdict(ci.get(g))}
    return out


def _compare_suites(challenger: Mapping[str, Any], champion: Mapping[str, Any], config: BootstrapConfig,
                    paired: tuple[Mapping[str, Any], Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    paired_a, paired_b = paired if paired else (None, None)
    rows = []
    ca, cb = _suites(challenger), _suites(champion)
    for name in ca:
        sa, sb = ca[name], cb.get(name)
        if sb is None or not sa.get("measurable", True) or not sb.get("measurable", True) \
                or sa.get("value") is None or sb.get("value") is None:
            rows.append({"suite": name, "challenger": sa.get("value"), "champion": None if sb is None else sb.get("value"),
                         "diff": None, "ci": None, "verdict": "not compared (not measurable for both)"})
            continue
        diff = sa["value"] - sb["value"]
        ci = None
        if paired_a and paired_b and name in paired_a["suites"] and name in paired_b["suites"]:
            stats_a, classes = paired_a["suites"][name]
            stats_b, _ = paired_b["suites"][name]
            ci = paired_difference(stats_a, stats_b, paired_a["drive_of"], classes, "map50", config)
            worse = ci is not None and ci[1] < 0
            better = ci is not None and ci[0] > 0
            method = "paired bootstrap over drives"
        else:
            worse = sa.get("ci") is not None and sa["ci"][1] < sb["value"]
            better = sa.get("ci") is not None and sa["ci"][0] > sb["value"]
            method = "challenger's interval against the champion's value (no paired statistics)"
        verdict = "worse beyond its interval" if worse else "better beyond its interval" if better else \
            "difference inside its interval"
        rows.append({"suite": name, "challenger": sa["value"], "champion": sb["value"], "diff": diff, "ci": ci,
                     "verdict": verdict, "method": method})
    return rows


def decide(challenger: Mapping[str, Any], champion: Mapping[str, Any] | None = None,
           config: GateConfig | None = None, bootstrap_config: BootstrapConfig | None = None,
           paired: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None) -> Decision:
    """Whether to promote the challenger (rules in the module docstring).

    Args:
        challenger: the challenger's evaluation (`longtail.evaluate.run.evaluate`).
        champion: the champion's evaluation on the same frames, or None for a first model.
        config: floors and targets (default `GateConfig()`).
        bootstrap_config: resamples, seed and confidence of the paired intervals.
        paired: (challenger's, champion's) per-frame statistics (`evaluate`'s ``stats_out``) for
            paired intervals; None compares unpaired.

    Returns:
        The decision; ``evidence`` holds ``targets``, and ``sanity`` (first model) or ``suites`` and
        ``critical`` (with a champion), each with its interval.
    """
    config = config or GateConfig()
    boot = bootstrap_config or BootstrapConfig()
    model = challenger.get("model") or "the challenger"
    targets = assess_targets(challenger, config.targets)
    missed = [t["target"] for t in targets if t["status"] in ("not met", "inside the interval")]
    unmeasured = [t["target"] for t in targets if t["status"] == "not measurable"]
    evidence: dict[str, Any] = {"targets": targets}
    blocking: list[str] = []
    support: list[str] = []
    if champion is None:
        o = challenger["overall"]
        checks = [("mAP@0.5 over the test suites", o.get("map50"), o.get("map50_ci"), config.sanity.map50)]
        checks += [(f"{cls} AP@0.5", pc.get("ap50"), pc.get("ap50_ci"), config.sanity.class_ap50)
                   for cls, pc in o["per_class"].items() if pc.get("gt")]
        sanity = []
        for what, value, ci, floor in checks:
            ok = value is not None and value >= floor
            sanity.append({"floor": what, "least": floor, "value": value, "ci": ci, "passed": ok})
            text = f"sanity floor {what}: {_fmt(value, ci)} against the floor {floor:.3f}"
            (support if ok else blocking).append(text + ("" if ok else " (not reached)"))
        evidence["sanity"] = sanity
        support.append("no champion yet: the first model that passes the sanity floors becomes champion")
    else:
        rows = _compare_suites(challenger, champion, boot, paired)
        evidence["suites"] = rows
        for r in rows:
            if r["verdict"] == "worse beyond its interval":
                blocking.append(f"suite {r['suite']} is worse: {_fmt(r['champion'])} -> {_fmt(r['challenger'])} "
                                f"(difference {_fmt(r['diff'], r['ci'])}, wholly below 0)")
        compared = [r for r in rows if r["diff"] is not None]
        if compared and not any(r["verdict"] == "worse beyond its interval" for r in compared):
            support.append(f"no suite worse beyond its interval ({len(compared)} compared: "
                           + ", ".join(f"{r['suite']} {r['diff']:+.3f}" for r in compared) + ")")
        a, b = challenger["critical"]["total"]["errors"], champion["critical"]["total"]["errors"]
        ci = None
        if paired:
            ci = paired_count_difference(paired[0]["critical_by_drive"], paired[1]["critical_by_drive"], boot)
        beyond = ci is not None and ci[1] < 0
        evidence["critical"] = {"challenger": a, "champion": b, "diff": a - b, "ci": ci,
                                "relative_change": None if b == 0 else (a - b) / b,
                                "reduction_beyond_interval": beyond}
        text = (f"critical false positives plus negatives {b} -> {a} ({a - b:+d}"
                + (f", 95% interval [{ci[0]:+.0f}, {ci[1]:+.0f}]" if ci else "") + ")")
        if a < b:
            support.append(text + ("; the reduction is larger than its interval" if beyond
                                   else "; the reduction is inside its interval"))
        elif config.require_critical_reduction:
            blocking.append(text + ": they did not fall")
        else:
            support.append(text)
    if missed:
        support.append(f"targets not yet met (or inside their interval): {', '.join(missed)}")
    if unmeasured:
        support.append(f"targets not measurable on these suites: {', '.join(unmeasured)}")
    if blocking:
        return Decision(False, f"Do not promote {model}: {blocking[0]}", blocking + support, evidence)
    if champion is None:
        headline = f"Promote {model} to first champion: it passes the sanity floors"
    else:
        c = evidence["critical"]
        headline = (f"Promote {model} over {champion.get('model') or 'the champion'}: critical errors "
                    f"{c['champion']} -> {c['challenger']}, no suite worse beyond its interval")
    if missed:
        headline += f"; {len(missed)} target(s) not yet met"
    return Decision(True, headline, support, evidence)
