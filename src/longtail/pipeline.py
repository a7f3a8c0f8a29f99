"""Run pipeline.yaml on a target (env/<target>.yaml): the same DAG locally, in CI and in the cloud.

Ploomber only reads env files that sit beside pipeline.yaml; Longtail keeps its targets in
env/ and hands the chosen one to Ploomber's DAGSpec as a dict.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from longtail.errors import ConfigError

log = logging.getLogger(__name__)

TARGETS = ("local", "ci")


def project_root() -> Path:
    """The repository root (where pipeline.yaml is)."""
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        if (parent / "pipeline.yaml").exists() and (parent / "env").is_dir():
            return parent
    raise ConfigError("pipeline.yaml not found in the current folder or above the longtail package; "
                      "run from a Longtail checkout")


def load_env(target: str, root: Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load env/<target>.yaml, resolve ``root`` (and an ``ingest.signal_map`` file) against the repository,
    apply ``overrides`` (top-level keys, or dotted names of nested values such as ``curate.budget``).

    Raises:
        ConfigError: for an unknown target or a malformed file.
    """
    base = root or project_root()
    path = base / "env" / f"{target}.yaml"
    if not path.exists():
        valid = sorted(p.stem for p in (base / "env").glob("*.yaml"))
        raise ConfigError(f"--target {target!r}: no {path}; valid targets are {valid}")
    try:
        env = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(env, dict) or "root" not in env:
        raise ConfigError(f"{path}: must be a mapping with at least 'root' (the data folder)")
    for key, value in (overrides or {}).items():
        *parents, leaf = key.split(".")
        node = env
        for i, part in enumerate(parents):
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {key}={value!r}: {path} has no section {'.'.join(parents[:i + 1])!r}; "
                                  f"its sections are {sorted(k for k, v in env.items() if isinstance(v, dict))}")
            node = node[part]
        if parents and leaf not in node:
            raise ConfigError(f"override {key}={value!r}: {path} has no value {key!r}; "
                              f"{'.'.join(parents)} holds {sorted(node)}")
        node[leaf] = value
    data_root = Path(os.path.expanduser(str(env["root"])))
    env["root"] = str(data_root if data_root.is_absolute() else base / data_root)
    ingest = env.get("ingest")
    if isinstance(ingest, dict) and isinstance(ingest.get("signal_map"), str):  # a signal map file, like root
        map_file = Path(os.path.expanduser(ingest["signal_map"]))
        ingest["signal_map"] = str(map_file if map_file.is_absolute() else base / map_file)
    return env


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """``["curate.budget=3500", ...]`` -> ``{"curate.budget": 3500}`` (values read as YAML: numbers, booleans).

    Raises:
        ConfigError: a setting without ``=``.
    """
    out: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE with the env file's dotted name, e.g. curate.budget=3500")
        out[key.strip()] = yaml.safe_load(value)
    return out


def make_dag(target: str = "local", overrides: dict[str, Any] | None = None, in_process: bool = False) -> Any:
    """Build the Ploomber DAG of pipeline.yaml for ``target``.

    Args:
        target: name of an env file in env/.
        overrides: top-level env values to replace (e.g. ``{"root": "/tmp/x"}``).
        in_process: run tasks in this process (tests: a failure stops inside the failing task).
    """
    from ploomber.executors import Serial
    from ploomber.spec import DAGSpec

    root = project_root()
    env = load_env(target, root, overrides)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        dag = DAGSpec("pipeline.yaml", env=env).to_dag()
    finally:
        os.chdir(cwd)
    if in_process:
        dag.executor = Serial(build_in_subprocess=False)
    return dag


def run(target: str = "local", force: bool = False, overrides: dict[str, Any] | None = None,
        in_process: bool = False) -> dict[str, Any]:
    """Build the pipeline for ``target``; return the env it ran with, plus ``"_tasks"``: each task's
    name, whether it ran and its wall seconds (`task_times`).

    Ploomber's incremental build reruns a task only when its notebook, its parameters or an upstream
    product changed; a rerun with nothing changed rebuilds nothing and says so.
    """
    env = load_env(target, overrides=overrides)
    dag = make_dag(target, overrides, in_process=in_process)
    log.info("running pipeline.yaml on target %s (data in %s)", target, env["root"])
    report = dag.build(force=force, show_progress=True)
    tasks = task_times(report)
    ran = [t["task"] for t in tasks if t["ran"]]
    if not ran:
        log.info("nothing changed since the last run: all %d tasks are up to date, none rebuilt", len(tasks))
    else:
        log.info("rebuilt %d of %d tasks (%s); up to date: %s", len(ran), len(tasks), ", ".join(ran),
                 ", ".join(t["task"] for t in tasks if not t["ran"]) or "none")
    return {**env, "_tasks": tasks}


def task_times(report: Any) -> list[dict[str, Any]]:
    """Ploomber's build report as ``[{"task", "ran", "seconds"}, ...]`` in build order."""
    values = report.to_dict() if report is not None else {}
    names, ran, seconds = values.get("name", []), values.get("Ran?", []), values.get("Elapsed (s)", [])
    return [{"task": str(n), "ran": bool(r), "seconds": float(e or 0.0)} for n, r, e in zip(names, ran, seconds, strict=True)]


def upstream_product(upstream: Any, key: str) -> str:
    """The product ``key`` of the one upstream task that declares it.

    A notebook serves both turns of the loop (``ingest`` after ``simulate``, ``ingest-2`` after
    ``simulate-2``), so it finds its input by the product's name, not by the upstream task's name.

    Raises:
        ConfigError: no upstream task, or more than one, declares ``key``.
    """
    found = {name: products[key] for name, products in dict(upstream or {}).items()
             if _has(products, key)}
    if len(found) != 1:
        names = sorted(dict(upstream or {}))
        raise ConfigError(f"pipeline.yaml: the task needs exactly one upstream task with a {key!r} product; "
                          f"its upstream tasks {names} have {len(found)} ({sorted(found)}). Fix the task's `upstream:`")
    return str(next(iter(found.values())))


def _has(products: Any, key: str) -> bool:
    try:
        products[key]
    except (KeyError, TypeError):
        return False
    return True


def outdated_tasks(target: str = "local", overrides: dict[str, Any] | None = None) -> list[str]:
    """The tasks a build would run now, in build order, without running any (``longtail run --dry-run``):
    a task is outdated when its notebook, its parameters or an upstream product changed since it last
    ran, or its product is missing, and then every task downstream of it is too."""
    from ploomber.constants import TaskStatus

    dag = make_dag(target, overrides)
    dag.render(show_progress=False)
    return [name for name in dag if dag[name].exec_status != TaskStatus.Skipped]
