"""The links of a lineage chain, and the checks of the records below the model: each check reads one
stage's declared product and recomputes its digests.

A `Link` is one record in the chain. Its ``status`` is:

- ``ok``: the record is there and every digest recomputed from the data matches the recorded one;
- ``broken``: a record is missing or unreadable, or a recomputed digest differs from the recorded one
  (the data changed after it was recorded): the chain cannot be trusted from here on;
- ``absent``: the record is there but the data it names is not (a drive log moved off the machine
  after ingest), so its digest could not be recomputed. Not an error, but not proof either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from longtail.catalog.frames import load_manifest, manifest_path
from longtail.catalog.root import DataRoot
from longtail.storage import sha256_file

Status = Literal["ok", "broken", "absent"]
STATUSES: tuple[Status, ...] = ("ok", "broken", "absent")

KINDS = ("deployment", "file", "model_version", "parent_model", "training_run", "code_commit", "environment",
         "dataset_version", "dvc_record", "label_set", "label_qa", "selection", "failure_mode", "drive_log")
"""Kinds of link, in the order the chain runs from the deployment down to the raw drive logs."""


@dataclass(frozen=True)
class Link:
    """One record in a lineage chain.

    Attributes:
        kind: one of `KINDS`.
        id: the record's id (deployment id, ``<name>/<version>``, run id, version id, batch id, log id, file path).
        path: where the record lives (a file under the data root, or an MLflow URI).
        recorded: the digest the record above (or the record itself) holds (sha256 hex, DVC md5), or None.
        found: the digest recomputed from the data now, or None when the data is absent or nothing is recomputed.
        status: ``ok``, ``broken`` or ``absent`` (module docstring).
        message: what was checked, and for a broken or absent link what it means and how to fix it.
        parent: ``<kind>:<id>`` of the link above this one, or None for the top.
        detail: facts a reviewer reads beside the digest (code commit, config, QA counts...).
    """

    kind: str
    id: str
    path: str
    recorded: str | None
    found: str | None
    status: Status
    message: str
    parent: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``<kind>:<id>``, how child links name this one."""
        return f"{self.kind}:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        """The link as plain JSON-ready data."""
        out = asdict(self)
        out["detail"] = dict(self.detail)
        return out


def digest_status(recorded: str | None, found: str | None) -> Status:
    """``ok`` when both digests are there and equal, ``absent`` when the data is missing, else ``broken``."""
    if found is None:
        return "absent"
    return "ok" if recorded == found else "broken"


def files_digest(files: Mapping[str, str]) -> str:
    """One sha256 over a folder's file -> digest map (``<digest>  <name>`` lines, sorted by name)."""
    return hashlib.sha256("".join(f"{files[k]}  {k}\n" for k in sorted(files)).encode()).hexdigest()


def read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """A JSON object and "" or None and why it could not be read."""
    if not path.is_file():
        return None, f"{path}: missing"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path}: unreadable JSON ({exc})"
    if not isinstance(data, dict):
        return None, f"{path}: not a JSON object"
    return data, ""


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Dataset version: manifest, every file, and DVC's record


def dvc_md5_path(root: DataRoot, dvc_md5: str) -> str:
    """Where DVC 3 keeps an object of that md5 in the data root's cache."""
    name = dvc_md5.removesuffix(".dir")
    return str(root / ".dvc" / "cache" / "files" / "md5" / name[:2] / (name[2:] + (".dir" if dvc_md5.endswith(".dir") else "")))


def _dvc_listing(root: DataRoot, dvc_md5: str) -> tuple[list[dict[str, Any]], str] | None:
    """DVC's listing of a tracked folder (``[{"md5", "relpath"}, ...]``) from its cache and the md5 of
    the listing itself (DVC names it by that md5, with ``.dir``), or None when the cache lacks it."""
    name = dvc_md5.removesuffix(".dir")
    for cache in (root / ".dvc" / "cache" / "files" / "md5", root / ".dvc" / "cache"):  # DVC 3, then DVC 2 layout
        path = cache / name[:2] / f"{name[2:]}.dir"
        if path.is_file():
            try:
                listing = json.loads(path.read_text())
            except ValueError:
                listing = []
            return (listing if isinstance(listing, list) else []), _md5_file(path) + ".dir"
    return None


