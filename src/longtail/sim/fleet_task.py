"""The pipeline's fleet-test task: the current deployment drives the fixed test fleet beside the
simulator's truth perception, a challenger (when the registry has one) rides along in shadow
mode, and a self-contained HTML report says what happened per 100 km, with intervals.

The deployment is found through ``DATA/deployments/current.json`` (`longtail.catalog.deployments`),
the challenger through the registry (`longtail.detector.registry.challenger_model_uri`). Before
the first deployment the task still drives the truth arm, so the report shows the reference
and says that no model was tested.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.io as pio

from longtail.catalog.deployments import current_deployment_id, load_deployment
from longtail.catalog.root import DataRoot
from longtail.detector.predict import make_frame_predictor
from longtail.detector.registry import challenger_model_uri, load_registered
from longtail.sim.fleet_report import KPI_METRICS, make_fleet_test_figure
from longtail.sim.fleet_test import REFERENCE_ARM, FleetTestConfig, load_perception, run_fleet_test
from longtail.sim.perception import Perceive
from longtail.storage import atomic_writer

log = logging.getLogger(__name__)

DEPLOYED_ARM = "deployed"
"""The arm of the current deployment in the task's results."""

DEFINITIONS = {
    "disengagement": "the driver took over from the ADAS (braking or steering the ADAS did not do)",
    "fcw": "forward collision warnings raised by the ADAS",
    "aeb": "automatic emergency braking activations",
    "phantom_braking": "ADAS braking of at least the configured hard deceleration while the road ahead "
                       "(the simulator's truth) needed less than 1 m/s^2",
    "missed_hazard": "a hazard in the ego's path that the ADAS neither braked nor warned for before the driver "
                     "had to act",
    "collision": "contact between the ego and another road user",
    "near_miss": "time to collision under the configured threshold without contact",
}


def _challenger(root: str | os.PathLike[str], deployed_version: str | None) -> tuple[Perceive, str] | None:
    uri = challenger_model_uri(root)
    if uri is None or uri.rsplit("/", 1)[1] == deployed_version:
        return None
    model, meta = load_registered(root, uri)
    thresholds = meta.get("thresholds") or 0.5
    log.info("fleet test: challenger %s runs in shadow beside the deployment", uri)
    return make_frame_predictor(model, thresholds), f"challenger {uri}"


def run_fleet_test_task(root: str | os.PathLike[str], cfg: FleetTestConfig, out: str | os.PathLike[str],
                        report: str | os.PathLike[str], shadow: bool = True,
                        progress: bool = True, cache: bool = True) -> dict[str, Any]:
    """Drive the test fleet with the current deployment (and truth), write the results and the report.

    Args:
        root: the data root (its ``deployments/current.json`` names the deployment).
        cfg: the fleet test's configuration (seeds, drive length, perception rate).
        out: the output folder: drive logs per arm, and ``fleet_test.json`` written last.
        report: the HTML report's path (written atomically).
        shadow: run the registry's challenger, if there is one, in shadow beside the deployment.
        progress: show progress bars.
        cache: reuse the truth arm of an earlier fleet test with the same configuration, seeds and
            simulator source (DATA/fleet_test/cache, `longtail.sim.fleet_cache`).

    Returns:
        The results of `run_fleet_test`, with ``deployment`` (id, model, version; None before the
        first deployment) and ``note`` (why an arm is missing, if one is).
    """
    arms: dict[str, Perceive | None] = {}
    descriptions: dict[str, str] = {}
    deployment: dict[str, Any] | None = None
    note = ""
    if current_deployment_id(root) is not None:
        record = load_deployment(root, "current")
        deployment = {"deployment_id": record["deployment_id"], "model": record["model"],
                      "thresholds": record["thresholds"]}
        arms[DEPLOYED_ARM], descriptions[DEPLOYED_ARM] = load_perception(record["path"])
    else:
        note = ("Nothing is deployed yet (no model passed the gate), so only the simulator's truth perception "
                "drove the fleet.")
        log.warning("fleet test: %s", note)
    challenger = None
    if shadow and deployment is not None:
        found = _challenger(root, str(deployment["model"].get("version")))
        if found is not None:
            challenger, descriptions["shadow"] = found
    results = run_fleet_test(cfg, arms, out, challenger=challenger, descriptions=descriptions, progress=progress,
                             extra={"deployment": deployment, "note": note},
                             cache=DataRoot.of(root).fleet_test_cache if cache else None)
    write_fleet_test_report(results, report)
    return results


