"""Recipes that train many bundles: the experiment groups the Experiments page compares (experiments) and the
shipped checkpoints (rebuild)."""
