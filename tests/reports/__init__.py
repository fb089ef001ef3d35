"""Tests of the retrain.reports package, one file per module."""

from __future__ import annotations