def check_dataset_version(root: DataRoot, version_id: str, parent: str | None, progress: bool = False
                          ) -> tuple[list[Link], dict[str, Any] | None]:
    """The dataset version's link, one link per damaged file, and its DVC record's link.

    1. manifest.json must be there; labels.parquet's sha256 must equal the manifest's ``digest``.
    2. Every image's sha256 must equal its name (images/<sha256>.<ext>, content-addressed).
    3. The DVC record (DATA/datasets/<version_id>.dvc) names the folder's md5; DVC's listing of it in the
       cache gives every file's md5, recomputed here; a file DVC lists that is gone, or one DVC does not
       list, is reported too.

    Returns:
        (links, the manifest or None when it is unreadable).
    """
    folder = root.dataset_version(version_id)
    manifest_file = folder / "manifest.json"
    manifest, why = read_json(manifest_file)
    if manifest is None:
        return [Link("dataset_version", version_id, str(manifest_file), None, None, "broken",
                     f"{why}: the dataset version the model was trained on is not in this data root. Restore it "
                     f"from DVC (`restore_version`) or point --root at the data root that trained it.", parent)], None
    links: list[Link] = []
    key = f"dataset_version:{version_id}"
    labels = folder / str(manifest.get("labels_file", "labels.parquet"))
    found = sha256_file(labels) if labels.is_file() else None
    recorded = manifest.get("digest")
    bad: list[str] = []
    if found != recorded:
        bad.append(str(labels))
        links.append(Link("file", str(labels), str(labels), recorded, found, "broken",
                          f"{labels}: sha256 {found or 'missing'} differs from field digest={recorded} of "
                          f"{manifest_file}: the labels changed after the version was built. Restore the version "
                          f"from DVC (`restore_version`); a model trained on it cannot be traced to these labels.", key))
    images = sorted((folder / str(manifest.get("images_dir", "images"))).glob("*"))
    for image in tqdm(images, desc=f"hashing {version_id}", unit="file", disable=not progress):
        actual = sha256_file(image)
        if actual != image.stem:
            bad.append(str(image))
            links.append(Link("file", str(image), str(image), image.stem, actual, "broken",
                              f"{image}: sha256 {actual} differs from {image.stem}, the digest its name records: the "
                              f"image was modified in place. Restore the version from DVC (`restore_version`).", key))
    status: Status = "broken" if bad else "ok"
    message = (f"{len(images)} image(s) and {labels.name} checked against the manifest"
               + (f"; {len(bad)} damaged: {', '.join(bad[:5])}" if bad else ""))
    detail = {k: manifest.get(k) for k in ("created_at", "frames", "counts", "batches", "parent", "long_tail_rule")}
    links.insert(0, Link("dataset_version", version_id, str(manifest_file), recorded, found, status, message, parent,
                         detail))
    links.extend(_check_dvc(root, folder, version_id, key))
    return links, manifest


def _check_dvc(root: DataRoot, folder: Path, version_id: str, parent: str) -> list[Link]:
    dvc_file = root.datasets / f"{version_id}.dvc"
    if not dvc_file.is_file():
        return [Link("dvc_record", dvc_file.name, str(dvc_file), None, None, "absent",
                     f"{dvc_file}: missing; the version is not tracked by DVC, so it cannot be restored from a remote. "
                     f"Track it with track_version (the label stage does this).", parent)]
    import yaml

    try:
        outs = yaml.safe_load(dvc_file.read_text())["outs"][0]
        md5 = str(outs["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        return [Link("dvc_record", dvc_file.name, str(dvc_file), None, None, "broken",
                     f"{dvc_file}: not a DVC record of one folder ({exc}); track the version again (track_version).",
                     parent)]
    cached = _dvc_listing(root, md5)
    if cached is None:
        return [Link("dvc_record", dvc_file.name, str(dvc_file), md5, None, "absent",
                     f"{dvc_file}: records md5 {md5}, but DVC's cache in {root / '.dvc' / 'cache'} lacks that listing, "
                     f"so the files were not checked against DVC (`dvc fetch` from the remote restores it).", parent)]
    listing, listing_md5 = cached
    links: list[Link] = []
    listed = {str(e.get("relpath")): str(e.get("md5")) for e in listing}
    key = f"dvc_record:{dvc_file.name}"
    if listing_md5 != md5:
        links.append(Link("file", dvc_md5_path(root, md5), dvc_md5_path(root, md5), md5, listing_md5, "broken",
                          f"{dvc_md5_path(root, md5)}: md5 {listing_md5} differs from {md5}, its name: DVC's listing of "
                          f"the version was modified in the cache. Fetch it again from the remote (`dvc fetch`).", key))
    for rel, expected in sorted(listed.items()):
        path = folder / rel
        actual = _md5_file(path) if path.is_file() else None
        if actual != expected:
            links.append(Link("file", str(path), str(path), expected, actual, "broken",
                              f"{path}: md5 {actual or 'missing'} differs from {expected}, the md5 DVC recorded for it in "
                              f"{dvc_file}: the file changed after the version was tracked. Restore it with "
                              f"`restore_version` (dvc checkout).", key))
    extra = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
                   and str(p.relative_to(folder)) not in listed)
    for rel in extra:
        links.append(Link("file", str(folder / rel), str(folder / rel), None, None, "broken",
                          f"{folder / rel}: not in DVC's record {dvc_file}: a file was added to the version after it "
                          f"was tracked. Delete it or restore the version (`restore_version`).", key))
    found = listing_md5
    status: Status = "ok" if not links else "broken"
    message = (f"{len(listed)} file(s) match the md5s DVC recorded" if not links else
               f"{len(links)} file(s) differ from DVC's record: {', '.join(link.id for link in links[:5])}")
    return [Link("dvc_record", dvc_file.name, str(dvc_file), md5, found, status, message, parent,
                 {"files": len(listed)}), *links]


