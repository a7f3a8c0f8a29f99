"""``longtail label``: Label Studio, labeling batches, label QA and dataset versions."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

log = logging.getLogger("longtail")


# ------------------------------------------------------------------------------------ label
def _add_label(sub: Any) -> None:
    p = sub.add_parser(
        "label",
        help="label a batch in Label Studio (serve, push, pull), check it, version the dataset",
        description=(
            "Human labeling of a labeling batch in a real Label Studio. 'serve' starts the data root's own Label "
            "Studio (its own environment, sqlite and uploads in DATA/labelstudio, an account and API token the "
            "project keeps in DATA/labelstudio/credentials.json); 'push BATCH' creates a project with the batch's "
            "frames and pre-labels through FiftyOne's labelstudio backend; people correct the boxes in the browser; "
            "'pull BATCH' brings the finished tasks back, runs label QA and writes DATA/labels/BATCH/ (labels, QA "
            "report, manifest last). 'pull --oracle' first plays the human on simulated drives from the simulator's "
            "ground truth, through the same REST calls a person's Submit makes, and counts their work. "
            "'version' turns accepted labels into an immutable dataset version tracked with DVC."
        ),
        epilog=("Example: longtail label serve --root data; longtail label push batch-0123abcd --root data; "
                "longtail label pull batch-0123abcd --root data --oracle"),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--root", required=True, help="the data root")

    q = actions.add_parser("serve", help="start the data root's Label Studio (in the background) and print its URL",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common(q)
    q.add_argument("--port", type=int, help="port (default: a free one)")
    q.set_defaults(func=cmd_label)
    for name, text in (("stop", "stop the data root's Label Studio"), ("status", "print its URL or 'not running'")):
        q = actions.add_parser(name, help=text)
        common(q)
        q.set_defaults(func=cmd_label)
    q = actions.add_parser("push", help="create a Label Studio project with a batch and its pre-labels")
    q.add_argument("batch", help="batch id (DATA/batches/<batch id>)")
    common(q)
    q.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    q.add_argument("--force", action="store_true", help="push again even when the batch was pushed")
    q.add_argument("--model", help="MLflow model URI for pre-labels (default: the registry's champion, else the "
                                   "newest trained model, else none)")
    q.add_argument("--no-prelabels", action="store_true", help="push without pre-labels")
    q.add_argument("--prelabel-threshold", type=float, default=0.3, help="lowest score shown as a pre-label")
    q.add_argument("--no-blur", action="store_true",
                   help="show people the original frames: faces and licence plates are NOT blurred (default: blurred "
                        "copies, see DATA/labels/BATCH/privacy.json); the push record says so")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser("pull", help="bring a batch's finished annotations back, run QA, write its label set")
    q.add_argument("batch", help="batch id")
    common(q)
    q.add_argument("--dataset", default="longtail", help="FiftyOne dataset name")
    q.add_argument("--oracle", action="store_true",
                   help="simulated drives only: label the unfinished tasks from the simulator's ground truth first")
    q.add_argument("--partial", action="store_true", help="take the finished tasks even when others are not")
    q.add_argument("--json", action="store_true", help="print the label set manifest as JSON")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser(
        "version", help="make an immutable dataset version of the accepted labels and track it with DVC",
        description=("Accepted labels of every pulled batch (or those named) become DATA/datasets/<version id>/: "
                     "labels with a split per drive log (train / val / test; test logs are never trained on, and "
                     "split into the long-tail and common-case suites), the images, and a manifest of the batches "
                     "and drive logs it came from. The id is content-addressed: the same labels give the same "
                     "version. It is tracked with DVC in DATA and pushed to the remote (default: DATA.dvc-remote "
                     "beside the data root, or $LONGTAIL_DVC_REMOTE)."))
    common(q)
    q.add_argument("--batch", action="append", help="only these batches (repeat); default: all pulled batches")
    q.add_argument("--remote", help="DVC remote (a folder or s3:// URL)")
    q.add_argument("--json", action="store_true", help="print the version manifest as JSON")
    q.set_defaults(func=cmd_label)
    q = actions.add_parser("restore", help="recreate a dataset version from its DVC record on a fresh checkout",
                           description="In a folder holding DATA's .dvc/ and datasets/<version>.dvc (e.g. a fresh "
                                       "checkout of the data root's metadata), pull the version from the remote and "
                                       "check every file against its record.")
    q.add_argument("version", help="version id (v-...)")
    common(q)
    q.add_argument("--remote", help="DVC remote (default: the one in .dvc/config)")
    q.set_defaults(func=cmd_label)


def cmd_label(args: argparse.Namespace) -> int:
    """Run ``longtail label ACTION``."""
    from longtail.label import server

    if args.action == "serve":
        conn = server.start(args.root, port=args.port)
        sys.stdout.write(f"{conn.url}\n(log in with the account in {server.studio_dir(args.root)}/credentials.json; "
                         f"stop with `longtail label stop --root {args.root}`)\n")
    elif args.action == "stop":
        sys.stdout.write("stopped\n" if server.stop(args.root) else "not running\n")
    elif args.action == "status":
        found = server.running(args.root)
        sys.stdout.write(f"{found.url if found else 'not running'}\n")
    elif args.action == "push":
        from longtail.label.blur import shown_to_people
        from longtail.label.prelabel import current_model, prelabel_batch
        from longtail.label.studio import push_batch
        from longtail.privacy import PrivacyConfig

        prelabels, model = None, None
        model_uri = None if args.no_prelabels else (args.model or current_model(args.root))
        if model_uri is not None:
            prelabels, model = prelabel_batch(args.root, args.batch, model_uri, threshold=args.prelabel_threshold)
        record = push_batch(args.root, args.batch, prelabels=prelabels, model=model, dataset_name=args.dataset,
                            force=args.force, privacy=PrivacyConfig(blur=not args.no_blur))
        url = f"{server.connect(args.root).url}/projects/{record['project_id']}"  # the port changes on restart
        sys.stdout.write(f"{args.batch}: {len(record['tasks'])} task(s), {record['prelabels']} pre-label(s) -> "
                         f"{url}\nframes people see: {shown_to_people(record.get('privacy'))}\n")
    elif args.action == "pull":
        from longtail.label.studio import batch_truth, oracle_annotate, pull_batch, push_record

        cost = None
        if args.oracle:
            from tqdm import tqdm

            truth = batch_truth(args.root, args.batch)
            with tqdm(total=len(truth), unit="task", desc="simulated labeler", disable=not sys.stderr.isatty()) as bar:
                cost = oracle_annotate(args.root, args.batch, truth, progress=bar.update)
            if cost.frames != len(push_record(args.root, args.batch)["tasks"]):
                cost = None  # some tasks were done before: count the work from the submitted boxes
        manifest = pull_batch(args.root, args.batch, partial=args.partial, source="oracle" if args.oracle else
                              "labelstudio", cost=cost, dataset_name=args.dataset)
        if args.json:
            json.dump(manifest, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            c = manifest["cost"]
            sys.stdout.write(
                f"{args.batch}: {manifest['frames']} frame(s) labeled, {manifest['accepted']} accepted, "
                f"{manifest['held']} held by QA (see {args.root}/labels/{args.batch}/qa.json)\n"
                f"labeling work: {c['added']} drawn, {c['moved']} moved, {c['relabeled']} relabeled, "
                f"{c['deleted']} deleted, {c['accepted']} accepted as pre-labeled (~{c['seconds'] / 60:.1f} min)\n")
    elif args.action == "version":
        from longtail.label.version import build_version, track_version

        manifest = build_version(args.root, batch_ids=args.batch)
        tracked = track_version(args.root, manifest["version_id"], remote=args.remote)
        if args.json:
            json.dump({**manifest, "dvc": tracked}, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
            sys.stdout.write(f"{manifest['version_id']}: {counts} -> {args.root}/datasets/{manifest['version_id']}/ "
                             f"(DVC record {tracked['dvc_file']}, remote {tracked['remote']})\n")
    elif args.action == "restore":
        from longtail.label.version import restore_version

        manifest = restore_version(args.root, args.version, remote=args.remote)
        sys.stdout.write(f"{args.version}: restored in {args.root}/datasets/{args.version}/\n")
    return 0


