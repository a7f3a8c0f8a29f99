"""The evaluate stage: COCO-style metrics, slices and regression suites, champion vs challenger,
and the HTML report product managers read.

Pure functions first (`metrics`, `slices`, `compare`), the stage (`run.evaluate`) and the report
(`report.render_report`) at the edges.
"""

from longtail.detector.metrics import COCO_IOU_THRESHOLDS, compute_frame_errors, evaluate_detections
from longtail.evaluate.compare import Decision, DecisionConfig, compare_evaluations, compute_kpi, decide
from longtail.evaluate.report import Example, ReportSummary, make_examples, render_report
from longtail.evaluate.run import EvalConfig, evaluate, load_evaluation, save_evaluation
from longtail.evaluate.slices import Slice, Suite, SuiteResult, default_suites, make_slices, run_suites

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "Decision",
    "DecisionConfig",
    "EvalConfig",
    "Example",
    "ReportSummary",
    "Slice",
    "Suite",
    "SuiteResult",
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
