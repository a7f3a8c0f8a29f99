"""Push a labeling batch to Label Studio with pre-labels, and pull the finished labels back.

Push goes through FiftyOne's ``labelstudio`` annotation backend: the batch's frames become a
Label Studio project whose tasks carry the pre-labels (the detector's boxes with confidences)
as predictions, so people correct rather than draw. Pull brings back the *finished* tasks (a
task FiftyOne sees as labeled only because it has predictions is not finished), runs label QA
and writes the batch's label set:

    DATA/labels/<batch_id>/push.json       the project, its tasks, the pre-label model, what people saw
    DATA/labels/<batch_id>/shown/, privacy.json  the frames as people see them: blurred (`longtail.label.blur`)
    DATA/labels/<batch_id>/prelabels.parquet  the pre-labels pushed (LABEL_SET_SCHEMA rows)
    DATA/labels/<batch_id>/labels.parquet  one row per frame (LABEL_SET_SCHEMA)
    DATA/labels/<batch_id>/qa.json         the QA report
    DATA/labels/<batch_id>/manifest.json   written last (LABEL_SET_KEYS)

A pull that fails half-way (Label Studio down, an error answer) writes nothing and can be
retried; FiftyOne's temporary field is removed either way. The simulated labeler (`oracle`)
submits annotations through Label Studio's REST API exactly as a person's *Submit* does, then
the same pull runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from longtail.boxes import to_fiftyone
from longtail.catalog.db import DEFAULT_DATASET, open_dataset
from longtail.catalog.root import DataRoot
from longtail.errors import InputError, LongtailError
from longtail.label.blur import SHOWN_FIELD, prepare_shown, privacy_summary
from longtail.label.oracle import LabelingCost, plan_edits, total_cost
from longtail.label.qa import QAConfig, as_label_box, run_qa
from longtail.label.server import URL_ENV, Connection, LabelStudioError, connect, local_files_env
from longtail.privacy import PrivacyConfig, RegionDetector
from longtail.schemas import CATEGORIES, LABEL_SET_SCHEMA
from longtail.storage import atomic_write_json, atomic_writer, sha256_file

log = logging.getLogger(__name__)

PRELABEL_FIELD = "prelabels"
Boxes = Sequence[Mapping[str, Any]]


class UnknownBatchError(InputError):
    """A batch id that is not in DATA/batches (or was never pushed)."""


# ------------------------------------------------------------------------------ Label Studio REST
def request(conn: Connection, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
    """One call to Label Studio's REST API with the project's token.

    Raises:
        LabelStudioError: naming the URL, the status and Label Studio's answer.
    """
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{conn.url}{path}", data=data, method=method,
                                 headers={"Authorization": f"Token {conn.api_key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise LabelStudioError(f"Label Studio {method} {conn.url}{path} answered {exc.code}: "
                               f"{exc.read()[:500].decode(errors='replace')}") from exc
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        raise LabelStudioError(f"Label Studio at {conn.url} is not reachable ({exc}); "
                               "start it with `longtail label serve` and retry") from exc
    return json.loads(raw) if raw else None


PAGE_SIZE = 500
"""Tasks per page when listing a project."""


def project_tasks(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    """Every task of a project with its annotations (all pages)."""
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        got = request(conn, "GET", f"/api/tasks?project={project_id}&page={page}&page_size={PAGE_SIZE}&fields=all")
        batch = got["tasks"] if isinstance(got, dict) else got
        tasks.extend(batch)
        total = got.get("total", len(tasks)) if isinstance(got, dict) else len(tasks)
        if not batch or len(tasks) >= total:
            return tasks
        page += 1


def to_studio_result(boxes: Sequence[Mapping[str, Any]], width: int, height: int) -> list[dict[str, Any]]:
    """Boxes (internal pixels) as the ``result`` of a Label Studio annotation (percent of the image)."""
    out = []
    for k, b in enumerate(boxes):
        out.append({
            "id": f"b{k}", "from_name": PRELABEL_FIELD, "to_name": "image", "type": "rectanglelabels",
            "original_width": width, "original_height": height, "image_rotation": 0,
            "value": {"x": b["x1"] / width * 100.0, "y": b["y1"] / height * 100.0,
                      "width": (b["x2"] - b["x1"]) / width * 100.0, "height": (b["y2"] - b["y1"]) / height * 100.0,
                      "rotation": 0, "rectanglelabels": [b["category"]]},
        })
    return out


def annotation_boxes(task: Mapping[str, Any], width: int, height: int) -> list[dict[str, Any]]:
    """The boxes of a task's latest submitted annotation, in internal pixels (Label Studio stores
    percent of the image). Cancelled annotations and non-box results are ignored."""
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return []
    latest = sorted(anns, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))[-1]
    boxes = []
    for r in latest.get("result") or []:
        if r.get("type") != "rectanglelabels":
            continue
        v = r["value"]
        labels = v.get("rectanglelabels") or [""]
        x, y = float(v["x"]) / 100.0 * width, float(v["y"]) / 100.0 * height
        boxes.append(_box(str(labels[0]), (x, y, x + float(v["width"]) / 100.0 * width,
                                           y + float(v["height"]) / 100.0 * height), 1.0))
    return boxes


def submit_annotation(conn: Connection, task_id: int, boxes: Sequence[Mapping[str, Any]], width: int, height: int,
                      lead_time_s: float = 0.0) -> int:
    """Submit an annotation of a task as a person's *Submit* button does; returns its id."""
    got = request(conn, "POST", f"/api/tasks/{task_id}/annotations",
                  {"result": to_studio_result(boxes, width, height), "was_cancelled": False,
                   "ground_truth": False, "lead_time": float(lead_time_s)})
    return int(got["id"])


