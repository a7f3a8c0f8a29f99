"""Champion vs challenger: every metric side by side, and the business KPI.

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

The promotion decision itself, on these numbers with their intervals, is `longtail.evaluate.gate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