# ---------------------------------------------------------------------------------------------
# Label sets, QA, selection manifests, failure modes, drive logs


def check_label_set(root: DataRoot, entry: Mapping[str, Any], parent: str) -> list[Link]:
    """A label set the version was built from (its manifest entry), and its QA results."""
    batch_id = str(entry.get("batch_id"))
    folder = root.label_set(batch_id)
    manifest, why = read_json(folder / "manifest.json")
    recorded = entry.get("digest")
    if manifest is None:
        return [Link("label_set", batch_id, str(folder / "manifest.json"), recorded, None, "broken",
                     f"{why}: the label set the dataset version records is gone. Restore DATA/labels/{batch_id}/ "
                     f"from a backup; the version itself still holds the accepted labels.", parent)]
    labels = folder / "labels.parquet"
    found = sha256_file(labels) if labels.is_file() else None
    problems = []
    if found != recorded:
        problems.append(f"{labels}: sha256 {found or 'missing'} differs from {recorded}, the digest the dataset "
                        f"version recorded for this label set")
    if manifest.get("digest") != recorded:
        problems.append(f"{folder / 'manifest.json'}: field digest={manifest.get('digest')} differs from the dataset "
                        f"version's {recorded}: the label set was rewritten after the version was built")
    status: Status = "broken" if problems else "ok"
    message = "; ".join(problems) + ". Relabeling rewrote it: the version's labels stay as built" if problems else \
        f"labels.parquet matches; {manifest.get('accepted')} of {manifest.get('frames')} frame(s) accepted by QA"
    detail = {k: manifest.get(k) for k in ("created_at", "source", "frames", "accepted", "held", "cost")}
    detail["prelabel_model"] = (manifest.get("lineage") or {}).get("prelabel_model")
    links = [Link("label_set", batch_id, str(folder / "manifest.json"), recorded, found, status, message, parent, detail)]
    qa_file = folder / "qa.json"
    qa, why = read_json(qa_file)
    summary = manifest.get("qa") or {}
    if qa is None:
        links.append(Link("label_qa", batch_id, str(qa_file), None, None, "absent",
                          f"{why}: the QA report of label set {batch_id} is not here; its manifest's summary is "
                          f"{summary or 'empty'}", f"label_set:{batch_id}", dict(summary)))
        return links
    same = all(qa.get(k) == summary.get(k) for k in ("frames", "accepted", "held")) if summary else True
    links.append(Link("label_qa", batch_id, str(qa_file), None, sha256_file(qa_file), "ok" if same else "broken",
                      f"{qa.get('accepted')} accepted, {qa.get('held')} held of {qa.get('frames')} frame(s)" if same else
                      f"{qa_file}: counts {[qa.get(k) for k in ('frames', 'accepted', 'held')]} differ from the label "
                      f"set manifest's {[summary.get(k) for k in ('frames', 'accepted', 'held')]}: the QA report was "
                      f"rewritten; rerun label QA for batch {batch_id}.",
                      f"label_set:{batch_id}", {k: qa.get(k) for k in ("frames", "accepted", "held", "checks")}))
    return links


