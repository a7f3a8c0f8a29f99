"""The KPI experiment's summary, plots and bench/RESULTS.md section (bench/kpi.py writes the rows).

Every figure is a mean over seeds with a two-level bootstrap interval (`longtail.kpi.experiment`),
and every comparison gets a sentence saying whether the difference is larger than its interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from longtail.evaluate.bootstrap import compute_pooled
from longtail.kpi.experiment import Estimate, rate_reduction, reduction, seed_bootstrap, sentence
from longtail.schemas import CATEGORIES

TARGETS = {
    "critical": (0.25, 0.35, "critical false positives plus negatives down at least 25% per turn (goal 35%)"),
    "vs_random_ratio": (2.0, None, "at least twice random's reduction at the same labeling budget"),
    "disengagements": (0.15, None, "fleet-test disengagements down at least 15%"),
    "safety_critical": (0.22, None, "fleet-test safety-critical failures down at least 22%"),
    "common_map50": (0.0, None, "common-case mAP@0.5 not lower beyond its interval"),
}
"""The team's targets (issue 21): metric -> (threshold, goal, sentence)."""

FLEET_EVENTS = {"phantom_braking": "phantom braking", "missed_hazard": "missed hazards", "collision": "collisions",
                "near_miss": "near misses"}
"""Fleet-test events summarised beside disengagements and safety-critical failures, when the units hold them."""


def _drive_units(base: dict[str, int], arm: dict[str, int]) -> list[tuple[int, int]]:
    return [(base[d], arm.get(d, 0)) for d in sorted(base)]


def _fleet_units(base: list[dict[str, Any]], arm: list[dict[str, Any]] | None, metric: str) -> list[tuple[float, ...]]:
    if arm is None:  # not driven in the fleet test
        return []
    by_id = {d["drive_id"]: d for d in arm}
    return [(b["km"], b[metric], by_id[b["drive_id"]]["km"], by_id[b["drive_id"]][metric])
            for b in base if b["drive_id"] in by_id]


def _map_diff(us: list[tuple[Any, Any]]) -> float | None:
    a = compute_pooled([u[1] for u in us], CATEGORIES)["map50"]
    b = compute_pooled([u[0] for u in us], CATEGORIES)["map50"]
    return None if a is None or b is None else a - b


def _class_ap_diff(cls: str) -> Any:
    def diff(us: list[tuple[Any, Any]]) -> float | None:
        a = compute_pooled([u[1] for u in us], CATEGORIES)[f"ap50:{cls}"]
        b = compute_pooled([u[0] for u in us], CATEGORIES)[f"ap50:{cls}"]
        return None if a is None or b is None else a - b
    return diff


def _count_reduction(us: list[dict[str, Any]], key: str, resamples: int) -> Estimate:
    """The reduction of a per-drive count (``critical``, ``detectable``, ``fixed``) against the baseline."""
    return seed_bootstrap([_drive_units(u["baseline"][key], u["arm"][key]) for u in us],
                          lambda x: reduction([a for a, _ in x], [b for _, b in x]), resamples)


def _red(us: list[tuple[int, ...]], col: int) -> float | None:
    return reduction([u[0] for u in us], [u[col] for u in us])


