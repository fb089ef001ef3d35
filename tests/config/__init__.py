"""Tests of the ``retrain.config`` package, one file per module."""
