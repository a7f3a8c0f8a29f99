"""Sweeps in the cloud target: every grid point a SageMaker training job, all running at once.

Requests are the plain keyword arguments of boto3's ``create_training_job`` (no SageMaker SDK, no
IAM call), built and checked offline against botocore's service model before any job exists:

1. `expand_grid` validates every point of the grid into a `TrainConfig`.
2. `training_job_request` turns each point into a request. The container runs
   ``python -m longtail.train.sagemaker_entry``, which reads the hyperparameters back into the same
   `TrainConfig` and tags the MLflow run with the sweep id (``SWEEP_TAG``).
3. `validate_request` checks each request: types, required members and lengths (botocore's
   ``ParamValidator``), then enums and patterns, which ``ParamValidator`` leaves to the server.
4. `submit_sweep` creates every job; `wait_for_jobs` polls them; `jobs_table` lists their state.

The metrics are compared from MLflow, where every job logs to ``SageMakerTarget.tracking_uri``:
``load_sweep(s.tracking_uri, s.experiment, s.sweep_id, list(s.fields))`` for a `SweepSubmission` ``s``.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from botocore.model import Shape, StructureShape
from botocore.validate import ParamValidator
from pydantic import Field, ValidationError, field_validator, model_validator

from longtail._runtime import TELEMETRY_OFF
from longtail.config import _Frozen
from longtail.errors import ConfigError, LongtailError, invalid_config
from longtail.train.config import TrainConfig
from longtail.train.sagemaker_entry import SWEEP_ID_HP, TRAINING_CHANNEL
from longtail.train.sweep import SWEEP_TAG, expand_grid, sweep_id_for

log = logging.getLogger(__name__)

DATASET_VERSION_TAG = "longtail.dataset_version"
"""SageMaker job tag naming the dataset version the job trains on."""

TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
"""DescribeTrainingJob's TrainingJobStatus values after which a job never changes."""

MAX_MINUTES = 28 * 24 * 60
"""SageMaker's longest training job (28 days), minutes."""

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]+")
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/.*)?")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")  # SageMaker's [\p{L}\p{Z}\p{N}_.:/=+\-@]* in Python's re
# The fields the container fills from its instance (SM_NUM_GPUS, SM_NUM_CPUS) unless the config changed them.
_FROM_INSTANCE = ("device", "threads")
# Java regex classes in the service model's patterns, as Python's re spells them (a bit wider: never rejects more).
_JAVA_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\w", r"\p{Z}": r"\s", r"\p{Alnum}": r"a-zA-Z0-9"}


@functools.cache
def _create_training_job_shape() -> StructureShape:
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.operation_model("CreateTrainingJob").input_shape


def training_instance_types() -> list[str]:
    """The instance types CreateTrainingJob accepts, from botocore's SageMaker service model."""
    shape = _create_training_job_shape().members["ResourceConfig"].members["InstanceType"]
    return list(shape.enum)


def _not_one_of(value: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, valid, n=5, cutoff=0.6) or list(valid[:5])
    return f"{value!r} is not one of the {len(valid)} valid values; e.g. {close}"


