"""Sweeps as SageMaker training jobs: requests built and validated offline, created against moto's SageMaker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from mlflow import MlflowClient
from moto import mock_aws
from train_helpers import tiny_config

from longtail.errors import ConfigError
from longtail.train.config import TrainConfig
from longtail.train.run import make_train_config
from longtail.train.sagemaker_entry import job_from_env, read_hyperparameters, run_job
from longtail.train.sagemaker_jobs import (
    DATASET_VERSION_TAG,
    SageMakerTarget,
    SweepSubmitError,
    WaitTimeoutError,
    job_name_for,
    jobs_table,
    make_sagemaker_target,
    submit_sweep,
    training_job_request,
    validate_request,
    wait_for_jobs,
)
from longtail.train.sweep import SWEEP_TAG, expand_grid, load_sweep

REGION = "eu-central-1"
TARGET_VALUES: dict[str, Any] = {
    "image_uri": "123456789012.dkr.ecr.eu-central-1.amazonaws.com/longtail-train:1",
    "role_arn": "arn:aws:iam::123456789012:role/LongtailSageMaker",
    "region": REGION,
    "dataset_s3_uri": "s3://longtail-test/datasets/v-0123456789abcdef",
    "output_s3_uri": "s3://longtail-test/jobs",
    "tracking_uri": "https://mlflow.example.com",
    "tags": {"team": "perception"},
}
TARGET = SageMakerTarget(**TARGET_VALUES)
GRID: dict[str, list[Any]] = {"lr": [1e-3, 2e-3], "batch_size": [4, 8]}
POINTS = [(1e-3, 4), (1e-3, 8), (2e-3, 4), (2e-3, 8)]  # the grid's key order, last key fastest


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A SageMaker client of moto's emulated AWS; dummy credentials so boto3 never looks for real ones."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _job_names(client: Any) -> list[str]:
    return sorted(j["TrainingJobName"] for j in client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"])


def _config_from_hyperparameters(hyperparameters: dict[str, str]) -> tuple[TrainConfig, Any]:
    """What the container does with a job's hyperparameters (SageMaker's toolkit JSON-decodes each into SM_HPS)."""
    hps = read_hyperparameters({"SM_HPS": json.dumps({k: json.loads(v) for k, v in hyperparameters.items()})})
    # The SM_HP_<NAME> variables (raw strings) read back to the same values.
    assert read_hyperparameters({f"SM_HP_{k.upper()}": v for k, v in hyperparameters.items()}) == hps
    sweep_id = hps.pop("sweep_id")
    return make_train_config("test", **hps), sweep_id


def test_two_by_two_grid_becomes_four_jobs_whose_hyperparameters_read_back_into_the_same_configs(sagemaker: Any) -> None:
    base = tiny_config(epochs=3)
    submission = submit_sweep(GRID, base, TARGET, sagemaker)

    sweep_id = submission.sweep_id
    assert submission.job_names == tuple(f"{sweep_id}-{k:03d}" for k in range(4))
    assert submission.created == submission.job_names and submission.fields == ("lr", "batch_size")
    assert (submission.tracking_uri, submission.experiment) == ("https://mlflow.example.com", "longtail-train")
    assert _job_names(sagemaker) == list(submission.job_names)
    for name, (lr, batch_size), expected in zip(submission.job_names, POINTS, expand_grid(GRID, base), strict=True):
        job = sagemaker.describe_training_job(TrainingJobName=name)
        config, job_sweep_id = _config_from_hyperparameters(job["HyperParameters"])
        assert (config.lr, config.batch_size, config.epochs, config.min_size) == (lr, batch_size, 3, 64)
        assert config == expected.model_copy(update={"tracking_uri": "https://mlflow.example.com"})
        assert job_sweep_id == sweep_id
        assert job["AlgorithmSpecification"]["TrainingImage"] == TARGET_VALUES["image_uri"]
        (channel,) = job["InputDataConfig"]
        assert channel["ChannelName"] == "training"  # the entry point reads SM_CHANNEL_TRAINING
        # The slash keeps the S3 prefix from also matching datasets/v-0123456789abcdef0/.
        assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://longtail-test/datasets/v-0123456789abcdef/"
        assert job["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50}
        assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 24 * 3600}
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]}
        assert tags == {SWEEP_TAG: sweep_id, DATASET_VERSION_TAG: "v-0123456789abcdef", "team": "perception"}

    # The same request is the same sweep: nothing new is created.
    again = submit_sweep(GRID, base, TARGET, sagemaker)
    assert (again.sweep_id, again.job_names, again.created) == (sweep_id, submission.job_names, ())
    # The same sweep id over another grid is refused, naming the job.
    with pytest.raises(ConfigError, match=rf"training job {sweep_id}-000 exists with other hyperparameters"):
        submit_sweep({"lr": [5e-3]}, base, TARGET, sagemaker, sweep_id=sweep_id)
    assert len(_job_names(sagemaker)) == 4


def test_the_container_reads_the_request_into_its_job(tmp_path: Path) -> None:
    # Defaults of device and threads are left to the instance; a None over a non-None default is sent.
    config = TrainConfig(val_split=None, registered_model=None, epochs=2)
    request = training_job_request(config, TARGET, "one-job", sweep_id="sweep-one")
    hps = request["HyperParameters"]
    assert "device" not in hps and "threads" not in hps and "max_minutes" not in hps
    assert (hps["val_split"], hps["registered_model"], hps["epochs"], hps["preset"]) == ("null", "null", "2", '"fcos-small-p2"')
    assert hps["sweep_id"] == '"sweep-one"' and hps["tracking_uri"] == '"https://mlflow.example.com"'
    env = {
        "SM_CHANNEL_TRAINING": str(tmp_path),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_NUM_GPUS": "1",
        "SM_NUM_CPUS": "4",
        **{f"SM_HP_{k.upper()}": v for k, v in hps.items()},
    }
    job = job_from_env(env)
    assert job.sweep_id == "sweep-one"
    assert job.config == config.model_copy(update={"device": "cuda", "threads": 4, "tracking_uri": "https://mlflow.example.com"})
    assert request["Environment"]["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert request["Environment"]["FIFTYONE_DO_NOT_TRACK"] == "true"
    assert request["EnableManagedSpotTraining"] is False


def test_every_built_request_validates_and_bad_requests_name_the_parameter() -> None:
    spot = SageMakerTarget(**{**TARGET_VALUES, "use_spot": True, "max_wait_minutes": 48 * 60})
    requests = [
        training_job_request(c, t, job_name_for("sweep-v", k, 4), "sweep-v")
        for t in (TARGET, spot)
        for k, c in enumerate(expand_grid(GRID, tiny_config()))
    ]
    for request in requests:
        validate_request(request)
    assert requests[-1]["StoppingCondition"] == {"MaxRuntimeInSeconds": 86_400, "MaxWaitTimeInSeconds": 172_800}
    assert requests[-1]["EnableManagedSpotTraining"] is True

    good = requests[0]
    bogus = {**good, "ResourceConfig": {**good["ResourceConfig"], "InstanceType": "ml.bogus.large"}}
    with pytest.raises(
        ConfigError,
        match=r"sweep-v-000: ResourceConfig\.InstanceType: 'ml\.bogus\.large' is not one "
        r"of the \d{3} valid values; e\.g\. \['ml\.",
    ):
        validate_request(bogus)
    with pytest.raises(ConfigError, match=r'Missing required parameter in input: "RoleArn"'):
        validate_request({k: v for k, v in good.items() if k != "RoleArn"})
    with pytest.raises(
        ConfigError,
        match=r"Invalid type for parameter ResourceConfig\.InstanceCount, value: 1, "
        r"type: <class 'str'>, valid types: <class 'int'>",
    ):
        validate_request({**good, "ResourceConfig": {**good["ResourceConfig"], "InstanceCount": "1"}})
    with pytest.raises(
        ConfigError,
        match=r"InputDataConfig\[0\]\.DataSource\.S3DataSource\.S3DataType: 'Prefix' is "
        r"not one of the 4 valid values",
    ):
        channel = good["InputDataConfig"][0]
        validate_request(
            {
                **good,
                "InputDataConfig": [
                    {**channel, "DataSource": {"S3DataSource": {**channel["DataSource"]["S3DataSource"], "S3DataType": "Prefix"}}}
                ],
            }
        )
    with pytest.raises(ConfigError, match=r"TrainingJobName='sweep_v_000' does not match SageMaker's pattern"):
        validate_request({**good, "TrainingJobName": "sweep_v_000"})
    with pytest.raises(ConfigError, match=r"RoleArn='arn:aws:iam::123456789012:user/me' does not match"):
        validate_request({**good, "RoleArn": "arn:aws:iam::123456789012:user/me"})


def test_job_names_are_deterministic_and_valid() -> None:
    assert job_name_for("sweep-abc", 7, 12) == "sweep-abc-007"
    assert job_name_for("sweep-abc", 7, 1001) == "sweep-abc-0007"
    with pytest.raises(
        ConfigError,
        match=r"sweep_id='sweep_abc' makes the job name 'sweep_abc-000', which SageMaker "
        r"refuses: .*letters, digits and single hyphens",
    ):
        job_name_for("sweep_abc", 0, 4)
    with pytest.raises(ConfigError, match="Give a shorter sweep id"):
        job_name_for("s" * 60, 0, 4)


def test_bad_grid_or_config_creates_no_job(sagemaker: Any) -> None:
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['learning_rate'\]"):
        submit_sweep({"learning_rate": [1e-3, 2e-3]}, tiny_config(), TARGET, sagemaker)
    # The bad point is the last one: nothing is created for the good ones before it.
    with pytest.raises(ConfigError, match=r"sweep grid point \{'batch_size': 0\}: invalid training config: batch_size"):
        submit_sweep({"batch_size": [4, 8, 0]}, tiny_config(), TARGET, sagemaker)
    cpu_target = SageMakerTarget(**{**TARGET_VALUES, "instance_type": "ml.m5.xlarge"})
    with pytest.raises(ConfigError, match=r"device='cuda' but instance_type='ml\.m5\.xlarge' has no GPU"):
        submit_sweep({"device": ["cpu", "cuda"]}, tiny_config(), cpu_target, sagemaker)
    with pytest.raises(ConfigError, match=r"max_minutes=1440\.0 does not fit in the target's max_runtime_minutes=1440"):
        submit_sweep({"max_minutes": [60, 24 * 60]}, tiny_config(), TARGET, sagemaker)
    with pytest.raises(ConfigError, match=r"config tracking_uri='sqlite:///x\.db' differs from the target's"):
        submit_sweep(GRID, tiny_config(tracking_uri="sqlite:///x.db"), TARGET, sagemaker)
    assert _job_names(sagemaker) == []


class _FailingCreates:
    """A real (moto) client whose n-th create_training_job call fails as SageMaker's quota check would."""

    def __init__(self, client: Any, fail_at: int) -> None:
        self.client, self.fail_at, self.calls = client, fail_at, 0

    def describe_training_job(self, **kwargs: Any) -> Any:
        return self.client.describe_training_job(**kwargs)

    def create_training_job(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ResourceLimitExceeded",
                        "Message": "account-level service limit 'ml.g5.xlarge for training job usage' is 2 Instances",
                    }
                },
                "CreateTrainingJob",
            )
        return self.client.create_training_job(**kwargs)


