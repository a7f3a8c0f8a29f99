"""The KPI of a loop turn, from the turn's declared products (read by path, no stage imported).

`build_kpi` puts together, for the champion before the turn (v1) and the model the turn made (v2):

1. ``critical``: critical false positives plus negatives (pedestrian, cyclist, cut-in vehicle) of
   v2 against v1 on the same test frames, overall, on the long-tail and common suites and per
   failure mode, each with the interval of the difference (a paired bootstrap over drives, the
   evaluation's ``critical_comparison``) and a verdict: "fewer beyond its interval", "more beyond
   its interval" or "inside its interval".
2. ``gate``: whether the gate promoted v2, and its reasons; when it refused, v1 stays champion.
3. ``fleet``: the two fleet tests (same seeds, same drives): disengagements, phantom braking,
   missed hazards, collisions and near misses per 100 km of the deployed model in each, and the
   paired difference (after - before) over drives with its bootstrap interval.
4. ``labeling``: the turn's labeling cost in the simulated labeler's seconds (the label set).
5. ``time_to_model_update``: per failure mode, discovery to the deployment that covers it, and
   where the time went (`longtail.catalog.timeline`).

`save_kpi` writes the dict as JSON, atomically.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from longtail.catalog.failure_modes import load_registry
from longtail.catalog.root import DataRoot
from longtail.catalog.timeline import last_step, time_to_model_update
from longtail.catalog.versions import read_json_object
from longtail.errors import InputError
from longtail.storage import atomic_write_json

log = logging.getLogger(__name__)

FORMAT = "longtail.kpi/1"
FLEET_METRICS = ("disengagement", "phantom_braking", "missed_hazard", "collision", "near_miss")
"""Fleet-test metrics the KPI reports, per 100 km (`longtail.sim.fleet_metrics.METRICS` names)."""
FLEET_ARM = "deployed"
"""The fleet test's arm that drives with the deployed model (the other is the simulator's truth)."""
CRITICAL_GROUPS = ("pedestrian", "cyclist", "cut_in_vehicle", "total")
VERDICTS = ("fewer beyond its interval", "more beyond its interval", "inside its interval")


def verdict(ci: Sequence[float] | None) -> str:
    """The verdict on a difference (after - before) from its interval: fewer (more) beyond its
    interval when it lies wholly below (above) 0; otherwise inside its interval."""
    if ci is not None and ci[1] < 0:
        return VERDICTS[0]
    if ci is not None and ci[0] > 0:
        return VERDICTS[1]
    return VERDICTS[2]


def _read_json(path: str | os.PathLike[str], what: str, fix: str) -> dict[str, Any]:
    return read_json_object(Path(path), f"{what} is needed for the KPI report", fix)


def load_turn_evaluation(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """The turn's evaluation: the evaluate task's record (DATA/evaluations/latest.json, whose
    ``evaluation_path`` names it) or an evaluation.json itself. Returns (evaluation, its path).

    Raises:
        InputError: missing, not JSON, or neither a record nor an evaluation (no ``decision``).
    """
    fix = "run the evaluate task of the turn (`longtail run`)"
    data = _read_json(path, "the turn's evaluation", fix)
    source = Path(path)
    if "decision" not in data and "evaluation_path" in data:
        source = Path(data["evaluation_path"])
        data = _read_json(source, "the evaluation its record names", fix)
    for key in ("decision", "critical", "model"):
        if key not in data:
            raise InputError(f"{source}: field {key!r} missing: not an evaluation.json (longtail.evaluation/1); {fix}")
    return data, source


def compare_critical_errors(evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of v2 (challenger) against v1 (champion) on critical FP+FN, per suite and group.

    Reads the evaluation's ``critical_comparison`` (paired intervals); an evaluation written before
    it existed gives the overall total from the gate's evidence (also paired) and nothing else.

    Returns:
        ``[{suite, kind (overall, suite, failure_mode), group, before, after, diff, ci, verdict}]``;
        empty without a champion.
    """
    comparison = evaluation.get("critical_comparison")
    rows = []
    if comparison:
        for suite, groups in comparison.items():
            kind = "overall" if suite == "all" else "suite" if suite.startswith("test_") else "failure_mode"
            for group in CRITICAL_GROUPS:
                g = groups.get(group)
                if g is None:
                    continue
                rows.append({"suite": suite, "kind": kind, "group": group, "before": g["champion"],
                             "after": g["challenger"], "diff": g["diff"], "ci": g["ci"], "verdict": verdict(g["ci"])})
        order = {"overall": 0, "suite": 1, "failure_mode": 2}
        rows.sort(key=lambda r: (order[r["kind"]], r["suite"] != "test_longtail", r["suite"],
                                 CRITICAL_GROUPS.index(r["group"])))
        return rows
    c = (evaluation.get("decision") or {}).get("evidence", {}).get("critical")
    if c:
        rows.append({"suite": "all", "kind": "overall", "group": "total", "before": c["champion"],
                     "after": c["challenger"], "diff": c["diff"], "ci": c.get("ci"), "verdict": verdict(c.get("ci"))})
    return rows


