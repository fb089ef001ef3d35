"""Fixtures shared by the registry tests: a fitted pipeline, its input example, a registry with
a recording notifier and a fleet of its versions (builders in :mod:`tests.registry_builders`)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from retrain.config import RetrainConfig
from retrain.registry import ModelRegistry
from tests.registry_builders import Fleet, RecordingNotifier, make_data, make_pipeline_model


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture(scope="module")
def example() -> pd.DataFrame:
    return make_data(20, seed=1)[0]


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def registry(
    make_config: Callable[..., RetrainConfig], notifier: RecordingNotifier
) -> ModelRegistry:
    return ModelRegistry(make_config(), actor="tester", notifier=notifier)


@pytest.fixture
def fleet(registry: ModelRegistry, fitted: Pipeline, example: pd.DataFrame) -> Fleet:
    return Fleet(registry, fitted, example)