def test_create_failure_midway_lists_the_jobs_already_created(sagemaker: Any) -> None:
    base = tiny_config()
    with pytest.raises(SweepSubmitError) as failure:
        submit_sweep(GRID, base, TARGET, _FailingCreates(sagemaker, fail_at=3), sweep_id="sweep-quota")
    assert failure.value.created == ("sweep-quota-000", "sweep-quota-001")
    assert failure.value.failed == "sweep-quota-002"
    message = str(failure.value)
    assert "creating training job sweep-quota-002 failed (ClientError: " in message and "ResourceLimitExceeded" in message
    assert "already created and running: ['sweep-quota-000', 'sweep-quota-001']; stop them" in message
    assert _job_names(sagemaker) == ["sweep-quota-000", "sweep-quota-001"]

    # Submitting the same sweep again creates the missing jobs only.
    again = submit_sweep(GRID, base, TARGET, sagemaker, sweep_id="sweep-quota")
    assert again.created == ("sweep-quota-002", "sweep-quota-003")
    assert _job_names(sagemaker) == [f"sweep-quota-{k:03d}" for k in range(4)]

    with pytest.raises(SweepSubmitError, match=r"creating training job sweep-first-000 failed .*; no job was created"):
        submit_sweep(GRID, base, TARGET, _FailingCreates(sagemaker, fail_at=1), sweep_id="sweep-first")


