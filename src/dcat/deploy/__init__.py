"""Deployment of one sensor's model: :mod:`dcat.deploy.export` (torch, ONNX) and
:mod:`dcat.deploy.predict` (numpy and onnxruntime only)."""
