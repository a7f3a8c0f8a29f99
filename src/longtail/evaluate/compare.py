"""Champion vs challenger: every metric side by side, the business KPI, and the promotion decision.

The KPI the business tracks is the relative change in *critical* errors at the deployed operating
threshold: false positives and false negatives of pedestrians, cyclists and cut-in vehicles
(`CRITICAL_GROUPS`) over the test frames, challenger against champion:

    relative change = (challenger - champion) / champion     (negative is better)

With a champion at 0 errors the relative change is undefined (None): 0 -> 0 is no change, and any
error where the champion had none counts as a rise beyond every tolerance.

A cut-in vehicle is a car or truck ground-truth box (or car/truck detection) in a *cut-in frame*:
a test frame whose fm_name is one of ``EvalConfig.cut_in_failure_modes`` (``cut_ins``) or whose
tags or triggers hold one of ``EvalConfig.cut_in_markers`` (``cut_in``, ``trigger:cut_in``,
``scenario:cut_in``). Frames are the unit because the labels carry no per-object manoeuvre.

`decide` promotes a challenger when (`DecisionConfig`, all configurable):

1. no regression suite fails (suites without data, or not measurable, neither pass nor fail);
2. with a champion: neither critical false positives nor critical false negatives rise by more
   than ``max_critical_fp_increase`` / ``max_critical_fn_increase`` (relative, default 5%); and
3. with a champion: mAP@[.5:.95] over the test frames drops by at most ``max_map_drop`` (absolute,
   default 0.01).

Without a champion (the first model), the suites alone decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import Field

from longtail.config import _Frozen
from longtail.evaluate.slices import SuiteResult

CRITICAL_GROUPS: dict[str, str] = {
    "pedestrian": "pedestrian boxes in every test frame",
    "cyclist": "cyclist boxes in every test frame",
    "cut_in_vehicle": "car and truck boxes in cut-in frames",
}
"""The critical groups of the KPI, and what each counts."""
CUT_IN_CLASSES: tuple[str, ...] = ("car", "truck")
HIGHER_IS_BETTER = ("map", "map50", "map75", "ap", "ap50", "ap75", "precision", "recall")
LOWER_IS_BETTER = ("fp", "fn", "errors")


class DecisionConfig(_Frozen):
    """When a challenger is promoted over the champion (rules in the module docstring)."""

    max_map_drop: float = Field(0.01, ge=0, le=1, description="largest mAP@[.5:.95] drop tolerated, absolute (0..1)")
    max_critical_fp_increase: float = Field(0.05, ge=0, description="largest relative rise of critical FPs (0.05 = 5%)")
    max_critical_fn_increase: float = Field(0.05, ge=0, description="largest relative rise of critical FNs (0.05 = 5%)")


@dataclass(frozen=True)
class Decision:
    """Promote or not, and why. ``reasons`` starts with what blocked promotion, if anything."""

    promote: bool
    headline: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def compute_critical_errors(overall: Mapping[str, Any], cut_in: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """Critical false positives and negatives at the operating point.

    Args:
        overall: `evaluate_detections` result over the test frames.
        cut_in: `evaluate_detections` result over the cut-in frames (None when there are none).

    Returns:
        group -> {"fp", "fn", "errors"} for each of `CRITICAL_GROUPS`, and "total".
    """
    out: dict[str, dict[str, int]] = {}
    for cls in ("pedestrian", "cyclist"):
        pc = overall["per_class"].get(cls, {"fp": 0, "fn": 0})
        out[cls] = {"fp": int(pc["fp"]), "fn": int(pc["fn"])}
    fp = fn = 0
    if cut_in is not None:
        for cls in CUT_IN_CLASSES:
            pc = cut_in["per_class"].get(cls, {"fp": 0, "fn": 0})
            fp, fn = fp + int(pc["fp"]), fn + int(pc["fn"])
    out["cut_in_vehicle"] = {"fp": fp, "fn": fn}
    out["total"] = {"fp": sum(v["fp"] for v in out.values()), "fn": sum(v["fn"] for v in out.values())}
    for v in out.values():
        v["errors"] = v["fp"] + v["fn"]
    return out


def relative_change(new: float, old: float) -> float | None:
    """(new - old) / old; 0.0 when both are 0; None when only old is 0 (a rise from nothing)."""
    if old == 0:
        return 0.0 if new == 0 else None
    return (new - old) / old


def compute_kpi(challenger: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The business KPI: relative change in critical FP, FN and both, challenger vs champion.

    Returns:
        "fp" | "fn" | "errors" -> {challenger, champion, delta, relative_change}; also per group
        under "groups" -> group -> the same.
    """
    def row(a: int, b: int) -> dict[str, Any]:
        return {"challenger": a, "champion": b, "delta": a - b, "relative_change": relative_change(a, b)}

    ch, cp = challenger["critical"], champion["critical"]
    out: dict[str, Any] = {k: row(ch["total"][k], cp["total"][k]) for k in ("fp", "fn", "errors")}
    out["groups"] = {g: {k: row(ch[g][k], cp[g][k]) for k in ("fp", "fn", "errors")} for g in CRITICAL_GROUPS}
    return out