def _rates_table(results: Mapping[str, Any], scenario: str) -> str:
    rows = [r for r in results["rates"] if r["scenario"] == scenario]
    paired = {(p["arm"], p["metric"]): p for p in results["paired"] if p["scenario"] == scenario}
    arms = list(results["arms"])
    head = "".join(f"<th>{html.escape(a)}</th>" for a in arms)
    body = []
    for metric in KPI_METRICS:
        cells = []
        for arm in arms:
            r = next((x for x in rows if x["arm"] == arm and x["metric"] == metric), None)
            if r is None:
                cells.append("<td>-</td>")
                continue
            text = f"{r['per_100km']:.1f} [{r['ci_low']:.1f}, {r['ci_high']:.1f}] <small>({r['count']})</small>"
            p = paired.get((arm, metric))
            if p is not None:
                inside = p["ci_low"] <= 0.0 <= p["ci_high"]
                verdict = "inside its interval" if inside else ("more" if p["difference_per_100km"] > 0 else "fewer")
                text += (f"<br><small>vs {html.escape(results['reference'])}: {p['difference_per_100km']:+.1f} "
                         f"[{p['ci_low']:+.1f}, {p['ci_high']:+.1f}], {verdict}</small>")
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr><th title='{html.escape(DEFINITIONS[metric])}'>{metric}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>per 100 km</th>{head}</tr>{''.join(body)}</table>"


def render_fleet_test_html(results: Mapping[str, Any]) -> str:
    """The fleet test as one offline HTML page (plotly.js inline): rates per 100 km with 95%
    intervals per arm, the paired difference to truth, per scenario, shadow mode, definitions."""
    cfg = results["config"]
    deployment = results.get("deployment")
    drives = len(next(iter(results["drives"].values()), []))
    km = {arm: sum(d["km"] for d in ds) for arm, ds in results["drives"].items()}
    if deployment:
        model = deployment["model"]
        who = (f"Deployment <code>{html.escape(deployment['deployment_id'])}</code>: "
               f"{html.escape(str(model.get('name')))} version {html.escape(str(model.get('version')))}")
    else:
        who = "No deployment tested."
    parts = [
        "<h1>Fleet test: the deployed model drives the simulated test fleet</h1>",
        f"<p>{who} {html.escape(results.get('note') or '')}</p>",
        f"<p>{drives} seeded drives of {cfg['minutes']} min per arm (every critical scenario, car and truck, every "
        f"time of day and weather), {', '.join(f'{a}: {k:.1f} km' for a, k in km.items())}. The ADAS (ACC, FCW, "
        f"AEB) acts on the arm's perception at {cfg['perception_hz']} Hz; the driver takes over when the road "
        f"demands it. <b>{html.escape(results['reference'])}</b> is the simulator's own perception, the "
        "reference. Each cell: rate per 100 km [95% bootstrap interval over drives] (episodes); below it, the "
        "paired difference to the reference on the same seeds. A difference whose interval holds 0 is inside "
        "its interval: not shown to differ.</p>",
        "<h2>All scenarios</h2>", _rates_table(results, "all"), "<!--fig0-->",
    ]
    scenarios = sorted({r["scenario"] for r in results["rates"]} - {"all"})
    for scenario in scenarios:
        parts += [f"<h3>{html.escape(scenario)}</h3>", _rates_table(results, scenario)]
    shadow = results.get("shadow")
    parts.append("<h2>Shadow mode</h2>")
    if shadow:
        parts.append(f"<p>{html.escape(results['arms'].get('shadow', 'a challenger'))} predicted beside "
                     f"<b>{html.escape(shadow['arm'])}</b> without acting: {shadow['disagreement_frames']} of "
                     f"{shadow['frames']} perception frames disagree ({shadow['per_1000_frames']:.1f} per 1,000 "
                     "frames) on a pedestrian, a cyclist or a vehicle in the path.</p>")
    else:
        parts.append("<p>No challenger ran in shadow (the registry has none newer than the deployed champion).</p>")
    parts.append("<h2>Definitions</h2><ul>" + "".join(
        f"<li><b>{m}</b>: {html.escape(d)}</li>" for m, d in DEFINITIONS.items()) + "</ul>")
    parts.append(f"<p><small>near miss: time to collision under {cfg['ttc_s']} s; hard braking: "
                 f"{cfg['phantom_decel']} m/s^2; seed {cfg['seed']}; Longtail {html.escape(results['version'])}"
                 "</small></p>")
    body = "\n".join(parts)
    fig = make_fleet_test_figure(dict(results))
    body = body.replace("<!--fig0-->", pio.to_html(fig, include_plotlyjs=True, full_html=False,
                                                   config={"displaylogo": False, "responsive": True}))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left;vertical-align:top}small{color:#555}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Longtail fleet test</title>"
            f"<style>{style}</style></head><body>{body}</body></html>")


def write_fleet_test_report(results: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `render_fleet_test_html` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, "w") as f:
        f.write(render_fleet_test_html(results))
    log.info("fleet test report: %s", path)
    return path


__all__ = ["DEPLOYED_ARM", "REFERENCE_ARM", "render_fleet_test_html", "run_fleet_test_task",
           "write_fleet_test_report"]
