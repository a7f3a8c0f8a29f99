"""Train: the training engine, MLflow tracking, sweeps and the SageMaker entry point."""
