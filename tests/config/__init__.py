"""Tests of the ``retrain.config`` package, one file per module."""

from __future__ import annotations
