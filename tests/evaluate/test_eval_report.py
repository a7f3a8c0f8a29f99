"""The evaluation report on a dataset version written in the test (real JPEGs, labels.parquet), opened in
headless Chromium: decision first, every figure drawn, example frames decoded, no console errors, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import pytest

from longtail.catalog.failure_modes import load_registry
from longtail.evaluate.examples import draw_example, make_examples
from longtail.evaluate.report import render_report
from longtail.evaluate.run import evaluate
from longtail.gallery import CATEGORY_COLORS

W, H = 160, 96
VERSION = "v-00000000000000bb"


def _box(category: str, x1: float, y1: float, x2: float, y2: float, score: float = 1.0) -> dict[str, Any]:
    return {"category": category, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score}


FRAMES = {  # frame -> (split, tags, fm_name, ground truth)
    "f0": ("test_common", [], "", [_box("car", 10, 40, 60, 70), _box("pedestrian", 100, 20, 112, 60)]),
    "f1": ("test_common", ["night"], "", [_box("cyclist", 70, 30, 95, 80)]),
    "f2": ("test_longtail", ["trigger:hard_braking"], "cut_ins", [_box("car", 40, 30, 90, 70)]),
    "f3": ("test_longtail", ["night", "glare"], "", [_box("pedestrian", 20, 10, 32, 50), _box("truck", 80, 20, 150, 80)]),
}


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version folder: labels.parquet and one grey JPEG per frame with its objects painted in."""
    folder = tmp_path_factory.mktemp("data") / "datasets" / VERSION
    (folder / "images").mkdir(parents=True)
    rows = []
    for fid, (split, tags, fm, boxes) in FRAMES.items():
        img = np.full((H, W, 3), 90, np.uint8)
        for b in boxes:
            cv2.rectangle(img, (int(b["x1"]), int(b["y1"])), (int(b["x2"]) - 1, int(b["y2"]) - 1), (200, 200, 200), -1)
        ok, jpeg = cv2.imencode(".jpg", img)
        assert ok
        (folder / "images" / f"{fid}.jpg").write_bytes(jpeg.tobytes())
        rows.append({"frame_id": fid, "image_path": f"images/{fid}.jpg", "log_id": "log-1", "drive_id": "car-001_drive000",
                     "width": W, "height": H, "boxes": boxes, "split": split, "long_tail": split == "test_longtail",
                     "tags": tags, "triggers": ["hard_braking"] if fm else [], "fm_name": fm})
    pd.DataFrame(rows).to_parquet(folder / "labels.parquet")
    return folder


def _preds(miss: tuple[str, ...] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every object found (slightly shifted), except the classes of frames named in ``miss`` ("f0:pedestrian")."""
    return {fid: [dict(b, x1=b["x1"] + 1, x2=b["x2"] + 1, score=0.9) for b in boxes if f"{fid}:{b['category']}" not in miss]
            for fid, (_, _, _, boxes) in FRAMES.items()}


def _open(chromium, path: Path) -> tuple[Any, list[str]]:  # type: ignore[no-untyped-def]
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"network: {r.url}") if not r.url.startswith(("file:", "data:")) else None)
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def test_report_with_a_champion_renders_offline_with_every_figure_and_example(version: Path, chromium, tmp_path: Path
                                                                              ) -> None:  # type: ignore[no-untyped-def]
    modes = load_registry(tmp_path)
    champion = evaluate(version, _preds(), None, modes, model="detector-v1")
    ev = evaluate(version, _preds(("f0:pedestrian", "f2:car")), None, modes, champion, model="detector-v2")
    assert ev["decision"]["promote"] is False
    examples = make_examples(ev, _preds(("f0:pedestrian", "f2:car")), pd.read_parquet(version / "labels.parquet"),
                             version, champion)
    assert [e.frame_id for e in examples] == ["f0", "f2"]  # where critical errors rose: a pedestrian, a cut-in car
    summary = render_report(ev, tmp_path / "report.html", champion, examples)
    assert (summary.figures, summary.examples) == (4, 2)
    text = summary.path.read_text()
    assert text.count("<script src=") == 0 and "cdn.plot.ly" not in text.split("<script")[0]

    page, problems = _open(chromium, summary.path)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == summary.figures
    # Each figure drew its bars (plotly's SVG traces), not just an empty frame.
    assert page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.trace'))")
    first = page.evaluate("[document.body.firstElementChild.id, document.body.firstElementChild.innerText]")
    assert first[0] == "decision" and first[1].startswith("Decision: do not promote detector-v2")
    assert "Critical false positives plus negatives 0 -> 2 (+2): they did not fall" in first[1]
    widths = page.evaluate("[...document.querySelectorAll('#regressions img')].map(i => i.complete && i.naturalWidth)")
    assert widths == [W * 3, W * 3]  # 160 px frames scaled x3 to reach 480 px
    assert page.locator("pre, code, script[src], link[href]").count() == 0  # no code, nothing fetched
    sections = page.evaluate("[...document.querySelectorAll('body > section')].map(s => s.id)")
    assert sections == ["decision", "targets", "gate", "kpis", "suites", "critical", "classes", "slices", "comparison",
                        "regressions"]
    assert page.locator("#targets td", has_text="not met").count() >= 1  # the report says which targets are missed
    assert problems == []
    page.close()


def test_first_model_report_has_three_figures_and_says_promote(version: Path, chromium, tmp_path: Path
                                                              ) -> None:  # type: ignore[no-untyped-def]
    ev = evaluate(version, _preds(), None, load_registry(tmp_path), model="detector-v1")
    summary = render_report(ev, tmp_path / "first.html")
    assert (summary.figures, summary.examples) == (3, 0)
    page, problems = _open(chromium, summary.path)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 3
    assert page.evaluate("document.body.firstElementChild.innerText").startswith("Decision: promote detector-v1")
    assert page.locator("#comparison").count() == 0
    assert page.locator("#sanity td", has_text="passed").count() >= 1  # the first champion's floors
    assert problems == []
    page.close()


def test_example_frame_has_boxes_drawn_in_class_colours(version: Path) -> None:
    from longtail.evaluate.examples import Example

    gt = FRAMES["f0"][3]
    jpeg = draw_example(Example("f0", version / "images/f0.jpg", tuple(gt), (), "x"))
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (H * 3, W * 3, 3)
    # The car's left edge (x1 = 10 -> 30 px scaled) is drawn in the car colour (JPEG: within a tolerance).
    r, g, b = (int(CATEGORY_COLORS["car"][i:i + 2], 16) for i in (1, 3, 5))
    pixel = img[55 * 3, 30].astype(int)
    assert np.abs(pixel - [b, g, r]).max() < 60, pixel