def test_moto_jobs_are_waited_for_and_listed_one_row_per_job(sagemaker: Any) -> None:
    submission = submit_sweep(GRID, tiny_config(), TARGET, sagemaker, sweep_id="sweep-table")
    statuses = wait_for_jobs(sagemaker, submission.job_names, poll_seconds=0, timeout_minutes=1)
    assert statuses == dict.fromkeys(submission.job_names, "Completed")  # moto completes jobs at once

    table = jobs_table(sagemaker, submission.job_names, submission.fields)
    assert list(table.columns) == [
        "job_name",
        "status",
        "lr",
        "batch_size",
        "instance_type",
        "training_seconds",
        "billable_seconds",
        "failure_reason",
        "sweep_id",
    ]
    assert list(table["job_name"]) == list(submission.job_names)
    assert list(zip(table["lr"], table["batch_size"], strict=True)) == POINTS
    assert set(table["status"]) == {"Completed"} and set(table["instance_type"]) == {"ml.g5.xlarge"}
    assert set(table["sweep_id"]) == {"sweep-table"}
    # Without fields, the columns are the hyperparameters that differ between the jobs.
    assert list(jobs_table(sagemaker, submission.job_names).columns[2:4]) == ["batch_size", "lr"]

    with pytest.raises(ConfigError, match=r"wait_for_jobs: training job 'sweep-nope-000' not found"):
        wait_for_jobs(sagemaker, ["sweep-nope-000"], poll_seconds=0)


