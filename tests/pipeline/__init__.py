"""Tests of retrain.pipeline, one file per module."""