# ------------------------------------------------------------------------------------ the batch
def labels_dir(root: str | os.PathLike[str], batch_id: str) -> Path:
    """DATA/labels/<batch_id>."""
    return DataRoot.of(root).label_set(batch_id)


def load_batch(root: str | os.PathLike[str], batch_id: str) -> tuple[dict[str, Any], pa.Table]:
    """A labeling batch's manifest and frames.

    Raises:
        UnknownBatchError: listing the batches that exist.
    """
    folder = DataRoot.of(root).batch(batch_id)
    if not (folder / "manifest.json").is_file():
        known = sorted(p.parent.name for p in DataRoot.of(root).batches.glob("*/manifest.json"))
        raise UnknownBatchError(f"no labeling batch {batch_id!r} in {DataRoot.of(root).batches}; "
                                f"known batches: {known or 'none (run `longtail select`)'}")
    return json.loads((folder / "manifest.json").read_text()), pq.read_table(folder / "frames.parquet")


def _anno_key(batch_id: str) -> str:
    return "ls_" + batch_id.replace("-", "_")


def _box(category: str, box: tuple[float, float, float, float], score: float) -> dict[str, Any]:
    return {"category": category, "x1": float(box[0]), "y1": float(box[1]), "x2": float(box[2]),
            "y2": float(box[3]), "score": float(score)}


