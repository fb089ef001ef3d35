"""Tests of the retrain.drift package, one file per module."""

from __future__ import annotations
