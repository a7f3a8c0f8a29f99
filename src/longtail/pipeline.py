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
    """Load env/<target>.yaml, resolve ``root`` against the repository, apply ``overrides``.

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
    env.update(overrides or {})
    data_root = Path(os.path.expanduser(str(env["root"])))
    env["root"] = str(data_root if data_root.is_absolute() else base / data_root)
    return env


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
    """Build the pipeline for ``target`` and return the env it ran with."""
    env = load_env(target, overrides=overrides)
    dag = make_dag(target, overrides, in_process=in_process)
    log.info("running pipeline.yaml on target %s (data in %s)", target, env["root"])
    dag.build(force=force, show_progress=True)
    return env
