from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrain.errors import ConfigError, DataError
from retrain.serialization import skops_io
from retrain.train import (
    build_pipeline,
    load_estimator_class,
    load_trained,
    preprocessing_fingerprint,
    time_split,
    train,
)
from tests.helpers import churn_config
from tools.synthetic import NUMERIC, StreamSpec, generate_week

FRAME = pd.concat(
    [generate_week(StreamSpec(rows_per_week=600, drift_week=None), w) for w in range(2)],
    ignore_index=True,
)


def native(**params: object) -> dict[str, object]:
    """The ``model`` section for native categorical encoding (HistGradientBoosting)."""
    return {
        "categorical_encoding": "native",
        "estimator": {
            "class": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 50, **params},
        },
    }


class TestBuildPipeline:
    def test_preprocessing_and_estimator_from_config(self) -> None:
        pipeline = build_pipeline(churn_config(Path("/u")))
        assert list(pipeline.named_steps) == ["preprocess", "model"]
        assert pipeline.named_steps["model"].max_iter == 50
        assert pipeline.named_steps["model"].random_state == 42, "seed from model.random_state"

    def test_any_sklearn_estimator(self) -> None:
        config = churn_config(
            Path("/u"),
            model={
                "estimator": {
                    "class": "sklearn.linear_model.LogisticRegression",
                    "params": {"C": 0.5},
                }
            },
        )
        assert build_pipeline(config).named_steps["model"].C == 0.5

    @pytest.mark.parametrize(
        ("model", "fragment"),
        [
            pytest.param(
                {"estimator": {"class": "sklearn.ensemble.NoSuchModel"}},
                "cannot import",
                id="class that does not exist",
            ),
            pytest.param(
                {"estimator": {"class": "sklearn.utils.shuffle"}},
                "is not an estimator class",
                id="a function, not an estimator",
            ),
            pytest.param(
                {
                    "estimator": {
                        "class": "sklearn.linear_model.LogisticRegression",
                        "params": {"bogus": 1},
                    }
                },
                "model.estimator.params.bogus: not a parameter of "
                "sklearn.linear_model.LogisticRegression",
                id="unknown parameter",
            ),
            pytest.param(
                {
                    "estimator": {
                        "class": "sklearn.linear_model.LogisticRegression",
                        "params": {"C": -1, "tol": "x"},
                    }
                },
                r"model.estimator.params.(C|tol): must be",
                id="a value the class's constraints refuse",
            ),
            pytest.param(
                native(max_bins=1000),
                r"model.estimator.params.max_bins: must be an int in the range \[2, 255\]",
                id="native encoding, too many bins",
            ),
            pytest.param(
                {
                    "categorical_encoding": "native",
                    "estimator": {"class": "sklearn.linear_model.LogisticRegression"},
                },
                r"model.categorical_encoding: 'native' needs an estimator with a "
                r"categorical_features parameter .*LogisticRegression",
                id="native encoding, estimator without native categories",
            ),
            pytest.param(
                native(categorical_features=[0]),
                "model.estimator.params.categorical_features: set by",
                id="native encoding, categorical_features set by hand",
            ),
        ],
    )
    def test_a_bad_model_section_is_a_config_error(
        self, model: dict[str, object], fragment: str
    ) -> None:
        with pytest.raises(ConfigError, match=fragment):
            build_pipeline(churn_config(Path("/u"), model=model))


class TestLoadEstimatorClass:
    def test_only_from_an_allowed_module(self) -> None:
        with pytest.raises(ConfigError, match=r"'os\.path\.join' is not in an allowed module"):
            load_estimator_class("os.path.join")
        assert load_estimator_class("sklearn.tree.DecisionTreeClassifier").__name__ == (
            "DecisionTreeClassifier"
        )


