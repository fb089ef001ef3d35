"""Builders shared by the registry tests: a tiny pipeline, records, a fleet of versions."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from retrain.notify import Notification
from retrain.registry import ModelRegistry

FEATURES = ["x1", "x2", "segment"]


def make_data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "segment": rng.choice(["a", "b", "c"], size=n),
        }
    )
    label = ((frame["x1"] + 0.5 * frame["x2"]) > 0).astype(int)
    return frame, label


def make_pipeline_model(estimator: Any = None) -> Pipeline:
    frame, label = make_data()
    features = make_column_transformer(
        (StandardScaler(), ["x1", "x2"]),
        (OneHotEncoder(handle_unknown="ignore"), ["segment"]),
    )
    return make_pipeline(features, estimator or LogisticRegression()).fit(frame, label)


def record(retraining_id: str = "retrain_20240115_001", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "algorithm": "LogisticRegression",
        "training_data_version": "2024-01-15",
        "metrics": {"accuracy": 0.913, "precision": 0.892, "recall": 0.875},
        "features": FEATURES,
        "retraining_id": retraining_id,
        "trigger_reasons": ["weekly_retraining: days_since_training 8 > 7"],
        "gate": "passed",
        "watermark": "2024-01-15T01:59:00+00:00",
    }
    data.update(overrides)
    return data


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, notification: Notification) -> None:
        self.sent.append(notification)


class BrokenPredict(ClassifierMixin, BaseEstimator):
    """Fits, then refuses to predict."""

    def fit(self, frame: Any, y: Any) -> BrokenPredict:
        self.classes_ = np.unique(y)
        return self

    def predict(self, frame: Any) -> Any:
        raise ValueError("this model cannot predict")


class Majority(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; a type skops does not trust unless told to."""

    def fit(self, frame: Any, y: Any) -> Majority:
        self.classes_ = np.unique(y)
        self.majority_ = int(np.bincount(np.asarray(y)).argmax())
        return self

    def predict(self, frame: Any) -> Any:
        return np.full(len(frame), self.majority_)


class LosesStateWhenSaved(Majority):
    """Predicts in memory but drops its fitted state when serialised (fails after loading)."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("majority_", None)
        return state


class Fleet:
    """Registers versions of one model and drives them through the status flow."""

    def __init__(self, registry: ModelRegistry, model: Pipeline, example: pd.DataFrame) -> None:
        self.registry = registry
        self.model = model
        self.example = example
        self.count = 0

    def register(
        self, *, model: Any = None, profile: dict[str, Any] | None = None, **overrides: Any
    ) -> int:
        """A new staging version (``profile``: the drift reference profile stored with it)."""
        self.count += 1
        info = self.registry.register(
            model if model is not None else self.model,
            input_example=self.example,
            record=record(f"retrain_{self.count:03d}", **overrides),
            idempotency_key=f"{self.registry.name}:{self.count}:{uuid.uuid4().hex}",
            reference_profile=profile,
        )
        return info.version

    def to_production(self, **overrides: Any) -> int:
        version = self.register(**overrides)
        self.registry.promote(version, "canary", reason="canary checks")
        self.registry.promote(version, "production", reason="canary healthy")
        return version

    def bring_to(self, status: str) -> int:
        """A version in ``status``; unless it is production, another version serves."""
        if status == "production":
            return self.to_production()
        if status == "rolled_back":
            self.to_production()
            version = self.to_production()
            self.registry.rollback(reason="set-up: roll back")
            return version
        if status == "archived":
            version = self.to_production()
            self.to_production()
            return version
        self.to_production()
        version = self.register()
        if status == "canary":
            self.registry.promote(version, "canary", reason="set-up")
        elif status == "rejected":
            self.registry.reject(version, reason="set-up")
        return version


def config_dict(tracking_uri: str, name: str) -> dict[str, Any]:
    return {
        "model": {
            "name": name,
            "target": "label",
            "features": {"numeric": ["x1", "x2"], "categorical": ["segment"]},
        },
        "data": {"source": {"kind": "parquet", "path": "/tmp/none", "event_time_column": "t"}},
        "registry": {"tracking_uri": tracking_uri, "request_timeout_seconds": 5},
    }