class _ScriptedJobs:
    """DescribeTrainingJob answers that change on each call, as a real job's status does while it runs."""

    def __init__(self, scripts: dict[str, list[str]]) -> None:
        self.scripts, self.calls = scripts, dict.fromkeys(scripts, 0)

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        script = self.scripts[TrainingJobName]
        status = script[min(self.calls[TrainingJobName], len(script) - 1)]
        self.calls[TrainingJobName] += 1
        out: dict[str, Any] = {
            "TrainingJobName": TrainingJobName,
            "TrainingJobStatus": status,
            "HyperParameters": {"lr": "0.001" if TrainingJobName == "a" else "0.002"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge"},
        }
        if status == "Failed":
            out["FailureReason"] = "AlgorithmError: ConfigError: SM_HPS: invalid training config"
        if status == "Completed":
            out["TrainingTimeInSeconds"] = 615
        return out


def test_wait_for_jobs_polls_until_every_job_ends() -> None:
    client = _ScriptedJobs({"a": ["InProgress", "InProgress", "Completed"], "b": ["InProgress", "Failed"]})
    assert wait_for_jobs(client, ["a", "b"], poll_seconds=0) == {"a": "Completed", "b": "Failed"}
    assert client.calls == {"a": 3, "b": 2}  # an ended job is not asked again
    table = jobs_table(client, ["a", "b"])
    assert list(table["lr"]) == [0.001, 0.002] and list(table["status"]) == ["Completed", "Failed"]
    assert table["training_seconds"][0] == 615
    assert table["failure_reason"][1].startswith("AlgorithmError: ConfigError")

    with pytest.raises(
        WaitTimeoutError,
        match=r"1 job\(s\) still running after 0 minute\(s\): \['c'\]; they keep "
        r"running",
    ) as timeout:
        wait_for_jobs(_ScriptedJobs({"a": ["Completed"], "c": ["InProgress"]}), ["a", "c"], poll_seconds=0, timeout_minutes=0)
    assert timeout.value.statuses == {"a": "Completed", "c": "InProgress"}
    with pytest.raises(ConfigError, match="poll_seconds=-1"):
        wait_for_jobs(client, ["a"], poll_seconds=-1)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        (
            "dataset_s3_uri",
            "longtail-test/datasets/v-1/",
            r"dataset_s3_uri: 'longtail-test/datasets/v-1/' is not the S3 "
            r"prefix of a dataset version folder; give s3://<bucket>/",
        ),
        ("dataset_s3_uri", "s3://longtail-test/", r"dataset_s3_uri: 's3://longtail-test/' is not the S3 prefix"),
        ("output_s3_uri", "https://example.com/out", r"output_s3_uri: 'https://example.com/out' is not an S3 URI; give s3://"),
        ("role_arn", "LongtailSageMaker", r"role_arn: 'LongtailSageMaker' is not an IAM role ARN; give arn:aws:iam::"),
        ("role_arn", "arn:aws:iam::123456789012:user/me", r"role_arn: .* is not an IAM role ARN"),
        ("region", "Frankfurt", r"region: 'Frankfurt' is not an AWS region name; give one like eu-central-1"),
        (
            "tracking_uri",
            "sqlite:///mlflow.db",
            r"tracking_uri: 'sqlite:///mlflow\.db' is local to the machine a job runs "
            r"on .*give the MLflow tracking server",
        ),
        ("tracking_uri", "/data/mlflow", r"tracking_uri: '/data/mlflow' is local"),
        (
            "instance_type",
            "ml.g5.xlarg",
            r"instance_type: 'ml\.g5\.xlarg' is not one of the \d+ valid values; "
            r"e\.g\. \['ml\.g5\.xlarge'",
        ),
        ("instance_count", 2, r"instance_count: 2 instances: the entry point trains on one host"),
        ("image_uri", "longtail train", r"image_uri: 'longtail train' is not a container image URI"),
        ("max_wait_minutes", 2000, r"max_wait_minutes=2000 applies to spot training only; set use_spot"),
        (
            "tags",
            {"longtail.sweep_id": "x"},
            r"tags: tag key 'longtail\.sweep_id': the prefixes 'aws:' and 'longtail\.' are "
            r"reserved",
        ),
    ],
)
def test_bad_target_values_fail_naming_the_field(field: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=r"env/aws\.yaml: invalid SageMaker target: " + match):
        make_sagemaker_target("env/aws.yaml", **{**TARGET_VALUES, field: value})