class TestTrain:
    def test_time_based_holdout_is_the_newest_slice(self) -> None:
        older, newest = time_split(FRAME.sample(frac=1, random_state=0), "event_time", 0.25)
        assert len(newest) == 300
        assert older["event_time"].max() <= newest["event_time"].min()

    def test_fit_save_and_reload_predicts_identically(self, tmp_path: Path) -> None:
        config = churn_config(Path("/u"))
        result = train(config, FRAME, out_dir=tmp_path)
        assert result.train_rows + result.holdout_rows == len(FRAME)
        assert (
            result.algorithm == "sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
            "HistGradientBoostingClassifier"
        )
        model = load_trained(result)
        holdout = pd.read_parquet(result.holdout_path)
        features = config.model.features.all
        assert (model.predict(holdout[features]) == model.predict(holdout[features])).all()
        assert preprocessing_fingerprint(model) == result.preprocessing_fingerprint
        assert result.train_end is not None and result.holdout_start is not None
        assert result.train_end <= result.holdout_start

    def test_the_model_file_is_skops_and_loads_only_its_recorded_types(
        self, tmp_path: Path
    ) -> None:
        fit = train(churn_config(Path("/u")), FRAME, out_dir=tmp_path)
        result = fit.to_dict()
        assert result["model_path"].endswith(".skops")
        assert any(t.endswith(".TreePredictor") for t in result["trusted_types"])
        # a file swapped for one holding another type is refused, not executed
        Path(result["model_path"]).write_bytes(skops_io().dumps(Swapped()))

        with pytest.raises(Exception, match="Untrusted types"):
            load_trained(fit)

    def test_a_missing_model_file_is_named(self, tmp_path: Path) -> None:
        fit = train(churn_config(Path("/u")), FRAME, out_dir=tmp_path)
        Path(fit.to_dict()["model_path"]).unlink()

        with pytest.raises(DataError, match=r"trained model not found: .*model\.skops"):
            load_trained(fit)

    def test_training_is_reproducible(self, tmp_path: Path) -> None:
        config = churn_config(Path("/u"))
        a = train(config, FRAME, out_dir=tmp_path / "a")
        b = train(config, FRAME, out_dir=tmp_path / "b")
        holdout = pd.read_parquet(a.holdout_path)
        pa, pb = load_trained(a), load_trained(b)
        features = config.model.features.all
        assert (pa.predict_proba(holdout[features]) == pb.predict_proba(holdout[features])).all()

    def test_missing_values_are_imputed_inside_the_pipeline(self, tmp_path: Path) -> None:
        frame = FRAME.copy()
        frame.loc[::7, NUMERIC[0]] = float("nan")
        frame.loc[::5, "contract"] = None
        config = churn_config(
            Path("/u"),
            model={"estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}}},
        )
        result = train(config, frame, out_dir=tmp_path)
        model = load_trained(result)
        assert len(model.predict(frame[config.model.features.all])) == len(frame)

    def test_fingerprint_changes_with_the_data(self, tmp_path: Path) -> None:
        config = churn_config(Path("/u"))
        a = train(config, FRAME, out_dir=tmp_path / "a")
        b = train(config, FRAME.iloc[:900], out_dir=tmp_path / "b")
        assert a.preprocessing_fingerprint != b.preprocessing_fingerprint


class Swapped:
    """Not a type the trained model contains."""


class TestNativeCategoricalEncoding:
    def test_numerics_go_through_unscaled_and_categoricals_become_codes(self) -> None:
        pipeline = build_pipeline(churn_config(Path("/u"), model=native()))
        preprocess = pipeline.named_steps["preprocess"]
        kinds = {name: step for name, step, _ in preprocess.transformers}
        assert type(kinds["numeric"]).__name__ == "FunctionTransformer"
        x = FRAME[NUMERIC].iloc[:5]
        assert (kinds["numeric"].fit_transform(x) == x.to_numpy(dtype="float64")).all()
        assert type(kinds["categorical"]).__name__ == "OrdinalEncoder"
        # the categoricals come after the five numerics in the matrix
        assert pipeline.named_steps["model"].categorical_features == [5, 6, 7]

    def test_one_column_per_feature_and_as_accurate_as_one_hot(self, tmp_path: Path) -> None:
        onehot = churn_config(Path("/u"))
        config = churn_config(Path("/u"), model=native())
        a = train(onehot, FRAME, out_dir=tmp_path / "onehot")
        b = train(config, FRAME, out_dir=tmp_path / "native")
        holdout = pd.read_parquet(b.holdout_path)
        features, target = config.model.features.all, config.model.target
        model_a, model_b = load_trained(a), load_trained(b)
        assert model_b.named_steps["preprocess"].transform(holdout[features]).shape[1] == 8
        assert model_a.named_steps["preprocess"].transform(holdout[features]).shape[1] > 8
        accuracy_a = (model_a.predict(holdout[features]) == holdout[target]).mean()
        accuracy_b = (model_b.predict(holdout[features]) == holdout[target]).mean()
        assert accuracy_b > 0.85
        assert accuracy_b >= accuracy_a - 0.03

    def test_missing_and_unseen_values_are_treated_as_missing(self, tmp_path: Path) -> None:
        frame = FRAME.copy()
        frame.loc[::7, NUMERIC[0]] = float("nan")
        frame.loc[::5, "contract"] = None
        config = churn_config(Path("/u"), model=native())
        model = load_trained(train(config, frame, out_dir=tmp_path))
        rows = frame[config.model.features.all].iloc[:200].copy()
        unseen, missing = rows.copy(), rows.copy()
        unseen["contract"] = "brand-new-contract"
        missing["contract"] = None
        assert (model.predict_proba(unseen) == model.predict_proba(missing)).all()
        assert not (model.predict_proba(rows) == model.predict_proba(missing)).all()

    def test_nullable_numeric_columns_are_read_as_float(self, tmp_path: Path) -> None:
        config = churn_config(Path("/u"), model=native())
        model = load_trained(train(config, FRAME, out_dir=tmp_path))
        rows = FRAME[config.model.features.all].iloc[:50].copy()
        expected = rows.copy()
        expected.loc[rows.index[::3], NUMERIC[0]] = float("nan")
        nullable = rows.astype({NUMERIC[0]: "Float64"})
        nullable.loc[rows.index[::3], NUMERIC[0]] = pd.NA
        assert (model.predict_proba(nullable) == model.predict_proba(expected)).all()

    def test_max_bins_as_a_numpy_integer_limits_the_codes(self) -> None:
        import numpy as np

        config = churn_config(Path("/u"), model=native(max_bins=np.int64(16)))
        preprocess = build_pipeline(config).named_steps["preprocess"]
        assert (
            dict((n, t) for n, t, _ in preprocess.transformers)["categorical"].max_categories == 16
        )

    def test_categories_beyond_max_bins_share_the_last_code(self, tmp_path: Path) -> None:
        frame = FRAME.copy()
        frame["contract"] = [f"c{i % 40}" for i in range(len(frame))]
        config = churn_config(Path("/u"), model=native(max_bins=16))
        model = load_trained(train(config, frame, out_dir=tmp_path))
        codes = model.named_steps["preprocess"].transform(frame[config.model.features.all])[:, 5]
        assert set(codes) == set(range(16)), "16 codes: 15 categories + the infrequent rest"
