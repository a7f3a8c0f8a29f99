"""The fleet test's results for people: a text table for the terminal and a plotly figure for
reports (rates per 100 km with 95 % intervals, each perception beside the truth reference)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

KPI_METRICS = ("disengagement", "phantom_braking", "missed_hazard", "collision", "near_miss", "fcw", "aeb")


def format_fleet_test_table(results: dict[str, Any], scenario: str = "all") -> str:
    """Rates per 100 km of every arm for ``scenario`` ("all" or a scenario name), with intervals,
    and each arm's paired difference to the reference, as a text table."""
    rows = [r for r in results["rates"] if r["scenario"] == scenario]
    paired = {(p["arm"], p["metric"]): p for p in results["paired"] if p["scenario"] == scenario}
    headers = ["arm", "metric", "count", "km", "per 100 km", "95% interval", f"vs {results['reference']} (paired)"]
    lines = []
    for r in sorted(rows, key=lambda r: (r["arm"] != results["reference"], r["arm"], KPI_METRICS.index(r["metric"]))):
        p = paired.get((r["arm"], r["metric"]))
        diff = f"{p['difference_per_100km']:+.1f} [{p['ci_low']:+.1f}, {p['ci_high']:+.1f}]" if p else "reference"
        lines.append([r["arm"], r["metric"], str(r["count"]), f"{r['km']:.2f}", f"{r['per_100km']:.1f}",
                      f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]", diff])
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in lines]
    shadow = results.get("shadow")
    if shadow:
        out.append(f"shadow ({shadow['arm']} acting, challenger beside): {shadow['disagreement_frames']} of "
                   f"{shadow['frames']} frames disagree ({shadow['per_1000_frames']:.1f} per 1,000 frames)")
    return "\n".join(out)


def make_fleet_test_figure(results: dict[str, Any], scenario: str = "all") -> go.Figure:
    """Grouped bars: each metric's rate per 100 km per arm, with 95 % bootstrap intervals."""
    fig = go.Figure()
    rows = [r for r in results["rates"] if r["scenario"] == scenario]
    for arm in results["arms"]:
        mine = {r["metric"]: r for r in rows if r["arm"] == arm}
        ys = [mine[m]["per_100km"] for m in KPI_METRICS]
        fig.add_trace(go.Bar(
            name=arm, x=list(KPI_METRICS), y=ys,
            error_y={"type": "data", "symmetric": False,
                     "array": [mine[m]["ci_high"] - mine[m]["per_100km"] for m in KPI_METRICS],
                     "arrayminus": [mine[m]["per_100km"] - mine[m]["ci_low"] for m in KPI_METRICS]},
        ))
    fig.update_layout(barmode="group", yaxis_title="per 100 km",
                      title=f"Fleet test ({scenario}): ADAS outcomes per 100 km, 95% bootstrap intervals over drives")
    return fig
