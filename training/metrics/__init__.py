"""Evaluation without downloads: a per-dataset feature network, Fréchet distance, precision/recall, and the rest.

Kept import-light on purpose: the model registry imports `training.metrics.featurenet` to rebuild feature
network bundles, so this package must not import the checkpoint module at import time.
"""