def flatten_metrics(evaluation: Mapping[str, Any]) -> dict[str, float | None]:
    """Every comparable number of an evaluation, by a readable key.

    Keys: ``overall/<map|map50|map75|precision|recall>``, ``class/<class>/<ap|ap50|precision|recall|fp|fn>``,
    ``slice/<slice>/<map|map50|recall>``, ``critical/<group>/<fp|fn|errors>``.
    """
    out: dict[str, float | None] = {}
    o = evaluation["overall"]
    for k in ("map", "map50", "map75"):
        out[f"overall/{k}"] = o[k]
    for k in ("precision", "recall"):
        out[f"overall/{k}"] = o["totals"][k]
    for cls, pc in o["per_class"].items():
        for k in ("ap", "ap50", "precision", "recall", "fp", "fn"):
            out[f"class/{cls}/{k}"] = pc[k]
    for name, s in evaluation["slices"].items():
        m = s.get("metrics")
        out[f"slice/{name}/map"] = m["map"] if m else None
        out[f"slice/{name}/map50"] = m["map50"] if m else None
        out[f"slice/{name}/recall"] = m["totals"]["recall"] if m else None
    for g, v in evaluation["critical"].items():
        for k in ("fp", "fn", "errors"):
            out[f"critical/{g}/{k}"] = v[k]
    return {k: (None if v is None else float(v)) for k, v in out.items()}


def _better(key: str, delta: float | None) -> bool | None:
    if delta is None or delta == 0:
        return None
    last = key.rsplit("/", 1)[-1]
    return delta > 0 if last in HIGHER_IS_BETTER else delta < 0 if last in LOWER_IS_BETTER else None


def compare_evaluations(challenger: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, Any]:
    """Every metric side by side with its delta (challenger - champion).

    Returns:
        {"champion": model name, "challenger": model name, "rows": [{metric, challenger, champion,
        delta, better}] (better: True/False/None for no change or undefined), "kpi": `compute_kpi`,
        "notes": caveats such as different dataset versions}.
    """
    a, b = flatten_metrics(challenger), flatten_metrics(champion)
    rows = []
    for key in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(key), b.get(key)
        delta = None if x is None or y is None else x - y
        rows.append({"metric": key, "challenger": x, "champion": y, "delta": delta, "better": _better(key, delta)})
    notes = []
    if challenger.get("version_id") != champion.get("version_id"):
        notes.append(f"the champion was evaluated on dataset version {champion.get('version_id')}, the challenger on "
                     f"{challenger.get('version_id')}: deltas compare different test sets; re-evaluate the champion "
                     "on the challenger's version for a fair comparison")
    ct, pt = challenger["config"].get("score_threshold"), champion["config"].get("score_threshold")
    if ct != pt:
        notes.append(f"operating thresholds differ (challenger {ct}, champion {pt})")
    return {"challenger": challenger.get("model"), "champion": champion.get("model"), "rows": rows,
            "kpi": compute_kpi(challenger, champion), "notes": notes}