def gate_outcome(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the gate promoted the turn's model, its headline and reasons, and who is champion after."""
    decision = evaluation["decision"]
    promotion = decision.get("promotion") or {}
    comparison = evaluation.get("comparison") or {}
    # Passed and moved the alias, or passed and was the champion already (a re-run); a promotion that
    # lost a race or was left to a person did not happen.
    promoted = bool(decision["promote"]) and (not promotion or bool(promotion.get("done"))
                                              or "champion already" in str(promotion.get("reason", "")))
    return {"promote": bool(decision["promote"]), "promoted": promoted, "headline": decision["headline"],
            "reasons": list(decision.get("reasons", [])), "promotion": promotion,
            "challenger": evaluation.get("model"), "champion": comparison.get("champion"),
            "champion_after": evaluation.get("model") if promoted else comparison.get("champion")}


def load_fleet_test(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A fleet test's results (``fleet_test.json``, `longtail.sim.fleet_test.run_fleet_test`).

    Raises:
        InputError: missing, not JSON, or without per-drive rows.
    """
    data = _read_json(path, "a fleet test", "run the fleet-test task of the turn (`longtail run`)")
    if not isinstance(data.get("drives"), dict):
        raise InputError(f"{path}: field 'drives' missing: not a fleet_test.json (longtail.fleet_test/1); run the "
                         "fleet-test task again")
    return data


def _rates(counts: np.ndarray, km: np.ndarray) -> np.ndarray:
    """Episodes per 100 km over the last axis (0 where nothing was driven)."""
    total = km.sum(axis=-1)
    return np.where(total > 0, counts.sum(axis=-1) / np.maximum(total, 1e-9) * 100.0, 0.0)


def _count(drive: Mapping[str, Any], metric: str) -> float:
    return float(sum(c.get(metric, 0) for c in drive["counts"].values()))


def compare_fleet_tests(before: Mapping[str, Any], after: Mapping[str, Any], arm: str = FLEET_ARM,
                        n_boot: int = 2000, seed: int = 0, sources: tuple[str, str] = ("before", "after")
                        ) -> dict[str, Any]:
    """Rates per 100 km of two fleet tests on the same drives, and their paired difference.

    The same drives are resampled together for both (percentile bootstrap over drives, 95 %), as
    `longtail.sim.fleet_metrics.compute_rates` compares arms: the interval is that of the difference
    on the same roads.

    Args:
        before, after: fleet_test.json of each turn (the deployed model's arm).
        arm: the arm compared.
        n_boot: bootstrap resamples; seed: their seed.
        sources: names of the two files, for messages.

    Returns:
        ``{"drives", "km_before", "km_after", "deployment_before", "deployment_after",
        "same_deployment", "metrics": [{metric, before, before_ci, after, after_ci, diff, ci,
        verdict}], "note"}``; ``metrics`` is empty (and ``note`` says why) when a test lacks the arm.

    Raises:
        InputError: when the two tests did not drive the same drives (different seeds or sizes).
    """
    dep_b, dep_a = before.get("deployment") or {}, after.get("deployment") or {}
    out: dict[str, Any] = {"deployment_before": dep_b.get("deployment_id"), "deployment_after": dep_a.get("deployment_id"),
                           "model_before": (dep_b.get("model") or {}).get("uri"),
                           "model_after": (dep_a.get("model") or {}).get("uri"), "metrics": [], "note": ""}
    out["same_deployment"] = out["deployment_before"] is not None and out["deployment_before"] == out["deployment_after"]
    missing = [name for name, r in zip(sources, (before, after), strict=True) if arm not in r["drives"]]
    if missing:
        out["note"] = (f"no {arm!r} arm in {' and '.join(missing)}: nothing was deployed when it ran, so the fleet "
                       "test drove with the simulator's truth only")
        out.update(drives=0, km_before=0.0, km_after=0.0)
        return out
    b = {d["drive_id"]: d for d in before["drives"][arm]}
    a = {d["drive_id"]: d for d in after["drives"][arm]}
    if set(a) != set(b):
        raise InputError(f"{sources[1]}: drives {sorted(set(a) ^ set(b))[:3]} are not in both fleet tests; the two "
                         f"turns must drive the same seeds: set the same fleet_test seed and size for both")
    ids = list(b)  # the first test's drive order: the same resamples as the fleet test's own comparison
    n = len(ids)
    km_b = np.array([b[d]["km"] for d in ids], float)
    km_a = np.array([a[d]["km"] for d in ids], float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((n_boot, 0), int)
    out.update(drives=n, km_before=round(float(km_b.sum()), 3), km_after=round(float(km_a.sum()), 3))

    def ci(values: np.ndarray) -> list[float] | None:
        return [round(float(x), 3) for x in np.percentile(values, [2.5, 97.5])] if n else None

    for metric in FLEET_METRICS:
        cb = np.array([_count(b[d], metric) for d in ids])
        ca = np.array([_count(a[d], metric) for d in ids])
        boot_b, boot_a = _rates(cb[index], km_b[index]), _rates(ca[index], km_a[index])
        rb, ra = float(_rates(cb, km_b)), float(_rates(ca, km_a))
        diff_ci = ci(boot_a - boot_b)
        out["metrics"].append({"metric": metric, "count_before": int(cb.sum()), "count_after": int(ca.sum()),
                               "before": round(rb, 3), "before_ci": ci(boot_b), "after": round(ra, 3),
                               "after_ci": ci(boot_a), "diff": round(ra - rb, 3), "ci": diff_ci,
                               "verdict": verdict(diff_ci)})
    return out


def load_label_cost(root: str | os.PathLike[str], label_batch: str | os.PathLike[str]) -> dict[str, Any]:
    """The labeling cost of the turn's label set, in the simulated labeler's seconds.

    Args:
        root: the data root.
        label_batch: a labeling batch id (its label set DATA/labels/<batch_id>/manifest.json), the
            label set manifest's path, or a record naming ``batch_id`` (DATA/datasets/latest.json).

    Returns:
        ``{"batch_id", "frames", "accepted", "held", "seconds", "hours", "seconds_per_frame",
        "seconds_without_prelabels", "actions": cost counts, "source"}``.

    Raises:
        InputError: when the label set is missing or has no ``cost``.
    """
    fix = "run the label task of the turn (`longtail run`) or `longtail label pull`"
    target = Path(label_batch)
    if target.suffix != ".json":
        target = DataRoot.of(root).label_set(str(label_batch)) / "manifest.json"
    data = _read_json(target, "the turn's label set", fix)
    if "cost" not in data and data.get("batch_id"):
        target = DataRoot.of(root).label_set(str(data["batch_id"])) / "manifest.json"
        data = _read_json(target, "the turn's label set", fix)
    cost = data.get("cost")
    if not isinstance(cost, dict) or "seconds" not in cost:
        raise InputError(f"{target}: field 'cost' missing or without 'seconds': not a label set manifest; {fix}")
    frames = int(cost.get("frames") or data.get("frames") or 0)
    without = (data.get("cost_without_prelabels") or {}).get("seconds")
    return {"batch_id": data.get("batch_id"), "frames": int(data.get("frames", frames)),
            "accepted": data.get("accepted"), "held": data.get("held"), "seconds": float(cost["seconds"]),
            "hours": round(float(cost["seconds"]) / 3600.0, 3),
            "seconds_per_frame": round(float(cost["seconds"]) / frames, 2) if frames else None,
            "seconds_without_prelabels": without, "actions": {k: v for k, v in cost.items() if k != "seconds"},
            "source": str(target)}


def failure_mode_updates(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Time to model update of every discovered failure mode (`time_to_model_update`), slowest
    first; modes no deployment covers yet come last, with their latest step."""
    rows = []
    for mode in load_registry(root).values():
        if mode.discovered_at is None and not mode.timeline:
            continue
        ttmu = time_to_model_update(mode)
        last = last_step(mode)
        rows.append({"failure_mode": mode.name, "title": mode.title, "status": mode.status,
                     "discovered_at": ttmu["discovered_at"] if ttmu else mode.discovered_at,
                     "discovered_by": mode.discovered_by, "deployed_at": ttmu and ttmu["deployed_at"],
                     "deployment": ttmu and ttmu["deployment"], "total_s": ttmu and ttmu["total_s"],
                     "steps": ttmu["steps"] if ttmu else [], "last_step": last})
    rows.sort(key=lambda r: (r["total_s"] is None, -(r["total_s"] or 0), r["failure_mode"]))
    return rows


def build_kpi(root: str | os.PathLike[str], before: str | os.PathLike[str], after: str | os.PathLike[str],
              evaluation: str | os.PathLike[str], label_batch: str | os.PathLike[str] | None = None,
              n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The KPI of a loop turn (module docstring).

    Args:
        root: the data root (failure-mode registry, label sets).
        before, after: the fleet tests of the turn before and of this turn (fleet_test.json, same seeds).
        evaluation: the turn's evaluation (DATA/evaluations/latest.json or an evaluation.json).
        label_batch: the turn's labeling batch or label set (`load_label_cost`); None: no cost.
        n_boot, seed: bootstrap of the fleet tests' paired differences.

    Returns:
        The KPI dict: ``format``, ``created_at``, ``inputs``, ``headline``, ``gate``, ``critical``,
        ``fleet``, ``labeling``, ``time_to_model_update``.

    Raises:
        InputError: a missing or malformed input (named), or fleet tests on different drives.
    """
    ev, ev_path = load_turn_evaluation(evaluation)
    gate = gate_outcome(ev)
    critical = compare_critical_errors(ev)
    fleet = compare_fleet_tests(load_fleet_test(before), load_fleet_test(after), n_boot=n_boot, seed=seed,
                                sources=(str(before), str(after)))
    if not gate["promoted"] and fleet["same_deployment"]:
        fleet["note"] = (fleet["note"] + " " if fleet["note"] else "") + (
            "The gate refused the new model, so both fleet tests drove the same deployment "
            f"({fleet['deployment_after']}): their differences are the fleet test's own noise, not a model change.")
    labeling = load_label_cost(root, label_batch) if label_batch is not None else None
    kpi = {"format": FORMAT, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "inputs": {"evaluation": str(ev_path), "fleet_test_before": str(before), "fleet_test_after": str(after),
                      "label_set": labeling["source"] if labeling else None},
           "gate": gate, "critical": critical, "fleet": fleet, "labeling": labeling,
           "time_to_model_update": failure_mode_updates(root)}
    kpi["headline"] = headline(kpi)
    return kpi


def headline(kpi: Mapping[str, Any]) -> str:
    """One sentence: promoted or not, and the overall change in critical errors with its verdict."""
    gate = kpi["gate"]
    total = next((r for r in kpi["critical"] if r["suite"] == "all" and r["group"] == "total"), None)
    crit = "" if total is None else (f"critical false positives plus negatives {total['before']} -> {total['after']} "
                                     f"({total['diff']:+d}, {total['verdict']})")
    if gate["promoted"]:
        return f"The new model was promoted and deployed: {crit or gate['headline']}."
    return (f"The gate refused the new model, so the champion stays {gate['champion'] or 'the earlier model'}: "
            f"{gate['headline']}" + (f"; {crit}" if crit else "") + ".")


def save_kpi(kpi: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the KPI dict as JSON, atomically. Returns the path."""
    atomic_write_json(path, kpi)
    log.info("KPI of the turn: %s -> %s", kpi["headline"], path)
    return Path(path)
