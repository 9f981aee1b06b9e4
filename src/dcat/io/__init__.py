"""Numpy-only input and output shared by training and deployment: tables, time grids and
windows, normalisation statistics, media decoding, the model card and atomic writes.

Nothing here imports torch, so ``dcat predict`` runs where only numpy and onnxruntime are
installed, and training and deployment read, resample, window and normalise recordings with
the same code."""
