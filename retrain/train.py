"""Preprocess + train: one scikit-learn Pipeline built from the config.

``Pipeline([("preprocess", ColumnTransformer(...)), ("model", estimator)])``: the fitted
preprocessing travels inside the model, so evaluation and serving transform exactly as training
did. The newest ``data.holdout_fraction`` of rows (by event time) is held out for evaluation.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import numbers
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils import check_array

from retrain.config import RetrainConfig
from retrain.data import select_columns, write_frame
from retrain.errors import ConfigError, DataError
from retrain.handoff import recall, remember
from retrain.search import SearchResult, prefixed, search, search_space
from retrain.serialization import dumps_trusted, load_trusted

__all__ = [
    "TrainResult",
    "build_pipeline",
    "load_estimator_class",
    "load_trained",
    "make_estimator",
    "preprocessing_fingerprint",
    "time_split",
    "train",
]

MAX_ONE_HOT_CATEGORIES = 50
MAX_NATIVE_CATEGORIES = 255  # HistGradientBoosting: codes below max_bins (<= 255)


@dataclass(frozen=True)
class TrainResult:
    """The fitted model on disk, the holdout it was not trained on, and timings."""

    model_path: str
    holdout_path: str
    trusted_types: list[str]
    train_rows: int
    holdout_rows: int
    train_start: str | None
    train_end: str | None
    holdout_start: str | None
    holdout_end: str | None
    fit_seconds: float
    algorithm: str
    params: dict[str, Any]
    preprocessing_fingerprint: str
    #: The full rebuild's hyperparameter search (``model.search``), when one ran.
    search: SearchResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_estimator_class(path: str, *, allowed_modules: Sequence[str] = ("sklearn",)) -> type[Any]:
    """Import a scikit-learn compatible estimator class from its dotted path, only from one of
    ``allowed_modules`` (each with its submodules; the config checks this at load too)."""
    module_name, _, name = path.rpartition(".")
    prefixes = [m.rstrip(".") for m in allowed_modules]
    if not any(module_name == p or module_name.startswith(p + ".") for p in prefixes):
        raise ConfigError(
            [
                f"model.estimator.class: {path!r} is not in an allowed module "
                f"(model.estimator.allowed_modules: {', '.join(prefixes)})"
            ]
        )
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError([f"model.estimator.class: cannot import {path!r}: {exc}"]) from None
    if not inspect.isclass(cls) or not all(hasattr(cls, m) for m in ("fit", "predict")):
        raise ConfigError(
            [f"model.estimator.class: {path!r} is not an estimator class with fit() and predict()"]
        )
    return cls


_PARAMETER = re.compile(r"The '(?P<name>\w+)' parameter of \w+ (?P<rule>.*)", re.DOTALL)


def make_estimator(config: RetrainConfig, params: Mapping[str, Any], cls: type[Any]) -> Any:
    """``cls(**params)``, its parameters checked against the class first: every name the class
    does not take, then every value its parameter constraints refuse (scikit-learn's own
    validation, which otherwise runs only inside ``fit``), each a :class:`ConfigError` naming
    ``model.estimator.params.<name>``."""
    path = config.model.estimator.class_path
    accepted = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [name for name in params if name not in accepted and not takes_any]
    if unknown:
        names = ", ".join(sorted(accepted))
        raise ConfigError(
            [
                f"model.estimator.params.{name}: not a parameter of {path} (it takes: {names})"
                for name in unknown
            ]
        )
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"model.estimator.params: {path}: {exc}"]) from None
    if hasattr(estimator, "_parameter_constraints") and hasattr(estimator, "_validate_params"):
        try:
            estimator._validate_params()
        except (TypeError, ValueError) as exc:  # sklearn's InvalidParameterError is both
            raise ConfigError([_parameter_problem(config, str(exc))]) from None
    return estimator


def _parameter_problem(config: RetrainConfig, message: str) -> str:
    """scikit-learn's "The 'C' parameter of X must be ..." as the key the value came from."""
    found = _PARAMETER.match(message)
    if found is None:
        return f"model.estimator.params: {message}"
    name = found["name"]
    if name in config.model.estimator.params:
        key = f"model.estimator.params.{name}"
    elif name == "random_state":
        key = "model.random_state"
    elif name == "categorical_features":
        key = "model.categorical_encoding"
    else:
        key = "model.estimator.params"
    return f"{key}: {found['rule'].strip()} ({config.model.estimator.class_path})"


