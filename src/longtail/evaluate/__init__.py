"""The evaluate stage: COCO-style metrics, slices and regression suites, champion vs challenger,
and the HTML report product managers read.

Pure functions first (`slices`, `bootstrap`, `compare`, `gate`), the stage (`run.evaluate`) and the report
(`report.render_report`) at the edges.
"""

from longtail.detector.metrics import COCO_IOU_THRESHOLDS, compute_frame_errors, evaluate_detections
from longtail.evaluate.compare import compare_evaluations, compute_kpi
from longtail.evaluate.examples import Example, make_examples
from longtail.evaluate.gate import Decision, GateConfig, Targets, decide
from longtail.evaluate.report import ReportSummary, render_report
from longtail.evaluate.run import EvalConfig, evaluate, load_evaluation, save_evaluation
from longtail.evaluate.slices import Slice, Suite, SuiteResult, default_suites, make_slices, run_suites

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "Decision",
    "EvalConfig",
    "Example",
    "GateConfig",
    "ReportSummary",
    "Slice",
    "Suite",
    "SuiteResult",
    "Targets",
    "compare_evaluations",
    "compute_frame_errors",
    "compute_kpi",
    "decide",
    "default_suites",
    "evaluate",
    "evaluate_detections",
    "load_evaluation",
    "make_examples",
    "make_slices",
    "render_report",
    "run_suites",
    "save_evaluation",
]
