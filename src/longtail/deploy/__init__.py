"""The deploy stage: the champion as TorchScript and ONNX exports checked against PyTorch, its
per-class operating thresholds, a model card, an MLflow pyfunc model for ``mlflow models serve``,
and a deployment record written last (`run.run_deploy`).

Other stages find and open a deployment through `longtail.catalog.deployments` and
`longtail.detector.export.load_deployed_detector`, never through this package.
"""