def push_batch(root: str | os.PathLike[str], batch_id: str, prelabels: Mapping[str, Boxes] | None = None,
               model: str | None = None, dataset_name: str = DEFAULT_DATASET, force: bool = False,
               privacy: PrivacyConfig | None = None, detector: RegionDetector | None = None) -> dict[str, Any]:
    """Create a Label Studio project with the batch's frames, faces and plates blurred, and their pre-labels.

    Args:
        root: the data root.
        batch_id: a batch in DATA/batches.
        prelabels: frame_id -> boxes (dicts with BOX_TYPE fields, internal pixels) from a detector;
            None pushes without pre-labels (before the first model).
        model: the pre-labeling model's name and version (lineage), when ``prelabels`` are given.
        dataset_name: the FiftyOne dataset.
        force: push again even when the batch was pushed already.
        privacy: whether and how frames are blurred on the copies people see (default: blurred).
        detector: a face and plate detector replacing the one ``privacy`` names.

    Returns:
        The push record (also in DATA/labels/<batch_id>/push.json).
    """
    import fiftyone as fo

    manifest, frames = load_batch(root, batch_id)
    folder = labels_dir(root, batch_id)
    record_path = folder / "push.json"
    conn = connect(root)
    if record_path.exists() and not force:
        record = json.loads(record_path.read_text())
        try:
            request(conn, "GET", f"/api/projects/{record['project_id']}")
            log.info("batch %s is already in Label Studio project %s", batch_id, record["project_id"])
            return dict(record)
        except LabelStudioError:
            log.warning("project %s of batch %s is gone from Label Studio; pushing again", record["project_id"],
                        batch_id)
    dataset = open_dataset(root, dataset_name)
    frame_ids = frames.column("frame_id").to_pylist()
    view = dataset.select_by("frame_id", frame_ids, ordered=True)
    if len(view) != len(frame_ids):
        raise InputError(f"batch {batch_id}: {len(frame_ids) - len(view)} of its frames are not in dataset "
                         f"{dataset_name}; run `longtail curate` first")
    sizes = dict(zip(view.values("frame_id"), zip(view.values("metadata.width"), view.values("metadata.height"),
                                                  strict=True), strict=True))
    pre = {fid: [as_label_box(b) for b in (prelabels or {}).get(fid, [])] for fid in frame_ids}
    unknown = sorted({b["category"] for boxes in pre.values() for b in boxes} - set(CATEGORIES))
    if unknown:
        raise InputError(f"pre-labels of batch {batch_id} use unknown classes {unknown}; valid are {list(CATEGORIES)}")
    dets = {fid: fo.Detections(detections=[
        fo.Detection(label=b["category"], confidence=b["score"],
                     bounding_box=to_fiftyone((b["x1"], b["y1"], b["x2"], b["y2"]), *sizes[fid])) for b in boxes])
        for fid, boxes in pre.items()}
    if prelabels is not None:
        view.set_values(PRELABEL_FIELD, dets, key_field="frame_id")
    elif PRELABEL_FIELD in dataset.get_field_schema():
        view.set_values(PRELABEL_FIELD, {fid: None for fid in frame_ids}, key_field="frame_id")
    originals = dict(zip(frame_ids, zip(view.values("filepath"), frames.column("image_sha256").to_pylist(),
                                        strict=True), strict=True))
    shown, privacy_record = prepare_shown(root, batch_id, originals, privacy, detector, progress=sys.stderr.isatty())
    view.set_values(SHOWN_FIELD, shown, key_field="frame_id")
    key = _anno_key(batch_id)
    if key in dataset.list_annotation_runs():
        dataset.delete_annotation_run(key)
    kwargs: dict[str, Any] = {"label_field": PRELABEL_FIELD, "label_type": "detections", "classes": list(CATEGORIES),
                              "media_field": SHOWN_FIELD}
    if prelabels is None:
        # Nothing to start from: the field the labels land in must be new to FiftyOne.
        view = view.exclude_fields(PRELABEL_FIELD) if PRELABEL_FIELD in dataset.get_field_schema() else view
    # The data root's own Label Studio reads frames in place; a user's server gets them uploaded.
    local = {} if os.environ.get(URL_ENV) else local_files_env(root)
    saved = {k: os.environ.get(k) for k in local}
    os.environ.update(local)
    try:
        results = view.annotate(key, backend="labelstudio", url=conn.url, api_key=conn.api_key,
                                project_name=f"longtail {batch_id}", **kwargs)
    except Exception as exc:  # the SDK raises requests' and its own errors
        if key in dataset.list_annotation_runs():
            dataset.delete_annotation_run(key)
        raise LabelStudioError(f"pushing batch {batch_id} to {conn.url} failed ({type(exc).__name__}: "
                               f"{str(exc)[:300]}); no push was recorded, retry the push") from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    task_frames = {str(t): dataset[sid].frame_id for t, sid in results.uploaded_tasks.items()}
    record = {
        "batch_id": batch_id, "batch_digest": manifest["digest"], "project_id": int(results.project_id),
        "url": f"{conn.url}/projects/{results.project_id}", "anno_key": key, "tasks": task_frames,
        "prelabel_model": model if prelabels is not None else None,
        "prelabels": sum(len(b) for b in pre.values()), "privacy": privacy_summary(privacy_record),
        "pushed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    _write_rows(folder / "prelabels.parquet", [
        _row(frames, i, sizes, pre[fid], [], True, [], "") for i, fid in enumerate(frame_ids)])
    atomic_write_json(record_path, record)
    log.info("batch %s: %d frame(s), %d pre-label(s) -> Label Studio project %s", batch_id, len(frame_ids),
             record["prelabels"], record["url"])
    return record