class SageMakerTarget(_Frozen):
    """Where and how the sweep's SageMaker training jobs run. Units are in each field's description.

    Saved with nothing secret: credentials come from the standard AWS chain.
    """

    image_uri: str = Field(
        description="training container holding this repository, whose entry point runs "
        "`python -m longtail.train.sagemaker_entry`, e.g. 123456789012.dkr.ecr.eu-central-1.amazonaws.com/longtail:1"
    )
    role_arn: str = Field(description="IAM role the jobs run as (reads the dataset, writes the output), an ARN")
    region: str = Field(description="AWS region of the jobs, e.g. eu-central-1")
    dataset_s3_uri: str = Field(description="S3 prefix of a dataset version folder, s3://bucket/datasets/<version_id>/")
    output_s3_uri: str = Field(description="S3 prefix SageMaker writes each job's model.tar.gz under")
    instance_type: str = Field("ml.g5.xlarge", description="training instance type (one NVIDIA A10G GPU)")
    instance_count: int = Field(1, description="instances per job; 1 (the entry point trains on one host)")
    volume_size_gb: int = Field(50, ge=1, le=16_384, description="storage attached to each instance, GB")
    max_runtime_minutes: int = Field(24 * 60, ge=1, le=MAX_MINUTES, description="SageMaker stops a job after this long, minutes")
    tracking_uri: str = Field(
        description="MLflow tracking server the jobs log to, e.g. https://mlflow.example.com; a sqlite file or a "
        "folder inside the container would be lost with it"
    )
    use_spot: bool = Field(False, description="managed spot training: cheaper, may be interrupted and restarted")
    max_wait_minutes: int | None = Field(
        None, ge=1, le=MAX_MINUTES, description="spot only: longest wait plus run, minutes; None: max_runtime_minutes"
    )
    tags: dict[str, str] = Field(default_factory=dict, description="extra SageMaker tags of every job")

    @field_validator("image_uri")
    @classmethod
    def _image_uri(cls, v: str) -> str:
        if not v or len(v) > 255 or any(c.isspace() for c in v) or "/" not in v:
            raise ValueError(
                f"{v!r} is not a container image URI; give the training image's registry path (at most 255 "
                "characters), e.g. 123456789012.dkr.ecr.eu-central-1.amazonaws.com/longtail:1"
            )
        return v

    @field_validator("role_arn")
    @classmethod
    def _role_arn(cls, v: str) -> str:
        if not _ROLE_ARN.fullmatch(v):
            raise ValueError(
                f"{v!r} is not an IAM role ARN; give arn:aws:iam::<12-digit account>:role/<name>, "
                "e.g. arn:aws:iam::123456789012:role/LongtailSageMaker"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not _REGION.fullmatch(v):
            raise ValueError(f"{v!r} is not an AWS region name; give one like eu-central-1 or us-east-1")
        return v

    @field_validator("dataset_s3_uri")
    @classmethod
    def _dataset_s3_uri(cls, v: str) -> str:
        match = _S3_URI.fullmatch(v)
        if not match or not (match.group(2) or "").strip("/"):
            raise ValueError(
                f"{v!r} is not the S3 prefix of a dataset version folder; give s3://<bucket>/<prefix>/<version_id>/, "
                "e.g. s3://my-bucket/datasets/v-0123456789abcdef/"
            )
        # An S3Prefix matches keys by prefix: without the slash, .../v-1 would also download .../v-10/.
        return v.rstrip("/") + "/"

    @field_validator("output_s3_uri")
    @classmethod
    def _output_s3_uri(cls, v: str) -> str:
        if not _S3_URI.fullmatch(v):
            raise ValueError(f"{v!r} is not an S3 URI; give s3://<bucket>[/<prefix>], e.g. s3://my-bucket/longtail/jobs")
        return v

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, v: str) -> str:
        valid = training_instance_types()
        if v not in valid:
            raise ValueError(f"{_not_one_of(v, valid)} (SageMaker training instance types, e.g. ml.g5.xlarge)")
        return v

    @field_validator("instance_count")
    @classmethod
    def _instance_count(cls, v: int) -> int:
        if v != 1:
            raise ValueError(
                f"{v} instances: the entry point trains on one host (no distributed training), so each of "
                f"{v} hosts would train and log its own copy; use 1"
            )
        return v

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri(cls, v: str) -> str:
        scheme = urlparse(v).scheme
        if scheme in ("", "file", "sqlite") or len(scheme) == 1:  # one letter: a Windows drive, C:\...
            raise ValueError(
                f"{v!r} is local to the machine a job runs on and would be lost with its container; give the "
                "MLflow tracking server the jobs can reach, e.g. https://mlflow.example.com"
            )
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if key.startswith(("aws:", "longtail.")):
                raise ValueError(f"tag key {key!r}: the prefixes 'aws:' and 'longtail.' are reserved; rename it")
            if not 1 <= len(key) <= 128 or not _TAG_TEXT.fullmatch(key):
                raise ValueError(f"tag key {key!r}: give 1-128 letters, digits, spaces or _.:/=+-@")
            if len(value) > 256 or not _TAG_TEXT.fullmatch(value):
                raise ValueError(f"tag {key}={value!r}: give at most 256 letters, digits, spaces or _.:/=+-@")
        if len(v) > 47:
            raise ValueError(f"{len(v)} tags; SageMaker takes 50 per job and Longtail adds up to 3: give at most 47")
        return v

    @model_validator(mode="after")
    def _spot(self) -> SageMakerTarget:
        if self.max_wait_minutes is not None and not self.use_spot:
            raise ValueError(
                f"max_wait_minutes={self.max_wait_minutes} applies to spot training only; set use_spot: true "
                "or drop max_wait_minutes"
            )
        if self.max_wait_minutes is not None and self.max_wait_minutes < self.max_runtime_minutes:
            raise ValueError(
                f"max_wait_minutes={self.max_wait_minutes} is below max_runtime_minutes="
                f"{self.max_runtime_minutes}; SageMaker needs the wait to cover the run: raise it"
            )
        return self

    @property
    def dataset_version(self) -> str:
        """The dataset version id: the last folder of ``dataset_s3_uri``."""
        return self.dataset_s3_uri.rstrip("/").rsplit("/", 1)[-1]


