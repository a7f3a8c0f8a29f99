"""Recall of the privacy blur's detector on real driving images, against hand judgements.

Neither KITTI nor nuScenes annotates faces or licence plates, so bench/privacy_truth.json holds
hand judgements of the faces and plates that can be made out in the real sample images
(../shared/data/real: 7 KITTI frames, one nuScenes sample of 6 cameras), tied to the datasets'
own person and vehicle boxes ("about" in that file gives the method). A face counts as found
when a face region's centre lies in the top 35% of its person's box; a plate when a plate
region's centre lies in its vehicle's box. Regions whose centre lies in no person's top 35% and
no vehicle's box are counted as blurred elsewhere (false alarms, or faces and plates nobody
annotated: the datasets leave far people and parked cars unboxed).

The sample is tiny (5 clear faces, 6 clear plates): read the counts, not the percentages.

Example:
    python bench/privacy.py --settings 1:3,1:1,2:3 --record
    python bench/privacy.py --quick    # the default setting on one KITTI image, printed: checks it still runs
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2

from longtail.boxes import from_coco, from_kitti
from longtail.privacy import PrivacyConfig, blur_frame, make_detector, read_image

HERE = Path(__file__).resolve().parent
PERSONS = {"pedestrian", "person_sitting", "cyclist", "bicycle", "motorcycle"}
VEHICLES = {"car", "van", "truck", "tram", "bus", "trailer", "construction_vehicle"}


def load_boxes(data: Path) -> dict[str, list[tuple[str, tuple[float, float, float, float]]]]:
    """Every image's person and vehicle boxes from the datasets' own annotations (internal convention)."""
    out: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
    for label in sorted((data / "kitti/training/label_2").glob("*.txt")):
        image = f"kitti/training/image_2/{label.stem}.png"
        out[image] = []
        for line in label.read_text().splitlines():
            parts = line.split()
            cls = parts[0].lower()
            if cls in PERSONS | VEHICLES:
                out[image].append(("person" if cls in PERSONS else "vehicle",
                                   from_kitti(*map(float, parts[4:8]))))
    coco = json.loads((data / "nuscenes_sample/annotations_2d.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {i["id"]: f"nuscenes_sample/{i['file_name']}" for i in coco["images"]}
    for image in files.values():
        out.setdefault(image, [])
    for a in coco["annotations"]:
        cls = names[a["category_id"]]
        if cls in PERSONS | VEHICLES:
            out[files[a["image_id"]]].append(("person" if cls in PERSONS else "vehicle", from_coco(a["bbox"])))
    return out


def _inside(cx: float, cy: float, kind: str, box: tuple[float, float, float, float]) -> bool:
    x1, y1, x2, y2 = box
    if kind == "face":  # the head: top 35% of the person's box
        y2 = y1 + 0.35 * (y2 - y1)
    return x1 <= cx < x2 and y1 <= cy < y2


def run(data: Path, config: PrivacyConfig, truth: list[dict[str, Any]],
        boxes: dict[str, list[tuple[str, tuple[float, float, float, float]]]]) -> dict[str, Any]:
    """Detect on every image; count the judged faces and plates found and the regions blurred elsewhere."""
    detector = make_detector(config)
    found: dict[int, bool] = {}
    elsewhere = {"face": 0, "plate": 0}
    seconds = megapixels = 0.0
    for image in sorted(boxes):
        frame = read_image(data / image)
        start = time.perf_counter()
        _, raw = blur_frame(frame, detector, margin=0.0)  # centres of the detector's own boxes
        seconds += time.perf_counter() - start
        megapixels += frame.shape[0] * frame.shape[1] / 1e6
        for r in raw:
            cx, cy = (r.x1 + r.x2) / 2, (r.y1 + r.y2) / 2
            own = "person" if r.kind == "face" else "vehicle"
            if not any(k == own and _inside(cx, cy, r.kind, b) for k, b in boxes[image]):
                elsewhere[r.kind] += 1
            for i, t in enumerate(truth):
                if t["image"] == image and t["kind"] == r.kind and _inside(cx, cy, r.kind, tuple(t["box"])):
                    found[i] = True
    rows = {}
    for kind in ("face", "plate"):
        for judged in ("clear", "uncertain"):
            idx = [i for i, t in enumerate(truth) if t["kind"] == kind and t["judged"] == judged]
            rows[f"{kind}_{judged}"] = (sum(found.get(i, False) for i in idx), len(idx))
    return {"detector": detector.id, "rows": rows, "elsewhere": elsewhere, "images": len(boxes),
            "s_per_mp": seconds / megapixels, "found": sorted(found)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared/data/real"),
                        help="the real sample images (../shared/data/real)")
    parser.add_argument("--settings", default="1:3,1:1,2:3",
                        help="comma-separated UPSCALE:MIN_NEIGHBORS pairs of PrivacyConfig to compare (the first is "
                             "the default config)")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    parser.add_argument("--images", type=int, default=0,
                        help="only the first N images in name order, and their judgements (0: every image)")
    parser.add_argument("--record", action="store_true", help="append the section to bench/RESULTS.md")
    sys.path.insert(0, str(HERE))
    from _results import parse_args

    args = parse_args(parser, {"settings": "1:3", "images": 1, "record": False}, argv)
    cv2.setNumThreads(args.threads)
    data = Path(args.data)
    truth = json.loads((HERE / "privacy_truth.json").read_text())["objects"]
    boxes = load_boxes(data)
    if args.images:
        boxes = dict(sorted(boxes.items())[:args.images])
        truth = [t for t in truth if t["image"] in boxes]
    settings = [tuple(item.split(":")) for item in args.settings.split(",")]
    results = [((float(u), int(n)), run(data, PrivacyConfig(upscale=float(u), min_neighbors=int(n)), truth, boxes))
               for u, n in settings]

    def frac(pair: tuple[int, int]) -> str:
        return f"{pair[0]} of {pair[1]}"

    lines = [
        f"## Privacy blur: detector recall on real images, {dt.date.today()} ({platform.machine()}, "
        f"Python {platform.python_version()}, OpenCV {cv2.__version__}, {args.threads} thread)",
        "",
        f"Command: `python bench/privacy.py --settings {args.settings}{f' --images {args.images}' if args.images else ''}"
        f"{' --record' if args.record else ''}` ({results[0][1]['images']} real images of ../shared/data/real"
        f"{'' if args.images else ': 7 KITTI 1242x375, 6 nuScenes 1600x900'}; "
        "hand judgements in bench/privacy_truth.json; defaults of `longtail.privacy.PrivacyConfig` otherwise)",
        "",
        "| upscale | min neighbors | detector | faces found (clear) | faces (uncertain) | plates found (clear) "
        "| plates (uncertain) | regions blurred elsewhere (face / plate) | s per megapixel |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (u, n), r in results:
        rows = r["rows"]
        lines.append(f"| {u:g} | {n} | `{r['detector']}` | {frac(rows['face_clear'])} | {frac(rows['face_uncertain'])} | "
                     f"{frac(rows['plate_clear'])} | {frac(rows['plate_uncertain'])} | "
                     f"{r['elsewhere']['face']} / {r['elsewhere']['plate']} | {r['s_per_mp']:.2f} |")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.record:
        from _results import append_section

        append_section(HERE / "RESULTS.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
