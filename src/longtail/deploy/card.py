"""The model card of a deployment (Markdown): what the model is for, what it learned from, how it did.

Sections, after Mitchell et al., "Model Cards for Model Reporting" (2019), cut to what Longtail
records: intended use; the model and its operating thresholds; training data and its lineage
(dataset version, its digest, labeling batches, drive logs); evaluation, with each target met or
missed and its interval (the gate's evidence in evaluation.json); known failure modes (the
registry); the exports and their parity with PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(ci: Sequence[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(ci) == 2 and None not in ci else "n/a"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _training_data(meta: Mapping[str, Any], manifest: Mapping[str, Any] | None, run_id: str) -> list[str]:
    vid, digest = meta.get("dataset_version"), meta.get("dataset_digest")
    lines = ["## Training data and lineage", "",
             f"- Dataset version: `{vid}` (labels.parquet sha256 `{digest}`)",
             f"- MLflow run: `{run_id}`; epochs trained: {_fmt(meta.get('epochs_done'))}; "
             f"validation mAP@0.5 at the last epoch: {_fmt(meta.get('val_map50'))}"]
    if manifest is None:
        lines.append(f"- The version's manifest is not in this data root: its labeling batches are not listed "
                     f"(restore `{vid}` with DVC to see them).")
        return [*lines, ""]
    counts = manifest.get("counts") or {}
    lines.append("- Frames per split: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    sets = manifest.get("label_sets") or []
    if sets:
        lines += ["", "Labeling batches (label sets) the version was built from:", ""]
        lines += _table(["batch", "label set sha256", "frames used", "labeled at"],
                        [(f"`{s.get('batch_id')}`", f"`{str(s.get('digest'))[:16]}...`", s.get("frames_used"),
                          s.get("created_at")) for s in sets])
    elif manifest.get("batches"):
        lines.append("- Labeling batches: " + ", ".join(f"`{b}`" for b in manifest["batches"]))
    logs = (manifest.get("lineage") or {}).get("drive_logs") or []
    lines += ["", f"- Drive logs: {len(logs)} (the manifest of `{vid}` lists them), parent version: "
              f"`{manifest.get('parent')}`", ""]
    return lines


def _evaluation(evaluation: Mapping[str, Any] | None, source: str | None) -> list[str]:
    lines = ["## Evaluation", ""]
    if evaluation is None:
        return [*lines, "No evaluation of this model version was found (no `longtail.evaluation` tag and no "
                "evaluation.json of its run): run `longtail evaluate` to measure it.", ""]
    overall = evaluation.get("overall") or {}
    decision = evaluation.get("decision") or {}
    lines += [f"On the test suites of dataset version `{evaluation.get('version_id')}` ({evaluation.get('frames')} "
              f"frames; `{source}`): mAP@0.5 {_fmt(overall.get('map50'))} (95% interval "
              f"{_ci(overall.get('map50_ci'))}). Gate: {decision.get('headline', 'n/a')}.", ""]
    targets = (decision.get("evidence") or {}).get("targets") or []
    if targets:
        met = [t for t in targets if t.get("status") == "met"]
        missed = [t for t in targets if t.get("status") != "met"]
        lines += [f"Targets: {len(met)} met, {len(missed)} not met, inside their interval or not measurable. A target "
                  "is met when the interval's low end reaches it, not met when its high end stays below.", ""]
        lines += _table(["target", "goal", "value", "95% interval", "status"],
                        [(t.get("target"), _fmt(t.get("goal")), _fmt(t.get("value")), _ci(t.get("ci")), t.get("status"))
                         for t in missed + met])
        lines.append("")
    suites = evaluation.get("suites") or []
    if suites:
        lines += ["Regression suites:", ""]
        lines += _table(["suite", "metric", "threshold", "value", "95% interval", "status"],
                        [(s.get("name"), s.get("metric"), _fmt(s.get("threshold")), _fmt(s.get("value")),
                          _ci(s.get("ci")), s.get("status")) for s in suites])
        lines.append("")
    return lines


def _failure_modes(modes: Iterable[Any], evaluation: Mapping[str, Any] | None) -> list[str]:
    suites = {s.get("name"): s for s in (evaluation or {}).get("suites") or []}
    known = [m for m in modes if m.status != "pending"]
    lines = ["## Known failure modes", ""]
    if not known:
        return [*lines, "None discovered yet in this data root's failure-mode registry.", ""]
    lines += _table(["failure mode", "status", "frames", "what", "this model on its suite"],
                    [(f"{m.title} (`{m.name}`)", m.status + (f" by {m.fixed_by}" if m.fixed_by else ""), m.count,
                      m.description, f"{_fmt(suites[m.name].get('value'))} ({suites[m.name].get('status')})"
                      if m.name in suites else "not evaluated") for m in known])
    return [*lines, ""]


def render_model_card(deployment_id: str, model: Mapping[str, Any], meta: Mapping[str, Any],
                      thresholds: Mapping[str, Any], manifest: Mapping[str, Any] | None,
                      evaluation: Mapping[str, Any] | None, evaluation_source: str | None, failure_modes: Iterable[Any],
                      parity: Mapping[str, Any], created_at: str) -> str:
    """The model card in Markdown.

    Args:
        deployment_id: the deployment.
        model: ``name``, ``version``, ``uri``, ``run_id``, ``weights_sha256``.
        meta: the model's model.json (preset, classes, input size, dataset version and digest).
        thresholds: what thresholds.json holds (``thresholds``, ``source``).
        manifest: the training dataset version's manifest, or None when it is not in the data root.
        evaluation: the model's evaluation.json, or None.
        evaluation_source: where it was read from.
        failure_modes: registry entries (`longtail.catalog.failure_modes.FailureMode`).
        parity: the parity results (`longtail.deploy.parity.check_parity`).
        created_at: ISO time of the deployment.
    """
    classes = list(meta.get("classes") or [])
    lines = [f"# Model card: {model['name']} version {model['version']}", "",
             f"Deployment `{deployment_id}`, {created_at}. Model `{model['uri']}` (MLflow run `{model['run_id']}`, "
             f"weights sha256 `{model['weights_sha256']}`).", "",
             "## Intended use", "",
             f"Detects {', '.join(classes)} in forward-facing camera frames of the fleet, for the ADAS functions (ACC, "
             "FCW, AEB) in simulated fleet tests, shadow mode and monitoring of newly ingested drive logs. It was "
             "trained and tested on the data root's drive logs only (a simulated fleet by default): it is not "
             "validated for public roads, other cameras or other countries. Pedestrians and cyclists carry "
             "recall-leaning thresholds: a miss costs more than a phantom box.", "",
             "## Model", "",
             f"- Preset `{meta.get('preset')}`, input scale {meta.get('max_size')}x{meta.get('min_size')} px "
             "(frames of other sizes are resized as in training, boxes mapped back).",
             "- Output: boxes in the frame's pixel edges (x1, y1, x2, y2; x2/y2 exclusive), class, score 0..1.",
             f"- Operating thresholds ({thresholds.get('source')}):", ""]
    lines += _table(["class", "threshold"], [(c, _fmt(v)) for c, v in (thresholds.get("thresholds") or {}).items()])
    lines.append("")
    lines += _training_data(meta, manifest, str(model['run_id']))
    lines += _evaluation(evaluation, evaluation_source)
    lines += _failure_modes(failure_modes, evaluation)
    tol = parity.get("tolerance") or {}
    lines += ["## Exports and parity", "",
              f"TorchScript (`model.ts`) and ONNX opset 18 (`model.onnx`, onnxruntime) against PyTorch on "
              f"{parity.get('frames_description')}. Tolerance: boxes within {tol.get('box_px')} px, scores within "
              f"{tol.get('score')}, no detection clearly above its threshold without a counterpart.", ""]
    lines += _table(["backend", "max box difference (px)", "max score difference", "unmatched",
                     "ms per frame (first calls included)", "passed"],
                    [(b, f"{r['all']['max_box_diff']:.2e}", f"{r['all']['max_score_diff']:.2e}",
                      r["all"]["missed"] + r["operating"]["missed"], _fmt(r.get("ms_per_frame"), 1), r["passed"])
                     for b, r in (parity.get("backends") or {}).items()])
    lines += ["", "Serve it: `mlflow models serve -m pyfunc --env-manager local` in the deployment folder; POST "
              "base64 JPEG frames to /invocations (`longtail.deploy.pyfunc`).", ""]
    return "\n".join(lines)