def _row(frames: pa.Table, i: int, sizes: Mapping[str, tuple[int, int]], boxes: Boxes, prelabels: Boxes,
         accepted: bool, reasons: list[str], annotator: str) -> dict[str, Any]:
    fid = frames.column("frame_id")[i].as_py()
    return {"frame_id": fid, "image_sha256": frames.column("image_sha256")[i].as_py(),
            "store_path": frames.column("store_path")[i].as_py(), "log_id": frames.column("log_id")[i].as_py(),
            "drive_id": frames.column("drive_id")[i].as_py(), "timestamp_ns": frames.column("timestamp_ns")[i].as_py(),
            "width": sizes[fid][0], "height": sizes[fid][1], "boxes": boxes, "prelabels": prelabels,
            "accepted": accepted, "qa_reasons": reasons, "annotator": annotator}


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=LABEL_SET_SCHEMA)
    with atomic_writer(path) as fh:
        pq.write_table(table, fh)


def read_prelabels(root: str | os.PathLike[str], batch_id: str) -> dict[str, Boxes]:
    """The pre-labels pushed with a batch, by frame id."""
    table = pq.read_table(labels_dir(root, batch_id) / "prelabels.parquet")
    return dict(zip(table.column("frame_id").to_pylist(), table.column("boxes").to_pylist(), strict=True))


def push_record(root: str | os.PathLike[str], batch_id: str) -> dict[str, Any]:
    """The push record of a batch.

    Raises:
        UnknownBatchError: when the batch does not exist or was never pushed.
    """
    load_batch(root, batch_id)
    path = labels_dir(root, batch_id) / "push.json"
    if not path.is_file():
        raise UnknownBatchError(f"batch {batch_id} was never pushed to Label Studio ({path} missing); "
                                f"run `longtail label push {batch_id}` first")
    return dict(json.loads(path.read_text()))


# ------------------------------------------------------------------------------ simulated labeler
def oracle_annotate(root: str | os.PathLike[str], batch_id: str,
                    truth: Mapping[str, Boxes], progress: Callable[[int], None] | None = None) -> LabelingCost:
    """Play the human on every unfinished task: start from the pre-labels, edit them into the
    ground truth (`plan_edits`) and submit through the REST API. Returns the labeling cost.

    Raises:
        InputError: when a frame of the batch has no ground truth.
    """
    record = push_record(root, batch_id)
    conn = connect(root)
    pre = read_prelabels(root, batch_id)
    sizes = _sizes(root, batch_id)
    costs = []
    for task in project_tasks(conn, record["project_id"]):
        if task.get("is_labeled"):
            continue
        fid = record["tasks"][str(task["id"])]
        if fid not in truth:
            raise InputError(f"frame {fid} of batch {batch_id} has no ground truth: the simulated labeler only "
                             "labels simulated drives (use Label Studio for the others)")
        final, cost = plan_edits(pre.get(fid, []), truth[fid])
        submit_annotation(conn, int(task["id"]), [as_label_box(b) for b in final], *sizes[fid],
                          lead_time_s=cost.seconds)
        costs.append(cost)
        if progress:
            progress(1)
    return total_cost(costs)


def _sizes(root: str | os.PathLike[str], batch_id: str) -> dict[str, tuple[int, int]]:
    table = pq.read_table(labels_dir(root, batch_id) / "prelabels.parquet", columns=["frame_id", "width", "height"])
    return {f: (w, h) for f, w, h in zip(*(table.column(c).to_pylist() for c in ("frame_id", "width", "height")),
                                         strict=True)}


