"""Tests of :mod:`retrain.pipeline` across its steps."""