def test_spot_wait_must_cover_the_run() -> None:
    with pytest.raises(ConfigError, match=r"max_wait_minutes=60 is below max_runtime_minutes=120; .*raise it"):
        make_sagemaker_target("target", **{**TARGET_VALUES, "use_spot": True, "max_runtime_minutes": 120, "max_wait_minutes": 60})


@pytest.mark.slow
def test_a_job_trains_from_its_request_and_load_sweep_finds_its_run(
    sagemaker: Any, tmp_path: Path, tiny_version: tuple[Path, Path, dict[str, Any]]
) -> None:
    _, folder, manifest = tiny_version
    submission = submit_sweep({"lr": [1e-3, 2e-3]}, tiny_config(epochs=1, registered_model=None), TARGET, sagemaker)
    name = submission.job_names[0]
    hyperparameters = sagemaker.describe_training_job(TrainingJobName=name)["HyperParameters"]
    # A sqlite file stands in for the tracking server: the container gets its URI as the request sends one.
    tracking_uri = f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}"
    (tmp_path / "server").mkdir()
    hyperparameters["tracking_uri"] = json.dumps(tracking_uri)
    hyperparameters["artifact_location"] = json.dumps((tmp_path / "server" / "artifacts").as_uri())
    hps = {k: json.loads(v) for k, v in hyperparameters.items()}
    env = {
        "SM_CHANNEL_TRAINING": str(folder),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_NUM_GPUS": "0",
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
        "SM_HPS": json.dumps(hps),
        "TRAINING_JOB_NAME": name,
    }
    run_job(job_from_env(env))

    table = load_sweep(tracking_uri, submission.experiment, submission.sweep_id, list(submission.fields))
    assert len(table) == 1 and list(table["lr"]) == ["0.001"] and list(table["sweep_id"]) == [submission.sweep_id]
    assert table["status"][0] == "FINISHED" and table["epochs_done"][0] == 1
    run = MlflowClient(tracking_uri).get_run(table["run_id"][0])
    assert run.data.tags[SWEEP_TAG] == submission.sweep_id and run.data.tags["sagemaker.training_job"] == name
    assert run.inputs.dataset_inputs[0].dataset.name == manifest["version_id"]
    assert not (tmp_path / "output" / "mlflow").exists()  # nothing tracked inside the container