def make_sagemaker_target(source: str, **values: Any) -> SageMakerTarget:
    """Validate ``values`` into a `SageMakerTarget`, naming ``source`` in the error.

    Args:
        source: where the values came from, e.g. an env file's path.
        **values: fields of `SageMakerTarget`.

    Returns:
        The target.

    Raises:
        ConfigError: naming the source, each bad field and how to fix it.
    """
    try:
        return SageMakerTarget(**values)
    except ValidationError as exc:
        raise invalid_config(source, "SageMaker target", exc) from None


def _valid_job_name(name: str) -> bool:
    # The pattern does not count hyphens; the 63-character limit is a separate rule of the API.
    return len(name) <= 63 and _JOB_NAME.fullmatch(name) is not None


def job_name_for(sweep_id: str, index: int, points: int) -> str:
    """The training job name of grid point ``index`` (from 0) of ``points``: ``<sweep_id>-<index>``, zero-padded.

    Raises:
        ConfigError: the name would not be a valid SageMaker job name (1-63 letters, digits and hyphens).
    """
    name = f"{sweep_id}-{index:0{max(3, len(str(points - 1)))}d}"
    if not _valid_job_name(name):
        raise ConfigError(
            f"sweep_id={sweep_id!r} makes the job name {name!r}, which SageMaker refuses: job names are 1-63 letters, "
            "digits and single hyphens, starting and ending with a letter or digit. Give a shorter sweep id of "
            "letters, digits and hyphens, e.g. sweep-lr-batch"
        )
    return name


def _hyperparameters(config: TrainConfig, tracking_uri: str, sweep_id: str | None) -> dict[str, str]:
    # Values are JSON, which sagemaker_entry.read_hyperparameters parses back (SM_HPS and SM_HP_*).
    values = config.model_dump(mode="json")
    hps: dict[str, str] = {}
    for name, field in TrainConfig.model_fields.items():
        value = values[name]
        if value is None and field.default is None:
            continue  # the default already; a None over a non-None default (val_split) must be sent
        if name in _FROM_INSTANCE and value == field.default:
            continue  # the container sets it from its instance: cuda with a GPU, one thread per vCPU
        hps[name] = json.dumps(value)
    hps["tracking_uri"] = json.dumps(tracking_uri)
    if sweep_id is not None:
        hps[SWEEP_ID_HP] = json.dumps(sweep_id)
    return hps