def build_pipeline(config: RetrainConfig) -> Pipeline:
    """The unfitted preprocessing + estimator pipeline described by ``config.model``.

    ``categorical_encoding: onehot`` imputes and scales the numerics and one-hot encodes the
    categoricals, for any estimator. ``native`` hands the numerics over as they are (as float64,
    missing values included) and the categoricals as ordinal codes, and tells the estimator which
    columns those are (``categorical_features``): unseen values are treated as missing, the
    rarest categories beyond ``max_bins`` share one code.

    The estimator's class and parameters are checked here, before anything is fitted (and by
    ``retrain config validate``): a bad one is a :class:`ConfigError` naming its key and the
    config file.
    """
    try:
        return _build_pipeline(config)
    except ConfigError as exc:
        if exc.source is not None or config.source_path is None:
            raise
        raise ConfigError(exc.problems, source=str(config.source_path)) from None


def _build_pipeline(config: RetrainConfig) -> Pipeline:
    model = config.model
    cls = load_estimator_class(
        model.estimator.class_path, allowed_modules=model.estimator.allowed_modules
    )
    params = dict(model.estimator.params)
    accepted = inspect.signature(cls).parameters
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = model.random_state
    native = model.categorical_encoding == "native"
    if native:
        params["categorical_features"] = _native_categorical_columns(config, accepted, params)
    estimator = make_estimator(config, params, cls)
    if model.search is not None:
        search_space(model.search.space, estimator)  # names and values, before any fit
    transformers: list[tuple[str, Any, list[str]]] = []
    if model.features.numeric:
        numeric: Any = (
            _as_float()
            if native
            else Pipeline(
                [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
            )
        )
        transformers.append(("numeric", numeric, list(model.features.numeric)))
    if model.features.categorical:
        categorical = (
            _ordinal_encoder(estimator.get_params().get("max_bins", MAX_NATIVE_CATEGORIES))
            if native
            else _one_hot_encoder()
        )
        transformers.append(("categorical", categorical, list(model.features.categorical)))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _native_categorical_columns(
    config: RetrainConfig, accepted: Mapping[str, Any], params: Mapping[str, Any]
) -> list[int]:
    """The positions of the categorical columns in the preprocessed matrix (numerics first)."""
    model = config.model
    if "categorical_features" not in accepted:
        raise ConfigError(
            [
                f"model.categorical_encoding: 'native' needs an estimator with a "
                f"categorical_features parameter (HistGradientBoostingClassifier has one); "
                f"{model.estimator.class_path!r} has none: use 'onehot'"
            ]
        )
    if "categorical_features" in params:
        raise ConfigError(
            [
                "model.estimator.params.categorical_features: set by model.categorical_encoding:"
                " native from model.features.categorical; remove it"
            ]
        )
    first = len(model.features.numeric)
    return list(range(first, first + len(model.features.categorical)))


def _one_hot_encoder() -> Any:

    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            (
                "encode",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_ONE_HOT_CATEGORIES,
                    sparse_output=False,
                ),
            ),
        ]
    )


def _as_float() -> Any:
    """The numerics as they are, as float64 (pandas' ``NA`` in a nullable column becomes NaN)."""

    return FunctionTransformer(
        check_array,
        kw_args={"dtype": "float64", "ensure_all_finite": False},
        feature_names_out="one-to-one",
    )


def _ordinal_encoder(max_bins: Any) -> Any:
    """Codes ``0 .. max_bins - 1`` (the rarest categories share the last); NaN and unseen
    values: NaN, which a native-categorical estimator treats as missing."""

    usable = isinstance(max_bins, numbers.Integral) and not isinstance(max_bins, bool)
    limit = int(max_bins) if usable and max_bins >= 2 else MAX_NATIVE_CATEGORIES
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=limit,
    )


