"""Tests of :mod:`retrain.registry`, one file per module of the package."""