def _is_gpu_instance(instance_type: str) -> bool:
    # ml.p* and ml.g* (g4dn, g5, g6, g6e, gr6, ...) carry NVIDIA GPUs; trn/inf carry Neuron chips, not cuda.
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return family[:1] in ("p", "g")


def training_job_request(
    config: TrainConfig, target: SageMakerTarget, job_name: str, sweep_id: str | None = None
) -> dict[str, Any]:
    """The keyword arguments of boto3 ``sagemaker.create_training_job`` that train ``config`` on ``target``.

    The hyperparameters are every `TrainConfig` field with something to say (None over a None default
    is left out, and so are ``device`` and ``threads`` at their defaults, which the container sets
    from its instance), JSON-encoded, plus ``tracking_uri`` (the target's) and ``sweep_id``.

    Args:
        config: the training config of this job.
        target: where the job runs and logs.
        job_name: the SageMaker training job name (see `job_name_for`).
        sweep_id: the sweep the job belongs to; it becomes the MLflow run tag ``SWEEP_TAG`` and a job tag.

    Returns:
        The request: TrainingJobName, AlgorithmSpecification, RoleArn, HyperParameters,
        InputDataConfig (channel ``training``: the dataset version), OutputDataConfig, ResourceConfig,
        StoppingCondition, EnableManagedSpotTraining, Environment (telemetry off) and Tags.

    Raises:
        ConfigError: a bad job name; a config whose tracking URI differs from the target's, whose
            artifact location is a local path, which asks for cuda on an instance without a GPU, or
            whose time budget ``max_minutes`` does not fit in ``max_runtime_minutes``.
    """
    if not _valid_job_name(job_name):
        raise ConfigError(
            f"job_name={job_name!r}: SageMaker job names are 1-63 letters, digits and single hyphens, "
            "starting and ending with a letter or digit; see job_name_for"
        )
    if config.tracking_uri is not None and config.tracking_uri != target.tracking_uri:
        raise ConfigError(
            f"config tracking_uri={config.tracking_uri!r} differs from the target's "
            f"{target.tracking_uri!r}; the jobs log to the target's server: drop tracking_uri from the config"
        )
    if config.artifact_location is not None and urlparse(config.artifact_location).scheme in ("", "file"):
        raise ConfigError(
            f"config artifact_location={config.artifact_location!r} is a local path inside the container, "
            "lost when the job ends; give an s3:// location or leave it None (the server's default)"
        )
    if config.device == "cuda" and not _is_gpu_instance(target.instance_type):
        raise ConfigError(
            f"config device='cuda' but instance_type={target.instance_type!r} has no GPU; pick an "
            "ml.g* or ml.p* instance type or set device to 'auto'"
        )
    if config.max_minutes is not None and config.max_minutes >= target.max_runtime_minutes:
        # The budget ends after the epoch it runs out in, then the model is written and uploaded: leave room.
        raise ConfigError(
            f"config max_minutes={config.max_minutes} does not fit in the target's max_runtime_minutes="
            f"{target.max_runtime_minutes}: SageMaker would stop the job before the model is written. "
            "Raise max_runtime_minutes (an epoch more) or lower max_minutes"
        )
    environment = {k: v for k, v in TELEMETRY_OFF.items() if v}
    environment["PYTHONUNBUFFERED"] = "1"  # logs reach CloudWatch as they are written
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": target.max_runtime_minutes * 60}
    if target.use_spot:
        stopping["MaxWaitTimeInSeconds"] = (target.max_wait_minutes or target.max_runtime_minutes) * 60
    tags = [{"Key": DATASET_VERSION_TAG, "Value": target.dataset_version}]
    if sweep_id is not None:
        tags.insert(0, {"Key": SWEEP_TAG, "Value": sweep_id})
    tags += [{"Key": k, "Value": v} for k, v in target.tags.items()]
    return {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": target.image_uri, "TrainingInputMode": "File"},
        "RoleArn": target.role_arn,
        "HyperParameters": _hyperparameters(config, target.tracking_uri, sweep_id),
        "InputDataConfig": [
            {
                "ChannelName": TRAINING_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": target.dataset_s3_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": target.output_s3_uri},
        "ResourceConfig": {
            "InstanceType": target.instance_type,
            "InstanceCount": target.instance_count,
            "VolumeSizeInGB": target.volume_size_gb,
        },
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": target.use_spot,
        "Environment": environment,
        "Tags": tags,
    }


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a pattern Python's re cannot read: left to the server


def _walk(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    if shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members
        for key, item in value.items():
            if key in members:
                _walk(item, members[key], f"{path}.{key}" if path else key, problems)
    elif shape.type_name == "list" and isinstance(value, list):
        for k, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{k}]", problems)
    elif shape.type_name == "map" and isinstance(value, Mapping):
        for key, item in value.items():
            _walk(key, shape.key, f"{path} key {key!r}", problems)
            _walk(item, shape.value, f"{path}.{key}", problems)
    elif shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            problems.append(f"{path}: {_not_one_of(value, enum)}")
            return
        pattern = shape.metadata.get("pattern")
        compiled = _pattern(pattern) if pattern else None
        if compiled is not None and not compiled.fullmatch(value):
            problems.append(f"{path}={value!r} does not match SageMaker's pattern {pattern!r}")


def validate_request(request: Mapping[str, Any]) -> None:
    """Check a CreateTrainingJob request offline, as SageMaker would, before it is sent.

    1. botocore's ``ParamValidator`` against the ``sagemaker`` service model: unknown or missing
       parameters, types, lengths and ranges.
    2. A walk of the request for what ``ParamValidator`` leaves to the server: enum values
       (e.g. ``ResourceConfig.InstanceType``) and patterns (e.g. ``TrainingJobName``, ``RoleArn``).

    Args:
        request: the keyword arguments of ``create_training_job`` (see `training_job_request`).

    Raises:
        ConfigError: naming the job, each bad parameter's path and the valid values.
    """
    name = request.get("TrainingJobName", "<no TrainingJobName>")
    shape = _create_training_job_shape()
    report = ParamValidator().validate(dict(request), shape)
    if report.has_errors():
        lines = report.generate_report().splitlines()
        raise ConfigError(
            f"CreateTrainingJob request of {name}: {'; '.join(lines)}. Fix these parameters "
            "(training_job_request builds a complete request)"
        )
    problems: list[str] = []
    _walk(request, shape, "", problems)
    if problems:
        raise ConfigError(f"CreateTrainingJob request of {name}: {'; '.join(problems)}")


class SweepSubmitError(LongtailError):
    """A create call failed partway through a sweep; ``created`` lists the jobs that exist and run."""

    def __init__(self, message: str, created: Sequence[str], failed: str) -> None:
        super().__init__(message)
        self.created = tuple(created)
        self.failed = failed


class WaitTimeoutError(LongtailError):
    """`wait_for_jobs` ran out of time; ``statuses`` holds every job's last status."""

    def __init__(self, message: str, statuses: Mapping[str, str]) -> None:
        super().__init__(message)
        self.statuses = dict(statuses)


@dataclass(frozen=True)
class SweepSubmission:
    """A sweep submitted as SageMaker training jobs, one per grid point in the grid's order."""

    sweep_id: str
    job_names: tuple[str, ...]
    created: tuple[str, ...]  # created by this call; the others existed already (the same sweep submitted before)
    fields: tuple[str, ...]  # the swept TrainConfig fields, in the grid's order
    tracking_uri: str
    experiment: str


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _describe_if_exists(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_training_job(TrainingJobName=name))
    except Exception as exc:
        if _error_code(exc) in ("ValidationException", "ResourceNotFound"):  # SageMaker's answer for an unknown job
            return None
        raise


def submit_sweep(
    grid: dict[str, list[Any]],
    base_config: TrainConfig | None,
    target: SageMakerTarget,
    client: Any = None,
    sweep_id: str | None = None,
) -> SweepSubmission:
    """Submit a grid of training configs as SageMaker training jobs that run in parallel.

    1. Expand the grid (every point validated) and build and validate every request: a bad grid,
       config or target fails here, before any job exists.
    2. Look up the jobs: a job of this sweep that exists already (the same sweep submitted
       before) is kept if its hyperparameters are the same, so submitting again after a failure
       creates only the missing jobs.
    3. Create the missing jobs, one call each; SageMaker runs them at the same time.

    Args:
        grid: field of `TrainConfig` -> values, e.g. ``{"preset": ["fcos-small"], "lr": [1e-3, 2e-3]}``.
        base_config: the settings of fields not in the grid; `TrainConfig` defaults when None.
        target: where the jobs run and log.
        client: a boto3 SageMaker client; default ``boto3.client("sagemaker", region_name=target.region)``.
        sweep_id: the sweep's id (letters, digits, hyphens); default `sweep_id_for` the dataset version,
            grid and base config (with the target's tracking URI): the same request is the same sweep.

    Returns:
        The sweep id, the job names (``<sweep_id>-<index>``), those created now, the swept fields,
        and the tracking URI and experiment to read the runs from with `load_sweep`.

    Raises:
        ConfigError: a bad grid, config, sweep id or request (no job is created), or a job of this
            name that exists with other hyperparameters.
        SweepSubmitError: a create call failed; it lists the jobs already created (still running:
            stop them or submit again to create the rest) and the one that failed.
    """
    base_config = base_config or TrainConfig()
    configs = expand_grid(grid, base_config)
    if sweep_id is None:
        cloud_base = base_config.model_copy(update={"tracking_uri": target.tracking_uri})
        sweep_id = sweep_id_for(target.dataset_version, grid, cloud_base)
    names = [job_name_for(sweep_id, k, len(configs)) for k in range(len(configs))]
    requests = [training_job_request(c, target, n, sweep_id) for c, n in zip(configs, names, strict=True)]
    for request in requests:
        validate_request(request)

    if client is None:
        import boto3

        client = boto3.client("sagemaker", region_name=target.region)
    missing = []
    for request in requests:
        found = _describe_if_exists(client, request["TrainingJobName"])
        if found is None:
            missing.append(request)
        elif found.get("HyperParameters") != request["HyperParameters"]:
            raise ConfigError(
                f"training job {request['TrainingJobName']} exists with other hyperparameters than grid "
                f"point {names.index(request['TrainingJobName'])} of sweep {sweep_id}; give another "
                "sweep_id to submit this grid as a new sweep"
            )
    if len(missing) < len(requests):
        log.info("sweep %s: %d of %d job(s) exist already, kept", sweep_id, len(requests) - len(missing), len(requests))

    created: list[str] = []
    for request in missing:
        name = request["TrainingJobName"]
        try:
            client.create_training_job(**request)
        except Exception as exc:
            running = (
                f"already created and running: {created}; stop them with `aws sagemaker stop-training-job "
                "--training-job-name <name>` or "
                if created
                else "no job was created; "
            )
            raise SweepSubmitError(
                f"sweep {sweep_id}: creating training job {name} failed ({type(exc).__name__}: {exc}); {running}"
                f"fix the cause and submit the same sweep again to create the missing jobs",
                created,
                name,
            ) from exc
        created.append(name)
        log.info("sweep %s: created training job %s (%d of %d)", sweep_id, name, len(created), len(missing))
    return SweepSubmission(sweep_id, tuple(names), tuple(created), tuple(grid), target.tracking_uri, base_config.experiment)


def wait_for_jobs(
    client: Any, job_names: Sequence[str], poll_seconds: float = 30, timeout_minutes: float | None = None
) -> dict[str, str]:
    """Poll DescribeTrainingJob until every job is Completed, Failed or Stopped.

    Args:
        client: a boto3 SageMaker client.
        job_names: the training jobs, e.g. ``SweepSubmission.job_names``.
        poll_seconds: seconds between rounds of polling (default 30; SageMaker updates about that often).
        timeout_minutes: give up after this long, minutes; None waits as long as the jobs run.

    Returns:
        job name -> final TrainingJobStatus, in the order of ``job_names``.

    Raises:
        ConfigError: a negative ``poll_seconds`` or ``timeout_minutes``, or an unknown job name.
        WaitTimeoutError: the time ran out; it names the jobs still running (they keep running).
    """
    if poll_seconds < 0 or (timeout_minutes is not None and timeout_minutes < 0):
        raise ConfigError(
            f"wait_for_jobs: poll_seconds={poll_seconds}, timeout_minutes={timeout_minutes}; give "
            "values >= 0 (timeout_minutes None waits as long as the jobs run)"
        )
    deadline = None if timeout_minutes is None else time.monotonic() + timeout_minutes * 60
    statuses: dict[str, str] = {}
    while True:
        for name in job_names:
            if statuses.get(name) in TERMINAL_STATUSES:
                continue
            found = _describe_if_exists(client, name)
            if found is None:
                raise ConfigError(f"wait_for_jobs: training job {name!r} not found; check the name and the client's region")
            status = str(found["TrainingJobStatus"])
            if statuses.get(name) != status:
                log.info("training job %s: %s", name, status)
            statuses[name] = status
        running = [n for n in job_names if statuses[n] not in TERMINAL_STATUSES]
        if not running:
            return {n: statuses[n] for n in job_names}
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"wait_for_jobs: {len(running)} job(s) still running after {timeout_minutes} "
                f"minute(s): {running}; they keep running: wait again or stop them",
                statuses,
            )
        time.sleep(poll_seconds)