def preprocessing_fingerprint(pipeline: Pipeline) -> str:
    """A stable hash of the fitted preprocessing step (its parameters and learned state)."""

    preprocess = pipeline.named_steps["preprocess"]
    digest = hashlib.sha256(repr(sorted(preprocess.get_params(deep=False).items())).encode())
    for name, transformer, columns in preprocess.transformers_:
        digest.update(f"{name}:{columns}".encode())
        for step in getattr(transformer, "steps", [(name, transformer)]):
            for attr in ("statistics_", "mean_", "scale_", "categories_"):
                value = getattr(step[1], attr, None)
                if value is None:
                    continue
                parts = value if isinstance(value, list) else [value]
                for part in parts:
                    digest.update(np.asarray(part).astype(str).tobytes())
    return digest.hexdigest()[:16]


def time_split(
    frame: pd.DataFrame, time_column: str, holdout_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (older rows, newest ``holdout_fraction`` of rows) by event time."""
    if frame[time_column].is_monotonic_increasing:  # extract writes it sorted: no sorted copy
        ordered = frame.reset_index(drop=True)
    else:
        ordered = frame.sort_values(time_column, kind="stable", ignore_index=True)
    n_holdout = max(1, round(len(ordered) * holdout_fraction))
    return ordered.iloc[:-n_holdout], ordered.iloc[-n_holdout:]


def _iso(frame: pd.DataFrame, column: str, which: str) -> str | None:
    if frame.empty:
        return None
    value = frame[column].min() if which == "min" else frame[column].max()
    return str(value.isoformat())


def train(
    config: RetrainConfig, frame: pd.DataFrame, *, out_dir: str | Path, tune: bool = False
) -> TrainResult:
    """Fit the pipeline on all but the newest slice; write the model and holdout to ``out_dir``.

    With ``tune`` (the full rebuild) and a ``model.search``, the search runs first on the
    training rows (never the holdout) and its best parameters are fitted when they beat the
    configured ones (:func:`retrain.search.search`).

    The model is written with skops, not pickle; :func:`load_trained` reads it back trusting
    only the types recorded here (``trusted_types``), so a swapped file cannot run code.
    """
    time_col = config.data.source.event_time_column
    features = config.model.features.all
    target = config.model.target
    train_part, holdout = time_split(frame, time_col, config.data.holdout_fraction)
    pipeline = build_pipeline(config)
    x, y = select_columns(train_part, features), train_part[target]
    searched = None
    if tune and config.model.search is not None:
        searched = _search(config, pipeline, x, y)
        pipeline.set_params(**prefixed(searched.chosen_params))
    started = time.perf_counter()
    pipeline.fit(x, y)
    fit_seconds = time.perf_counter() - started

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.skops"
    holdout_path = out / "holdout.parquet"
    with ThreadPoolExecutor(1) as pool:  # parquet is written mostly outside the GIL
        written = pool.submit(write_frame, holdout, holdout_path)
        data, trusted = dumps_trusted(pipeline)
        model_path.write_bytes(data)
        written.result()
    remember(model_path, pipeline)
    estimator = pipeline.named_steps["model"]
    return TrainResult(
        model_path=str(model_path),
        holdout_path=str(holdout_path),
        trusted_types=trusted,
        train_rows=len(train_part),
        holdout_rows=len(holdout),
        train_start=_iso(train_part, time_col, "min"),
        train_end=_iso(train_part, time_col, "max"),
        holdout_start=_iso(holdout, time_col, "min"),
        holdout_end=_iso(holdout, time_col, "max"),
        fit_seconds=round(fit_seconds, 3),
        algorithm=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        params={
            k: v
            for k, v in estimator.get_params(deep=False).items()
            if isinstance(v, int | float | str | bool) or v is None
        },
        preprocessing_fingerprint=preprocessing_fingerprint(pipeline),
        search=searched,
    )


def _search(
    config: RetrainConfig, pipeline: Pipeline, x: pd.DataFrame, y: pd.Series
) -> SearchResult:
    """:func:`retrain.search.search` with the config's settings (the space was checked by
    :func:`build_pipeline`, whose error names the config file)."""
    settings = config.model.search
    assert settings is not None
    return search(
        pipeline, x, y, settings, seed=config.model.random_state, average=config.evaluation.average
    )


def load_trained(trained: TrainResult) -> Any:
    """The model :func:`train` wrote (the fitted object itself inside ``retrain run``)."""
    path = trained.model_path
    shared = recall(path)  # the fitted object itself inside ``retrain run``
    if shared is not None:
        return shared
    try:
        return load_trusted(path, trained.trusted_types)
    except FileNotFoundError:
        raise DataError([f"trained model not found: {path}"]) from None