def summarise(rows: list[dict[str, Any]], units: dict[str, Any], arms: Sequence[str], budgets: Sequence[int],
              resamples: int) -> list[dict[str, Any]]:
    """One entry per budget and arm: every KPI as an `Estimate` dict, comparisons and their sentences."""
    seeds = sorted({r["seed"] for r in rows})
    out = []
    for budget in budgets:
        for arm in arms:
            keys = [f"{arm}|{s}|{budget}" for s in seeds if f"{arm}|{s}|{budget}" in units]
            if not keys:
                continue
            us = [units[k] for k in keys]
            est: dict[str, Estimate] = {
                "critical": _count_reduction(us, "critical", resamples),
                "critical_detectable": _count_reduction(us, "detectable", resamples),
                "common_map50": seed_bootstrap(
                    [[(u["baseline"]["common"][d], u["arm"]["common"][d]) for d in sorted(u["baseline"]["common"])
                      if d in u["arm"]["common"]] for u in us], _map_diff, max(resamples // 2, 20)),
                "disengagements": seed_bootstrap(
                    [_fleet_units(u["baseline"]["fleet"], u["arm"]["fleet"], "disengagement") for u in us],
                    rate_reduction, resamples),
                "safety_critical": seed_bootstrap(
                    [_fleet_units(u["baseline"]["fleet"], u["arm"]["fleet"], "safety_critical") for u in us],
                    rate_reduction, resamples),
            }
            for event in FLEET_EVENTS:
                drives = [d for u in us for side in ("baseline", "arm") for d in (u[side]["fleet"] or [])]
                if drives and all(event in d for d in drives):
                    est[event] = seed_bootstrap(
                        [_fleet_units(u["baseline"]["fleet"], u["arm"]["fleet"], event) for u in us],
                        rate_reduction, resamples)
            if all("fixed" in u["baseline"] and "fixed" in u["arm"] for u in us):
                est["critical_fixed"] = _count_reduction(us, "fixed", resamples)
            common_units = [[(u["baseline"]["common"][d], u["arm"]["common"][d]) for d in sorted(u["baseline"]["common"])
                             if d in u["arm"]["common"]] for u in us]
            class_ap = {c: seed_bootstrap(common_units, _class_ap_diff(c), max(resamples // 5, 20)).to_dict()
                        for c in CATEGORIES}
            arm_rows = [r for r in rows if r["arm"] == arm and r["budget"] == budget]
            slices = sorted({k for r in arm_rows for k in r["slices_map50"]})
            slice_change = {}
            for k in slices:
                d = [r["slices_map50"][k] - r["slices_map50_baseline"][k] for r in arm_rows
                     if r["slices_map50"].get(k) is not None and r["slices_map50_baseline"].get(k) is not None]
                if d:
                    slice_change[k] = {"mean": float(np.mean(d)), "seed_range": [float(min(d)), float(max(d))]}
            cost = [r["labeling_cost_s"] for r in arm_rows]
            entry: dict[str, Any] = {
                "budget": budget, "arm": arm, "seeds": len(keys),
                **{k: v.to_dict() for k, v in est.items()},
                "labeling_cost_s": {"mean": float(np.mean(cost)), "range": [float(min(cost)), float(max(cost))]},
                "critical_objects_labeled": float(np.mean([r["batch"]["critical_objects"] for r in arm_rows])),
                "common_class_ap50_change": class_ap, "slice_map50_change": slice_change,
                "sentences": [sentence("critical FP+FN reduction", est["critical"]),
                              sentence("critical FP+FN reduction, detectable objects only", est["critical_detectable"]),
                              sentence("test_common mAP@0.5 change", est["common_map50"], unit=" points"),
                              sentence("disengagements per 100 km reduction", est["disengagements"]),
                              sentence("safety-critical failures per 100 km reduction", est["safety_critical"])],
            }
            if "critical_fixed" in est:
                entry["fixed_sentence"] = sentence("critical FP+FN reduction at the baseline's thresholds",
                                                   est["critical_fixed"])
            for other in ("random", "no_new_data"):
                okeys = [f"{other}|{s}|{budget}" for s in seeds]
                if other == arm or not all(k in units for k in okeys + keys) or len(okeys) != len(keys):
                    continue
                triples = []
                for k, ok in zip(keys, okeys, strict=True):
                    b, a, o = units[k]["baseline"]["critical"], units[k]["arm"]["critical"], units[ok]["arm"]["critical"]
                    triples.append([(b[d], a.get(d, 0), o.get(d, 0)) for d in sorted(b)])
                diff = seed_bootstrap(triples, lambda x: _sub(_red(x, 1), _red(x, 2)), resamples)
                entry[f"vs_{other}"] = {"critical_reduction_difference": diff.to_dict(),
                                        "sentence": sentence(f"{arm} minus {other}, critical FP+FN reduction", diff,
                                                             unit=" points")}
                if all("fixed" in units[k]["arm"] for k in keys + okeys):
                    fixed = []
                    for k, ok in zip(keys, okeys, strict=True):
                        b, a, o = (units[k]["baseline"]["fixed"], units[k]["arm"]["fixed"],
                                   units[ok]["arm"]["fixed"])
                        fixed.append([(b[d], a.get(d, 0), o.get(d, 0)) for d in sorted(b)])
                    fdiff = seed_bootstrap(fixed, lambda x: _sub(_red(x, 1), _red(x, 2)), resamples)
                    entry[f"vs_{other}"]["fixed_difference"] = fdiff.to_dict()
                    entry[f"vs_{other}"]["fixed_sentence"] = sentence(
                        f"{arm} minus {other}, critical FP+FN reduction at the baseline's thresholds", fdiff,
                        unit=" points")
                if other == "random":
                    twice = seed_bootstrap(triples, lambda x: _sub(_red(x, 1), _twice(_red(x, 2))), resamples)
                    entry["vs_random"]["reduction_minus_twice_random"] = twice.to_dict()
                    entry["vs_random"]["twice_random_sentence"] = sentence(
                        f"{arm}'s reduction minus twice random's", twice, unit=" points")
            out.append(entry)
    return out


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _twice(a: float | None) -> float | None:
    return None if a is None else 2 * a


# ---------------------------------------------------------------------------------------------
# Plots and the Markdown section


def save_plots(summary: list[dict[str, Any]], folder: Path) -> list[Path]:
    """kpi_critical.png (critical FP+FN reduction by arm and budget, all and detectable objects) and
    kpi_fleet.png (disengagement and safety-critical reductions), with 95% error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, metrics, titles in (
            ("kpi_critical.png", ("critical", "critical_detectable", "critical_fixed"),
             ("Critical FP+FN reduction, all objects", "Critical FP+FN reduction, detectable objects",
              "Critical FP+FN reduction at the baseline's thresholds")),
            ("kpi_fleet.png", ("disengagements", "safety_critical"),
             ("Fleet test: disengagements per 100 km reduction",
              "Fleet test: safety-critical failures per 100 km reduction"))):
        metrics = tuple(m for m in metrics if all(m in e for e in summary))  # critical_fixed: later runs only
        titles = titles[:len(metrics)]
        fig, grid = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), sharey=False, squeeze=False)
        axes = list(grid[0])
        budgets = sorted({e["budget"] for e in summary})
        arms = list(dict.fromkeys(e["arm"] for e in summary))
        width = 0.8 / max(len(arms), 1)
        for ax, metric, title in zip(axes, metrics, titles, strict=True):
            for j, arm in enumerate(arms):
                xs, ys, lo, hi = [], [], [], []
                for i, b in enumerate(budgets):
                    e = next((e for e in summary if e["arm"] == arm and e["budget"] == b), None)
                    if e is None or e[metric]["value"] is None:
                        continue
                    v, ci = 100 * e[metric]["value"], e[metric]["ci"]
                    xs.append(i + (j - (len(arms) - 1) / 2) * width)
                    ys.append(v)
                    lo.append(v - 100 * ci[0] if ci else 0)
                    hi.append(100 * ci[1] - v if ci else 0)
                ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=3, label=arm)
            ax.axhline(0, color="black", linewidth=0.8)
            target = TARGETS["critical" if metric.startswith("critical") else metric][0] * 100
            ax.axhline(target, color="tab:red", linestyle="--", linewidth=0.8, label=f"target {target:.0f}%")
            ax.set_xticks(range(len(budgets)), [f"{b} frames" for b in budgets])
            ax.set_ylabel("reduction vs baseline champion, % (95% CI)")
            ax.set_title(title, fontsize=10)
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _fmt(e: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    if e["value"] is None:
        return "n/a"
    ci = f" [{e['ci'][0] * scale:+.{digits}f}, {e['ci'][1] * scale:+.{digits}f}]" if e["ci"] else ""
    return f"{e['value'] * scale:+.{digits}f}{ci}"


def _pct(e: dict[str, Any]) -> str:
    return _fmt(e) + " %" if e["value"] is not None else "n/a"


def render_section(result: dict[str, Any], out: Path, pngs: list[Path]) -> str:
    """The bench/RESULTS.md section: the table with intervals, the comparisons, the command."""
    summary = result["summary"]
    lines = [f"## The KPI experiment: one loop turn per selector, {len(result['seeds'])} seeds x "
             f"{len(result['budgets'])} budgets ({result['created_at'][:10]})", "",
             f"Command: `{result['command']}` (git {str(result['git_commit'])[:10]}, environment lock "
             f"{str(result['env_lock_sha256'])[:12]}; {result['machine']}; {result.get('wall_s', 0) / 60:.0f} min). "
             f"Rows and summary: [{out.name}](results/{out.name}).", "",
             "Reductions are against the same baseline champion on the same test drives, in % (positive: fewer); "
             "the mAP change is in points x 100. Each cell: mean over seeds [95% interval: bootstrap over seeds and, "
             "within each, over drives].", "",
             "| budget | arm | critical FP+FN | detectable only | at the baseline's thresholds | test_common mAP@0.5 "
             "change | disengagements | safety-critical | labeling s | critical objects labeled |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        fixed = _fmt(e["critical_fixed"]) if "critical_fixed" in e else "n/a"
        lines.append(f"| {e['budget']} | {e['arm']} | {_fmt(e['critical'])} | {_fmt(e['critical_detectable'])} | "
                     f"{fixed} | "
                     f"{_fmt(e['common_map50'])} | {_fmt(e['disengagements'])} | {_fmt(e['safety_critical'])} | "
                     f"{e['labeling_cost_s']['mean']:,.0f} | {e['critical_objects_labeled']:.0f} |")
    last = max(e["budget"] for e in summary)  # the control's one fleet test is shown once
    fleet = [e for e in summary if (e["disengagements"]["value"] is not None or e["safety_critical"]["value"] is not None)
             and (e["arm"] != "no_new_data" or e["budget"] == last)]
    events = [k for k in FLEET_EVENTS if any(k in e for e in fleet)]
    if fleet and events:
        lines += ["", "Fleet test, every event per 100 km, reduction against the baseline in % (positive: fewer) [95% "
                  "interval over seeds and drives]; the models driven are the largest budget's and the control, and "
                  "the mean rates over seeds are in kpi.json's rows:", "",
                  "| budget | arm | disengagements | " + " | ".join(FLEET_EVENTS[k] for k in events)
                  + " | safety-critical (collisions + near misses + missed hazards) |",
                  "|---|---|---|" + "---|" * len(events) + "---|"]
        for e in fleet:
            lines.append(f"| {e['budget']} | {e['arm']} | {_fmt(e['disengagements'])} | "
                         + " | ".join(_fmt(e[k]) if k in e else "n/a" for k in events)
                         + f" | {_fmt(e['safety_critical'])} |")
    lines += ["", "AP@0.5 change per class on test_common, in points x 100 [95% interval over seeds and drives]; "
              "mAP@0.5 change per slice (conditions and trigger scenarios, the failure modes' slices), mean over seeds "
              "[range of the seeds]:", "",
              "| budget | arm | car | truck | pedestrian | cyclist | slices |", "|---|---|---|---|---|---|---|"]
    for e in summary:
        cls = e.get("common_class_ap50_change") or {}
        sl = "; ".join(f"{k.split(':', 1)[1]} {v['mean'] * 100:+.1f} [{v['seed_range'][0] * 100:+.1f}, "
                       f"{v['seed_range'][1] * 100:+.1f}]" for k, v in (e.get("slice_map50_change") or {}).items())
        lines.append(f"| {e['budget']} | {e['arm']} | " + " | ".join(_fmt(cls[c]) if c in cls else "n/a"
                                                                 for c in ("car", "truck", "pedestrian", "cyclist"))
                     + f" | {sl} |")
    lines += ["", "Comparisons (each says whether the difference is larger than its interval):", ""]
    for e in summary:
        if e["arm"] == "longtail":
            lines.append(f"- budget {e['budget']}: " + " ".join([*e["sentences"][:2], e.get("fixed_sentence", "")]).rstrip())
            for k in ("vs_random", "vs_no_new_data"):
                if k in e:
                    lines.append(f"  - {e[k]['sentence']}")
                    if "fixed_sentence" in e[k]:
                        lines.append(f"  - {e[k]['fixed_sentence']}")
            if "vs_random" in e:
                lines.append(f"  - {e['vs_random']['twice_random_sentence']}")
    lines += ["", *[f"![{p.stem}](results/{p.name})" for p in pngs], ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The README's headline block (tests/kpi/test_readme_numbers.py checks the README holds exactly this)

README_BEGIN = "<!-- kpi-experiment:begin (generated by bench/kpi.py --readme from bench/results/kpi.json) -->"
README_END = "<!-- kpi-experiment:end -->"


def target_verdict(est: dict[str, Any], threshold: float) -> str:
    """Met, not met, or undecided: where the whole interval lies against the target."""
    if est["value"] is None or not est["ci"]:
        return "not measurable"
    lo, hi = est["ci"]
    if lo >= threshold:
        return "**met** (whole interval above)"
    if hi < threshold:
        return "**not met** (whole interval below)"
    return "undecided (interval spans the target)"


def readme_block(result: dict[str, Any]) -> str:
    """The README's headline numbers: Longtail's arm against the targets at each budget, random beside it."""
    summary = result["summary"]
    by = {(e["arm"], e["budget"]): e for e in summary}
    budgets = sorted({e["budget"] for e in summary})
    lines = [README_BEGIN, "",
             f"From [bench/results/kpi.json](bench/results/kpi.json) ({len(result['seeds'])} seeds x "
             f"{len(budgets)} labeling budgets, one loop turn per selector; `{result['command']}`, git "
             f"{str(result['git_commit'])[:10]}). Reductions against the same baseline champion on the same test "
             "drives, mean over seeds [95% interval over seeds and drives].", "",
             "| target | budget | Longtail | verdict | random | no new data |", "|---|---|---|---|---|---|"]
    for key, (threshold, _goal, text) in TARGETS.items():
        for b in budgets:
            lt, rnd, nnd = by.get(("longtail", b)), by.get(("random", b)), by.get(("no_new_data", b))
            if lt is None or (key in ("disengagements", "safety_critical") and lt[key]["value"] is None):
                continue  # the fleet test drives the largest budget's models only
            if key == "vs_random_ratio":
                est = (lt.get("vs_random") or {}).get("reduction_minus_twice_random")
                if est is None:
                    continue
                cells = [_fmt(lt["critical"]) + " vs random " + _fmt(rnd["critical"]) if rnd else "n/a",
                         target_verdict(est, 0.0), "", ""]
            elif key == "common_map50":
                est = lt["common_map50"]
                ok = "not measurable" if est["value"] is None or not est["ci"] else \
                    ("**met** (no fall beyond the interval)" if est["ci"][1] >= 0 else "**not met** (fell beyond its interval)")
                cells = [_fmt(est), ok, _fmt(rnd["common_map50"]) if rnd else "n/a",
                         _fmt(nnd["common_map50"]) if nnd else "n/a"]
            else:
                cells = [_pct(lt[key]), target_verdict(lt[key], threshold), _pct(rnd[key]) if rnd else "n/a",
                         _pct(nnd[key]) if nnd else "n/a"]
            lines.append(f"| {text} | {b} | " + " | ".join(cells) + " |")
    lines += ["", "In words, for Longtail's arm:", ""]
    for b in budgets:
        lt = by.get(("longtail", b))
        if lt is None:
            continue
        lines.append(f"- {b} frames: " + lt["sentences"][0])
        if "fixed_sentence" in lt:
            lines.append(f"  {lt['fixed_sentence']}")
        for k in ("vs_random", "vs_no_new_data"):
            if k in lt:
                lines.append(f"  {lt[k]['sentence']}")
                if "fixed_sentence" in lt[k]:
                    lines.append(f"  {lt[k]['fixed_sentence']}")
    lines += ["", README_END]
    return "\n".join(lines)


def update_readme(path: Path, result: dict[str, Any]) -> None:
    """Replace the block between the markers in the README (which must hold them)."""
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"{path}: no KPI block markers ({README_BEGIN!r} ... {README_END!r}); add them where the "
                         "headline numbers go")
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(head + readme_block(result) + tail)
    tmp.replace(path)