def _hp_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def jobs_table(client: Any, job_names: Sequence[str], fields: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per training job: its SageMaker state and swept hyperparameters (metrics are in MLflow).

    Args:
        client: a boto3 SageMaker client.
        job_names: the training jobs, e.g. ``SweepSubmission.job_names``.
        fields: the hyperparameters to show, e.g. ``SweepSubmission.fields``; None: those whose
            values differ between the jobs.

    Returns:
        Columns ``job_name``, ``status``, one per field (parsed values), ``instance_type``,
        ``training_seconds`` and ``billable_seconds`` (None until SageMaker reports them),
        ``failure_reason`` (None unless failed) and ``sweep_id``; in the order of ``job_names``.

    Raises:
        ConfigError: an unknown job name.
    """
    found = []
    for name in job_names:
        described = _describe_if_exists(client, name)
        if described is None:
            raise ConfigError(f"jobs_table: training job {name!r} not found; check the name and the client's region")
        found.append(described)
    hps = [{k: _hp_value(v) for k, v in d.get("HyperParameters", {}).items()} for d in found]
    if fields is None:
        keys = list(dict.fromkeys(k for h in hps for k in h if k not in ("tracking_uri", SWEEP_ID_HP)))
        fields = [k for k in keys if len({json.dumps(h.get(k), sort_keys=True) for h in hps}) > 1]
    rows = [
        {
            "job_name": d["TrainingJobName"],
            "status": d["TrainingJobStatus"],
            **{f: h.get(f) for f in fields},
            "instance_type": d.get("ResourceConfig", {}).get("InstanceType"),
            "training_seconds": d.get("TrainingTimeInSeconds"),
            "billable_seconds": d.get("BillableTimeInSeconds"),
            "failure_reason": d.get("FailureReason"),
            "sweep_id": h.get(SWEEP_ID_HP),
        }
        for d, h in zip(found, hps, strict=True)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "job_name",
            "status",
            *fields,
            "instance_type",
            "training_seconds",
            "billable_seconds",
            "failure_reason",
            "sweep_id",
        ],
    )
