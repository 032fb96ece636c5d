"""Evaluation without downloads: Fréchet distance, precision/recall and the rest, in the feature space of a
per-dataset feature network (a model like the others: training.models.featurenet)."""