# ------------------------------------------------------------------------------------------ pull
def pull_batch(root: str | os.PathLike[str], batch_id: str, qa: QAConfig | None = None, partial: bool = False,
               source: str = "labelstudio", cost: LabelingCost | None = None,
               dataset_name: str = DEFAULT_DATASET) -> dict[str, Any]:
    """Bring a batch's finished annotations back, run QA and write its label set.

    Args:
        root: the data root.
        batch_id: a pushed batch.
        qa: QA thresholds.
        partial: accept a batch with unfinished tasks (their frames are left out).
        source: ``labelstudio`` or ``oracle`` (recorded in the manifest).
        cost: the labeling cost when the caller measured it (the simulated labeler); otherwise it is
            counted from the submitted boxes against the pre-labels, in the same units.
        dataset_name: the FiftyOne dataset.

    Returns:
        The label set manifest.

    Raises:
        UnknownBatchError: for a batch that does not exist or was never pushed.
        LabelStudioError: when Label Studio is down or answers with an error (nothing is written).
        LongtailError: when tasks are unfinished and ``partial`` is False.
    """
    record = push_record(root, batch_id)
    manifest, frames = load_batch(root, batch_id)
    conn = connect(root)
    tasks = project_tasks(conn, record["project_id"])
    done = {int(t["id"]): t for t in tasks if t.get("is_labeled")}
    missing = [t for t in record["tasks"] if int(t) not in {int(x["id"]) for x in tasks}]
    if missing:
        raise LabelStudioError(f"{len(missing)} task(s) of batch {batch_id} are gone from project "
                               f"{record['url']}; push it again with `longtail label push {batch_id} --force`")
    if len(done) < len(record["tasks"]) and not partial:
        raise LongtailError(f"{len(record['tasks']) - len(done)} of {len(record['tasks'])} task(s) of batch {batch_id} "
                            f"are not finished in {record['url']}: finish them, or pull with --partial to take "
                            "the finished ones now")
    annotators = _annotators(conn, done.values())

    dataset = open_dataset(root, dataset_name)
    sizes = _sizes(root, batch_id)
    # The annotations come from the task listing just read, page by page. (FiftyOne's download asks
    # for all task ids in one URL, which Label Studio refuses beyond a few hundred tasks, and then
    # returns no labels without an error: a batch would come back empty.)
    by_frame = {record["tasks"][str(t)]: annotation_boxes(task, *sizes[record["tasks"][str(t)]])
                for t, task in done.items()}

    pre = read_prelabels(root, batch_id)
    frame_ids = frames.column("frame_id").to_pylist()
    task_of = {fid: int(t) for t, fid in record["tasks"].items()}
    rows, costs = [], []
    for i, fid in enumerate(frame_ids):
        if task_of[fid] not in done:
            continue
        boxes = by_frame[fid]
        rows.append(_row(frames, i, sizes, boxes, pre.get(fid, []), True, [], annotators.get(task_of[fid], "")))
        if cost is None:
            costs.append(plan_edits(pre.get(fid, []), boxes)[1])
    accepted, reasons, report = run_qa(rows, qa)
    for row, ok, why in zip(rows, accepted, reasons, strict=True):
        row["accepted"], row["qa_reasons"] = ok, why
    cost = cost if cost is not None else total_cost(costs)
    # The same submitted boxes drawn from nothing: what the batch would have cost without pre-labels.
    from_scratch = total_cost(plan_edits([], r["boxes"])[1] for r in rows)
    return _write_label_set(root, batch_id, manifest, record, rows, report, cost, source, dataset, from_scratch)


def _annotators(conn: Connection, tasks: Any) -> dict[int, str]:
    users: dict[int, str] = {}
    out = {}
    for t in tasks:
        anns = sorted(t.get("annotations") or [], key=lambda a: a.get("updated_at") or "")
        uid = anns[-1].get("completed_by") if anns else None
        if isinstance(uid, dict):
            out[int(t["id"])] = str(uid.get("email", uid.get("id", "")))
            continue
        if uid is not None and uid not in users:
            try:
                users[uid] = str(request(conn, "GET", f"/api/users/{uid}").get("email", uid))
            except LabelStudioError:
                users[uid] = str(uid)
        out[int(t["id"])] = users.get(uid, "") if uid is not None else ""
    return out


