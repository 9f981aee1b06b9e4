"""Kept for existing imports: deployment's predict now lives in :mod:`dcat.deploy.predict`.

Like it, this module imports only numpy (and onnxruntime when a model is loaded)."""

from dcat.deploy.predict import (  # noqa: F401
    DeployedModel,
    PredictError,
    Recording,
    WindowPrediction,
    describe,
    format_predictions,
    predict,
    read_recording,
)
from dcat.deploy.predict import __all__ as __all__