def _suite(s: SuiteResult | Mapping[str, Any]) -> dict[str, Any]:
    return s.to_dict() if isinstance(s, SuiteResult) else dict(s)


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def decide(challenger: Mapping[str, Any], champion: Mapping[str, Any] | None = None,
           suites: Iterable[SuiteResult | Mapping[str, Any]] | None = None,
           config: DecisionConfig | None = None) -> Decision:
    """Whether to promote the challenger (rules in the module docstring).

    Args:
        challenger: the challenger's evaluation (`longtail.evaluate.run.evaluate`).
        champion: the champion's evaluation, or None for a first model.
        suites: the challenger's suite results (default: ``challenger["suites"]``).
        config: tolerances (default `DecisionConfig()`).

    Returns:
        The decision, with every reason in words: blocking ones first.
    """
    config = config or DecisionConfig()
    results = [_suite(s) for s in (challenger["suites"] if suites is None else suites)]
    blocking: list[str] = []
    support: list[str] = []
    failed = [s for s in results if s["status"] == "failed"]
    for s in failed:
        value = "undefined" if s["value"] is None else f"{s['value']:.3f}"
        blocking.append(f"regression suite {s['name']} failed: {s['metric']} {value} < {s['threshold']:.3f} "
                        f"on {s['frames']} frame{'' if s['frames'] == 1 else 's'}")
    passed = sum(s["status"] == "passed" for s in results)
    no_data = [s["name"] for s in results if s["status"] == "no_data"]
    if not failed:
        support.append(f"all {passed} regression suites with test data passed")
    if no_data:
        support.append(f"{len(no_data)} suite(s) had no test data and were not checked: {', '.join(no_data)}")
    thin = [f"{s['name']} ({s.get('reason')})" for s in results if s["status"] == "not_measurable"]
    if thin:
        support.append(f"{len(thin)} suite(s) were not measurable and were not checked: {'; '.join(thin)}")
    if champion is None:
        support.append("no champion yet: first model, decided on the regression suites only")
    else:
        kpi = compute_kpi(challenger, champion)
        for k, tol, what in (("fp", config.max_critical_fp_increase, "false positives"),
                             ("fn", config.max_critical_fn_increase, "false negatives")):
            r = kpi[k]
            text = f"critical {what} {r['champion']} -> {r['challenger']}"
            rel = r["relative_change"]
            if rel is None:
                blocking.append(f"{text}: the champion had none (tolerance {tol:.0%})")
            elif rel > tol:
                blocking.append(f"{text} ({_pct(rel)}, tolerance +{tol:.0%})")
            else:
                support.append(f"{text} ({_pct(rel)})")
        a, b = challenger["overall"]["map"], champion["overall"]["map"]
        if a is not None and b is not None:
            text = f"mAP@[.5:.95] {b:.3f} -> {a:.3f} ({a - b:+.3f})"
            (blocking if b - a > config.max_map_drop + 1e-12 else support).append(
                text + (f", more than the {config.max_map_drop:.3f} tolerated" if b - a > config.max_map_drop + 1e-12
                        else ""))
        notes = compare_evaluations(challenger, champion)["notes"]
        support += [f"note: {n}" for n in notes]
    model = challenger.get("model") or "the challenger"
    if blocking:
        return Decision(False, f"Do not promote {model}: {blocking[0]}", blocking + support)
    headline = f"Promote {model}: {support[0]}"
    if champion is not None:
        e = compute_kpi(challenger, champion)["errors"]
        rel = "" if e["relative_change"] is None else f" ({_pct(e['relative_change'])})"
        headline = (f"Promote {model} over {champion.get('model') or 'the champion'}: {support[0]}; critical errors "
                    f"{e['champion']} -> {e['challenger']}{rel}")
    return Decision(True, headline, support)