def _write_label_set(root: str | os.PathLike[str], batch_id: str, batch: dict[str, Any], record: dict[str, Any],
                     rows: list[dict[str, Any]], report: dict[str, Any], cost: LabelingCost, source: str,
                     dataset: Any, from_scratch: LabelingCost | None = None) -> dict[str, Any]:
    import fiftyone as fo

    folder = labels_dir(root, batch_id)
    _write_rows(folder / "labels.parquet", rows)
    atomic_write_json(folder / "qa.json", report)
    accepted = [r for r in rows if r["accepted"]]
    manifest = {
        "batch_id": batch_id, "digest": sha256_file(folder / "labels.parquet"),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "source": source,
        "frames": len(rows), "accepted": len(accepted), "held": len(rows) - len(accepted),
        "cost": cost.as_dict(), "cost_without_prelabels": from_scratch.as_dict() if from_scratch else None,
        "qa": {k: report[k] for k in ("frames", "accepted", "held", "checks")},
        "lineage": {"batch_digest": batch["digest"], "logs": sorted({r["log_id"] for r in rows}),
                    "project": record["url"], "prelabel_model": record.get("prelabel_model"),
                    "shown": record.get("privacy")},
    }
    atomic_write_json(folder / "manifest.json", manifest)
    # The dataset follows the label set: accepted frames get ground truth, held ones their reasons.
    view = dataset.select_by("frame_id", [r["frame_id"] for r in rows])
    gt = {r["frame_id"]: fo.Detections(detections=[
        fo.Detection(label=b["category"], bounding_box=to_fiftyone((b["x1"], b["y1"], b["x2"], b["y2"]),
                                                                   r["width"], r["height"])) for b in r["boxes"]])
        if r["accepted"] else None for r in rows}
    view.set_values("ground_truth", gt, key_field="frame_id")
    view.set_values("label_status", {r["frame_id"]: "accepted" if r["accepted"] else "held" for r in rows},
                    key_field="frame_id")
    view.set_values("qa_reasons", {r["frame_id"]: r["qa_reasons"] for r in rows}, key_field="frame_id")
    log.info("batch %s: %d frame(s) labeled (%s), %d accepted, %d held by QA -> %s", batch_id, len(rows), source,
             len(accepted), len(rows) - len(accepted), folder)
    return manifest


def read_label_set(root: str | os.PathLike[str], batch_id: str) -> tuple[dict[str, Any], pa.Table]:
    """A batch's label set (manifest, labels) after checking its digest.

    Raises:
        UnknownBatchError: when the batch has no label set.
        InputError: when labels.parquet does not match the manifest's digest.
    """
    folder = labels_dir(root, batch_id)
    if not (folder / "manifest.json").is_file():
        raise UnknownBatchError(f"batch {batch_id} has no label set ({folder / 'manifest.json'} missing); "
                                f"run `longtail label pull {batch_id}`")
    manifest = json.loads((folder / "manifest.json").read_text())
    if sha256_file(folder / "labels.parquet") != manifest["digest"]:
        raise InputError(f"{folder / 'labels.parquet'}: sha256 differs from field digest of {folder / 'manifest.json'}; "
                         f"pull the batch again (`longtail label pull {batch_id}`)")
    return manifest, pq.read_table(folder / "labels.parquet")


def batch_truth(root: str | os.PathLike[str], batch_id: str) -> dict[str, Boxes]:
    """The boxes the simulated labeler draws on each frame of a batch: the simulator's ground truth
    (visible extents, `longtail.label.oracle.truth_boxes`).

    Raises:
        GroundTruthError: when a drive of the batch is not simulated or its sidecar is gone.
    """
    from longtail.catalog.truth import find_truth_files, load_truth
    from longtail.label.oracle import truth_boxes

    _, frames = load_batch(root, batch_id)
    df = frames.select(["frame_id", "log_id", "drive_id", "timestamp_ns"]).to_pandas()
    truth = load_truth(find_truth_files(root, sorted(set(df["log_id"]))), df)
    sizes = _sizes(root, batch_id) if (labels_dir(root, batch_id) / "prelabels.parquet").exists() else None
    if sizes is None:
        raise UnknownBatchError(f"batch {batch_id} was never pushed; run `longtail label push {batch_id}` first")
    return {fid: [dict(b) for b in truth_boxes(t.objects, *sizes[fid])] for fid, t in truth.items()}