def selection_digest(manifest: Mapping[str, Any]) -> str | None:
    """The labeling batch's content address recomputed from its manifest: sha256 over its frames, its
    selection config (``slices`` left out at its default ``["front"]``) and its pool digest, as the
    curate stage computes it. None when a field is missing."""
    config = manifest.get("config")
    pool = manifest.get("pool") or {}
    if not isinstance(config, dict) or "frames" not in manifest or "digest" not in pool:
        return None
    record = {k: v for k, v in config.items() if not (k == "slices" and v == ["front"])}
    blob = json.dumps({"frames": manifest["frames"], "config": record, "pool": pool["digest"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_selection(root: DataRoot, batch_id: str, recorded: str | None, parent: str
                    ) -> tuple[list[Link], dict[str, Any] | None]:
    """A labeling batch's selection manifest (DATA/batches/<batch_id>/manifest.json) and its frames file."""
    folder = root.batch(batch_id)
    manifest, why = read_json(folder / "manifest.json")
    if manifest is None:
        return [Link("selection", batch_id, str(folder / "manifest.json"), recorded, None, "broken",
                     f"{why}: the selection manifest of batch {batch_id} is gone, so why its frames were chosen "
                     f"cannot be shown. Restore DATA/batches/{batch_id}/ from a backup.", parent)], None
    found = selection_digest(manifest)
    problems = []
    if found is None:
        problems.append(f"{folder / 'manifest.json'}: lacks frames, config or pool.digest to recompute its digest")
    elif found != recorded:
        problems.append(f"{folder / 'manifest.json'}: digest recomputed from its frames, config and pool is {found}, "
                        f"the dataset version recorded {recorded}: the selection was changed after labeling")
    frames_file = folder / str(manifest.get("frames_file", "frames.parquet"))
    if frames_file.is_file():
        import pyarrow.parquet as pq

        ids = pq.read_table(frames_file, columns=["frame_id"]).column("frame_id").to_pylist()
        if ids != list(manifest.get("frames") or []):
            problems.append(f"{frames_file}: frame ids differ from field frames of {folder / 'manifest.json'}")
    else:
        problems.append(f"{frames_file}: missing")
    status: Status = "broken" if problems else "ok"
    message = "; ".join(problems) + ". Restore the batch folder; the dataset version itself is unaffected" \
        if problems else f"{len(manifest.get('frames') or [])} frame(s) selected by {manifest.get('selector')} " \
                         f"under a budget of {manifest.get('budget')}"
    detail = {k: manifest.get(k) for k in ("created_at", "selector", "budget", "failure_modes", "config_digest")}
    return [Link("selection", batch_id, str(folder / "manifest.json"), recorded, found, status, message, parent,
                 detail)], manifest


def check_failure_modes(names: Iterable[str], registry: Mapping[str, Mapping[str, Any]] | None, registry_file: Path,
                        parent: str) -> list[Link]:
    """The failure modes a batch mined, each looked up in the registry (DATA/curate/failure_modes.json)."""
    links = []
    for name in names:
        mode = (registry or {}).get(name)
        if mode is None:
            links.append(Link("failure_mode", name, str(registry_file), None, None, "broken",
                              f"{registry_file}: no failure mode {name!r}, which the batch says it mined; the registry "
                              f"was replaced or the entry deleted. Restore the registry file.", parent))
            continue
        detail = {k: mode.get(k) for k in ("title", "status", "discovered_at", "discovered_by", "fixed_by", "fixed_at")}
        links.append(Link("failure_mode", name, str(registry_file), None, None, "ok",
                          f"{mode.get('title', name)}: {mode.get('status')}, discovered "
                          f"{mode.get('discovered_at') or 'not yet'} by {mode.get('discovered_by') or '-'}",
                          parent, detail))
    return links


def check_drive_log(root: DataRoot, log_id: str, parent: str, progress: bool = False) -> Link:
    """An ingested drive log: its manifest (DATA/index/logs/<log_id>.json, the log id being the MCAP's
    sha256) and, when the MCAP is still at the path ingest read it from, its sha256 recomputed."""
    path = manifest_path(root, log_id)
    try:
        manifest = load_manifest(root, log_id)
    except ValueError as exc:
        manifest, why = None, str(exc)
    else:
        why = f"{path}: missing"
    if manifest is None:
        return Link("drive_log", log_id, str(path), log_id, None, "broken",
                    f"{why}: drive log {log_id} is named by the records above but was never ingested here (or its "
                    f"manifest was deleted). Ingest the log again (`longtail ingest`).", parent)
    recorded = str(manifest.get("log_id", log_id))
    source = Path(str(manifest.get("path", "")))
    detail = {k: manifest.get(k) for k in ("path", "bytes", "status", "frames_kept", "duration_s")}
    detail["drive_id"] = (manifest.get("drive") or {}).get("drive_id")
    if not source.is_file():
        return Link("drive_log", log_id, str(source), recorded, None, "absent",
                    f"{source}: the MCAP is no longer where it was ingested from, so its sha256 was not recomputed; the "
                    f"frames it gave are in the frame store. Put the file back to check it.", parent, detail)
    found = sha256_file(source) if not progress else _sha256_progress(source)
    status = digest_status(recorded, found)
    message = "sha256 of the MCAP matches its ingest manifest" if status == "ok" else \
        f"{source}: sha256 {found} differs from {recorded}, the log id ingest recorded: the file at that path is " \
        f"not the drive log that was ingested (replaced or modified). Find the original log."
    return Link("drive_log", log_id, str(source), recorded, found, status, message, parent, detail)


def _sha256_progress(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, leave=False,
                                          desc=f"hashing {path.name}") as bar:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()
