"""The schema of a retraining config: one frozen pydantic model per section of the YAML file.

Every section forbids unknown keys and is immutable; field docstrings and descriptions are the
reference documentation (``retrain.config.reference``). Rule conditions are parsed by the
``retrain.conditions`` grammar, never evaluated. :class:`RetrainConfig` is the whole file: only
``model``, ``data`` and ``registry`` are required, every other section has defaults.

Reading files, ``${VAR}`` expansion and error messages live in ``retrain.config.loader``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from retrain.conditions import Condition, parse_condition
from retrain.constants import Action

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
Metric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
DriftStatistic = Literal["psi", "js", "wasserstein", "missing_rate", "unseen_share"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_DOTTED = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
_MODULE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.?$"
_PARAM = r"^[A-Za-z_][A-Za-z0-9_]*$"

#: Longest window, interval or look-back in days (ten years).
MAX_DAYS = 3650
#: Largest seed: numpy and scikit-learn take seeds below 2**32.
MAX_SEED = 2**32 - 1

Fraction = Annotated[float, Field(ge=0, le=1)]
Days = Annotated[float, Field(gt=0, le=MAX_DAYS)]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are frozen, docstrings document."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
        allow_inf_nan=False,  # no setting is infinite or NaN: every float is a finite number
    )


# --- model -------------------------------------------------------------------------------------


class Features(Section):
    """Feature columns by kind."""

    numeric: list[Annotated[str, Field(min_length=1)]] = []
    """Numeric feature columns (median-imputed and scaled with onehot encoding)."""

    categorical: list[Annotated[str, Field(min_length=1)]] = []
    """Categorical feature columns (encoded per model.categorical_encoding)."""

    @model_validator(mode="after")
    def _distinct(self) -> Features:
        if not self.numeric and not self.categorical:
            raise ValueError("at least one numeric or categorical feature is required")
        seen: set[str] = set()
        for name in [*self.numeric, *self.categorical]:
            if name in seen:
                raise ValueError(f"feature {name!r} is listed twice")
            seen.add(name)
        return self

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def _default_modules() -> list[str]:
    return ["sklearn"]


class Estimator(Section):
    """A scikit-learn compatible estimator given by dotted class path and constructor params.

    The class path is checked against ``allowed_modules`` when the config loads, without
    importing anything; the parameters are checked against the class (names and values) when it
    is imported: by ``retrain config validate`` and before training.
    """

    allowed_modules: list[Annotated[str, Field(pattern=_MODULE)]] = Field(
        default_factory=_default_modules, min_length=1
    )
    """Modules the estimator class may be imported from, each with its submodules (`sklearn`
    allows `sklearn.ensemble.*`, not `sklearnx`). Add e.g. `xgboost` or `lightgbm` for their
    scikit-learn estimators; a class outside these is refused at load and never imported."""

    class_path: str = Field(
        "sklearn.ensemble.HistGradientBoostingClassifier",
        alias="class",
        pattern=_DOTTED,
        validate_default=True,
    )
    """Dotted path of a scikit-learn compatible classifier class (in `allowed_modules`)."""

    params: dict[Annotated[str, Field(pattern=_PARAM)], Any] = {}
    """Constructor parameters of the estimator (checked against the class when it is imported)."""

    @field_validator("class_path")
    @classmethod
    def _allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = info.data.get("allowed_modules")
        if allowed is None:  # allowed_modules is invalid itself: reported on its own
            return value
        module = value.rpartition(".")[0]
        prefixes = [name.rstrip(".") for name in allowed]
        if not any(module == p or module.startswith(p + ".") for p in prefixes):
            raise ValueError(
                f"{value!r} is not in an allowed module (model.estimator.allowed_modules: "
                f"{', '.join(prefixes)}); estimator classes are imported only from those "
                "modules: add the module there if you trust it"
            )
        return value


Distribution = Literal["uniform", "loguniform", "randint"]


class ParamRange(Section):
    """A range to sample a parameter from: scipy's ``uniform`` (``low`` to ``high``),
    ``loguniform`` (``low`` > 0) or ``randint`` (integers ``low`` to ``high``, both included)."""

    distribution: Distribution
    """`uniform`, `loguniform` (`low` > 0) or `randint` (whole numbers, both ends included)."""

    low: float
    """The smallest value."""

    high: float
    """The largest value (above `low`)."""

    @model_validator(mode="after")
    def _ordered(self) -> ParamRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.distribution == "loguniform" and self.low <= 0:
            raise ValueError(f"loguniform needs low > 0, got {self.low:g}")
        if self.distribution == "randint" and not (
            float(self.low).is_integer() and float(self.high).is_integer()
        ):
            raise ValueError("randint needs whole-number low and high")
        return self


SearchMethod = Literal["halving_random", "random", "grid"]


def _space_kind(value: Any) -> str:
    """A mapping (or a parsed range) is a range, anything else a list of values."""
    return "range" if isinstance(value, dict | ParamRange) else "values"


#: A list of values or a range: one problem per bad entry, not one per alternative.
SpaceValue = Annotated[
    Annotated[list[Any], Field(min_length=1), Tag("values")] | Annotated[ParamRange, Tag("range")],
    Discriminator(_space_kind),
]


class SearchSettings(Section):
    """The full rebuild's hyperparameter search (scikit-learn's searches over the whole
    preprocessing + estimator pipeline, so every candidate is preprocessed as it would train).

    The configured ``model.estimator.params`` are scored on the same folds; the search's best
    replaces them only when it scores higher.
    """

    method: SearchMethod = Field(
        "halving_random",
        description="halving_random: successive halving over sampled candidates "
        "(HalvingRandomSearchCV, the cheapest); random: RandomizedSearchCV; grid: GridSearchCV "
        "over every combination (lists only)",
    )
    space: dict[Annotated[str, Field(pattern=_PARAM)], SpaceValue] = Field(min_length=1)
    """Estimator parameter -> a list of values or a range (`{distribution: loguniform, low:
    0.01, high: 0.3}`); names are checked against the estimator class."""

    budget: int = Field(20, ge=1, le=10_000)
    """Candidates tried: halving_random's first round, random's iterations; grid: the most
    combinations allowed (a larger grid is an error)."""

    cv_folds: int = Field(3, ge=2, le=20, description="stratified folds scoring each candidate")
    scoring: Metric = Field("accuracy", description="what the search maximises")
    n_jobs: int | None = Field(
        None, ge=-1, le=512, description="parallel fits (-1: every core; null: one)"
    )

    @model_validator(mode="after")
    def _grid_is_lists(self) -> SearchSettings:
        if self.method == "grid":
            ranges = sorted(k for k, v in self.space.items() if isinstance(v, ParamRange))
            if ranges:
                raise ValueError(
                    f"method grid takes lists of values only; {', '.join(ranges)} "
                    "given as ranges (use halving_random or random)"
                )
            size = 1
            for values in self.space.values():
                size *= len(values) if isinstance(values, list) else 1
            if size > self.budget:
                raise ValueError(
                    f"the grid has {size} combinations, more than budget {self.budget}: "
                    "raise budget or shrink the space"
                )
        return self


class ModelSettings(Section):
    """Which model is retrained: registered name, label, features, estimator."""

    name: str = Field(pattern=_NAME, description="registered model name in MLflow")
    target: str = Field(min_length=1, description="label column")
    features: Features
    estimator: Estimator = Estimator()
    categorical_encoding: Literal["onehot", "native"] = Field(
        "onehot",
        description="onehot: impute, scale numerics, one-hot categoricals (any estimator); "
        "native: numerics as they are and categoricals as ordinal codes for an estimator that "
        "handles missing values and categories itself (categorical_features, e.g. "
        "HistGradientBoostingClassifier): a fraction of the memory, several times faster",
    )
    random_state: int = Field(42, ge=0, le=MAX_SEED, description="seed for every random step")
    search: SearchSettings | None = Field(
        None,
        description="hyperparameter search of the full rebuild (none: the full rebuild fits "
        "model.estimator.params as the weekly run does)",
    )

    @model_validator(mode="after")
    def _target_not_feature(self) -> ModelSettings:
        if self.target in self.features.all:
            raise ValueError(f"target {self.target!r} must not also be a feature")
        return self


# --- data --------------------------------------------------------------------------------------


class ParquetSource(Section):
    """Parquet file, directory or dataset; local path or fsspec/pyarrow URL."""

    kind: Literal["parquet"]
    """`parquet`: a file, directory or hive-partitioned dataset."""

    path: str = Field(min_length=1)
    """Local path (relative to the config file) or URL (s3://, gs://, any fsspec URL)."""

    event_time_column: str = Field(min_length=1)
    """Timestamp column: windows, new data and holdout are cut on it."""


class SqlSource(Section):
    """A SQL table or query, by SQLAlchemy URL or (inside Airflow) a connection id.

    Nothing of the config is pasted into SQL: ``table`` and ``event_time_column`` must be plain
    identifiers and are quoted by SQLAlchemy; the window is bound parameters; ``query`` must be
    one read (a single ``SELECT`` or ``WITH`` statement), read as a subquery in a read-only
    transaction where the database has one (PostgreSQL, SQLite).
    """

    kind: Literal["sql"]
    """`sql`: a table or query through SQLAlchemy."""

    url: str | None = None
    """SQLAlchemy URL (use ${VAR} for secrets); or give conn_id."""

    conn_id: str | None = None
    """Airflow connection id, resolved by the DAG tasks (outside Airflow use url)."""

    table: str | None = None
    """Table to read; or give query."""

    query: str | None = None
    """SELECT to read from (wrapped as a subquery); or give table."""

    event_time_column: str = Field(min_length=1)
    """Timestamp column: windows, new data and holdout are cut on it."""

    @field_validator("event_time_column")
    @classmethod
    def _plain_column(cls, value: str) -> str:
        problem = cls.identifier_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("table")
    @classmethod
    def _plain_table(cls, value: str | None) -> str | None:
        if value is not None:
            parts = value.split(".")
            problems = [cls.identifier_problem(p) for p in parts] if len(parts) <= 2 else ["x"]
            if any(problems):
                raise ValueError(
                    f"{value!r} is not a table name: give `name` or `schema.name`, each of "
                    "letters, digits and underscores (not starting with a digit, at most 63)"
                )
        return value

    @field_validator("query")
    @classmethod
    def _one_read(cls, value: str | None) -> str | None:
        problem = None if value is None else cls.query_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> SqlSource:
        if (self.url is None) == (self.conn_id is None):
            raise ValueError("give exactly one of 'url' or 'conn_id'")
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    @staticmethod
    def identifier_problem(name: str) -> str | None:
        """Why ``name`` is not a plain SQL identifier, or ``None``."""
        plain = (
            0 < len(name) <= 63
            and name.isascii()
            and (name[0].isalpha() or name[0] == "_")
            and all(c.isalnum() or c == "_" for c in name)
        )
        if plain:
            return None
        return (
            f"{name!r} is not a plain column name: letters, digits and underscores only, not "
            "starting with a digit, at most 63 (it is quoted by SQLAlchemy, never pasted into SQL)"
        )

    def sql_problems(self) -> list[str]:
        """Every ``data.source.<key>: problem`` of the SQL values (what the validators check),
        for a reader that must not trust that this object was validated."""
        problems = []
        column = self.identifier_problem(self.event_time_column)
        if column:
            problems.append(f"data.source.event_time_column: {column}")
        if self.table is not None:
            parts = self.table.split(".")
            if len(parts) > 2 or any(self.identifier_problem(p) for p in parts):
                problems.append(f"data.source.table: {self.table!r} is not a table name")
        if self.query is not None:
            query = self.query_problem(self.query)
            if query:
                problems.append(f"data.source.query: {query}")
        return problems

    def read_statement(self) -> str | None:
        """``query`` without its trailing ``;`` (to be wrapped as a subquery)."""
        if self.query is None:
            return None
        code, _ = self._code(self.query, backslash=False)
        end = len(code.rstrip())
        if end and code[end - 1] == ";":
            return self.query[: end - 1]
        return self.query

    @classmethod
    def query_problem(cls, query: str) -> str | None:
        """Why ``query`` is not one read-only ``SELECT``/``WITH`` statement, or ``None``.

        SQL text is scanned with strings, quoted names and comments blanked out, once with and
        once without backslash escapes in strings (databases differ), and must hold one
        statement (at most a trailing ``;``), start with ``SELECT`` or ``WITH`` and hold no word
        that writes (:meth:`writing_words`).
        """
        for backslash in (False, True):
            code, unclosed = cls._code(query, backslash=backslash)
            if unclosed:
                return f"must be one complete statement: {unclosed} is not closed"
            body = code.rstrip()
            body = body[:-1] if body.endswith(";") else body
            if ";" in body:
                return (
                    "must be one statement: found ';' before its end (one SELECT or WITH, "
                    "read as a subquery)"
                )
            words = cls._words(body)
            if not words:
                return "must be one SELECT or WITH statement, found no statement"
            if words[0] not in {"select", "with"}:
                return f"must be a read: one SELECT or WITH statement, found {words[0].upper()}"
            writes = sorted(set(words) & cls.writing_words())
            if writes:
                return (
                    "must only read: found " + ", ".join(w.upper() for w in writes) + " (run "
                    "changes elsewhere; the query is read in a read-only transaction)"
                )
        return None

    @staticmethod
    def writing_words() -> frozenset[str]:
        """SQL words that change data, schema or session: a query holding one (outside strings,
        quoted names and comments) is not a read."""
        return frozenset(
            {
                "insert", "update", "delete", "merge", "upsert", "drop", "create", "alter",
                "truncate", "grant", "revoke", "copy", "call", "execute", "exec", "vacuum",
                "reindex", "into", "attach", "detach", "pragma",
            }
        )  # fmt: skip

    @staticmethod
    def _words(code: str) -> list[str]:
        """The words of SQL ``code`` (lower case), leaving out qualified names' parts."""
        words, word, dotted = [], "", False
        for i, c in enumerate(code + " "):
            if c.isalnum() or c in "_$":
                word += c
                continue
            if word:
                after = c == "." or (c.isspace() and code[i:].lstrip().startswith("."))
                if not (dotted or after) and not word[0].isdigit():
                    words.append(word.lower())
                word = ""
            if not c.isspace():
                dotted = c == "."
        return words

    @classmethod
    def _code(cls, query: str, *, backslash: bool) -> tuple[str, str | None]:
        """``query`` with string literals, quoted names and comments replaced by spaces, and
        what is left unclosed (``None`` if nothing)."""
        out: list[str] = []
        i = 0
        while i < len(query):
            stop = cls._skip(query, i, backslash=backslash)
            if isinstance(stop, str):
                return "", stop
            if stop == i:
                out.append(query[i])
                i += 1
            else:
                out.append(" " * (stop - i))
                i = stop
        return "".join(out), None

    @classmethod
    def _skip(cls, query: str, i: int, *, backslash: bool) -> int | str:
        """Where the comment, string or quoted name starting at ``i`` ends (``i`` if none starts
        there), or what is not closed."""
        c = query[i]
        if query.startswith("--", i):
            stop = query.find("\n", i)
            return len(query) if stop < 0 else stop
        if query.startswith("/*", i):
            return cls._comment_end(query, i)
        if c in "'\"`":
            return cls._quote_end(query, i, backslash=backslash and c == "'")
        if (
            c == "$"
            and not backslash
            and not (i and (query[i - 1].isalnum() or query[i - 1] == "_"))
        ):
            close = query.find("$", i + 1)
            tag = query[i : close + 1] if close > 0 else ""
            inner = tag[1:-1]
            if not tag or not all(ch.isalnum() or ch == "_" for ch in inner) or inner[:1].isdigit():
                return i  # not a dollar quote ($1 is a parameter)
            end = query.find(tag, close + 1)
            return f"a {tag} quote" if end < 0 else end + len(tag)
        return i

    @staticmethod
    def _comment_end(query: str, i: int) -> int | str:
        depth, stop = 0, i
        while stop < len(query):
            if query.startswith("/*", stop):
                depth, stop = depth + 1, stop + 2
            elif query.startswith("*/", stop):
                depth, stop = depth - 1, stop + 2
                if depth == 0:
                    return stop
            else:
                stop += 1
        return "a /* comment"

    @staticmethod
    def _quote_end(query: str, i: int, *, backslash: bool) -> int | str:
        quote, stop = query[i], i + 1
        while stop < len(query):
            if backslash and query[stop] == "\\":
                stop += 2
            elif query[stop] != quote:
                stop += 1
            elif query[stop + 1 : stop + 2] == quote:  # doubled: an escaped quote
                stop += 2
            else:
                return stop + 1
        return f"a {quote} quote"


class ValidationSettings(Section):
    """Data contract checked before training."""

    min_rows: int = Field(200, ge=1, le=10**9)
    """Fewest rows a training window may have."""

    max_duplicate_share: Fraction = 0.05
    """Largest share of fully duplicated rows."""

    max_missing_share: Fraction = Field(0.2, description="per-feature NaN share allowed")
    missing: dict[str, Literal["allow", "forbid"]] = Field(
        {}, description="per-column NaN policy overriding max_missing_share"
    )
    allowed_categories: dict[str, list[str]] = {}
    """Per column, the only categories allowed (others fail validation)."""

    unseen_categories: Literal["error", "warn"] = "warn"
    """Categories the production model never saw: `warn` or `error`."""


class DataSettings(Section):
    """Where data comes from and how much of it trains a model."""

    source: Annotated[ParquetSource | SqlSource, Field(discriminator="kind")]
    training_window_days: int | None = Field(None, ge=1, le=MAX_DAYS)
    """Train on the last N days of event time; null = all history."""

    holdout_fraction: float = Field(0.2, gt=0, le=0.5)
    """Newest share of the window held out for evaluation and A/B."""

    validation: ValidationSettings = ValidationSettings()


# --- registry ----------------------------------------------------------------------------------


class RegistrySettings(Section):
    """The MLflow tracking server that holds models, runs and the retraining log."""

    tracking_uri: str = Field(min_length=1)
    """MLflow tracking/registry server URL."""

    experiment: str | None = Field(None, description="defaults to 'retrain/<model name>'")
    log_experiment: str | None = Field(None, description="defaults to 'retrain/<model name>/log'")
    request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """HTTP timeout of each MLflow request (at most 300 seconds)."""

    max_retries: int = Field(1, ge=0, le=5)
    """Retries of a failed MLflow request (bounded: errors come in seconds)."""


# --- triggers ----------------------------------------------------------------------------------


class Rule(Section):
    """One named rule in the seed's ``retraining_rules`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    trigger: str = Field(min_length=1)
    """Name recorded when the rule fires (e.g. `weekly_retraining`)."""

    condition: str
    """`<signal> <op> <number>` joined by and/or; signals: accuracy, precision, recall, f1,
    roc_auc, days_since_training, new_samples, drift_count, drift_share."""

    action: Action = Action.RETRAIN
    """`retrain`, `investigate_and_retrain` (both retrain), `investigate` or `notify`
    (record only)."""

    @field_validator("condition")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_condition(value)
        return value

    @property
    def parsed(self) -> Condition:
        return parse_condition(self.condition)


def _seed_rules() -> dict[str, Rule]:
    return {
        "performance_based": Rule(
            trigger="accuracy_drops_below_0.85", condition="accuracy < 0.85", action="retrain"
        ),
        "scheduled": Rule(
            trigger="weekly_retraining", condition="days_since_training > 7", action="retrain"
        ),
        "data_based": Rule(
            trigger="new_data_volume", condition="new_samples > 10000", action="retrain"
        ),
        "drift_based": Rule(
            trigger="high_data_drift",
            condition="drift_count > 5",
            action="investigate_and_retrain",
        ),
    }


class TriggerSettings(Section):
    """How the rules are applied."""

    cooldown_hours: float = Field(
        12.0, ge=0, le=24 * 366, description="minimum hours between triggered runs"
    )
    recent_window_days: float | None = Field(
        7.0,
        gt=0,
        le=MAX_DAYS,
        description="drift and accuracy signals use the new rows of the last N days "
        "(null = every row since the last training); new_samples always counts them all",
    )


class CadenceSettings(Section):
    """The seed's adaptive retraining frequency table as thresholds."""

    enabled: bool = True
    """Let the adaptive cadence trigger when a retrain is due at its frequency."""

    moderate_drift_share: Fraction = 0.1
    """Drift share from which data change counts as moderate (weekly)."""

    high_drift_share: Fraction = 0.3
    """Drift share from which data change counts as high (daily with degradation)."""

    degraded_accuracy: Fraction = 0.85
    """Accuracy below this is performance degradation."""

    critical_accuracy: Fraction = 0.75
    """Accuracy below this is a critical drop: retrain immediately."""

    monthly_days: Days = 30
    """Interval of the monthly cadence, days."""

    weekly_days: Days = 7
    """Interval of the weekly cadence, days."""

    daily_days: Days = 1
    """Interval of the daily cadence, days."""

    @model_validator(mode="after")
    def _ordered(self) -> CadenceSettings:
        if self.moderate_drift_share > self.high_drift_share:
            raise ValueError("moderate_drift_share must be <= high_drift_share")
        if self.critical_accuracy > self.degraded_accuracy:
            raise ValueError("critical_accuracy must be <= degraded_accuracy")
        if not self.daily_days <= self.weekly_days <= self.monthly_days:
            raise ValueError("intervals must satisfy daily_days <= weekly_days <= monthly_days")
        return self


# --- drift -------------------------------------------------------------------------------------


class SeverityCuts(Section):
    """Effect-size cut points: value >= low -> low, >= medium -> medium, >= high -> high.

    The drift engine applies them to effect sizes net of sampling noise (``<statistic>_net`` in a
    drift report), so the same cuts hold for small and large samples.
    """

    low: float = Field(ge=0)
    """Effect size from which severity is low."""

    medium: float = Field(ge=0)
    """Effect size from which severity is medium."""

    high: float = Field(ge=0)
    """Effect size from which severity is high."""

    @model_validator(mode="after")
    def _ordered(self) -> SeverityCuts:
        if not self.low <= self.medium <= self.high:
            raise ValueError("cut points must satisfy low <= medium <= high")
        return self


def _default_cuts() -> dict[DriftStatistic, SeverityCuts]:
    return {
        "psi": SeverityCuts(low=0.02, medium=0.1, high=0.25),
        "js": SeverityCuts(low=0.03, medium=0.07, high=0.12),
        "wasserstein": SeverityCuts(low=0.05, medium=0.1, high=0.2),
        "missing_rate": SeverityCuts(low=0.01, medium=0.05, high=0.1),
        "unseen_share": SeverityCuts(low=0.005, medium=0.02, high=0.05),
    }


class FeatureDriftOverride(Section):
    """Per-feature thresholds and opt-out."""

    enabled: bool = True
    """Check this feature for drift."""

    thresholds: dict[DriftStatistic, SeverityCuts] = {}
    """Per-statistic cut points for this feature (others: drift.thresholds)."""


class DriftSettings(Section):
    """Drift engine settings (see ``retrain.drift`` for the statistics and the severity rule).

    ``bins`` and ``max_categories`` shape a reference profile when it is built; a check uses the
    profile's bins. ``thresholds`` are per statistic; ``features`` overrides them per feature or
    disables a feature.
    """

    bins: int = Field(10, ge=2, le=100, description="reference quantile bins per numeric feature")
    max_categories: int = Field(
        1000, ge=2, le=100_000, description="categories kept per feature profile"
    )
    min_samples: int = Field(
        100, ge=1, le=10**9, description="below this many rows severity is capped"
    )
    alpha: float = Field(0.01, gt=0, lt=1, description="significance level of the sanity test")
    thresholds: dict[DriftStatistic, SeverityCuts] = Field(default_factory=_default_cuts)
    """Cut points per statistic: psi, js, wasserstein, missing_rate, unseen_share."""

    features: dict[str, FeatureDriftOverride] = {}
    """Per-feature overrides."""

    @field_validator("thresholds", mode="after")
    @classmethod
    def _complete(
        cls, value: dict[DriftStatistic, SeverityCuts]
    ) -> dict[DriftStatistic, SeverityCuts]:
        return {**_default_cuts(), **value}


# --- evaluation, A/B, deployment -----------------------------------------------------------------


def _seed_gate() -> dict[Metric, float]:
    return {"accuracy": 0.85}


def _accuracy_only() -> list[Metric]:
    return ["accuracy"]


class LeakageSettings(Section):
    """ "Too good to be true": results that hold automatic promotion until a human approves."""

    single_feature_accuracy: Fraction | None = Field(
        0.99,
        description="hold when one feature alone predicts the label on the holdout at least "
        "this well (a copy of the label, a field filled in after the outcome); null: off",
    )
    max_metric_jump: Fraction | None = Field(
        0.3,
        description="hold when a compared metric beats production by more than this; null: off",
    )


class EvaluationSettings(Section):
    """The promotion gate."""

    thresholds: dict[Metric, Fraction] = Field(default_factory=_seed_gate)
    """Minimum value of each metric for the gate (the seed: accuracy 0.85)."""

    non_inferiority_margin: Fraction = Field(
        0.01, description="how much worse than production the candidate may be"
    )
    compare_metrics: list[Metric] = Field(default_factory=_accuracy_only)
    """Metrics compared with production for non-inferiority."""

    average: Literal["auto", "binary", "macro", "weighted"] = Field(
        "auto", description="auto: binary (positive = last class) for 2 classes, else macro"
    )
    leakage: LeakageSettings = Field(default_factory=LeakageSettings)
    """Leakage guard: the gate passes, but the candidate waits in canary for a human."""


class ABTestSettings(Section):
    """Offline (paired holdout) and online (split traffic) model comparison."""

    enabled: bool = True
    """Run the offline A/B comparison with the production model."""

    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level of McNemar / the z-test."""

    confidence: float = Field(0.95, gt=0, lt=1)
    """Confidence level of the bootstrap / z interval."""

    n_bootstrap: int = Field(2000, ge=100, le=100_000)
    """Bootstrap resamples of the accuracy difference (100 to 100,000)."""

    min_detectable_effect: float = Field(0.02, gt=0, lt=1)
    """Online test: accuracy difference it must be able to detect."""

    power: float = Field(0.8, gt=0, lt=1)
    """Online test: power for min_detectable_effect (sets the sample size)."""

    pass_if: Literal["not_worse", "better"] = Field(
        "not_worse",
        description="not_worse: fail only if the candidate is significantly worse",
    )


class DeploymentSettings(Section):
    """How a passing candidate moves staging -> canary -> production."""

    skip_canary: bool = False
    """Allow staging -> production without a canary."""

    require_approval: bool = False
    """Production needs a human approval (retrain_promote DAG)."""

    promote_to_production: Literal["auto", "manual", "judge"] = Field(
        "auto",
        description="auto: promote after the canary checks in the same run; judge: the run "
        "stops at canary and the online canary judge (retrain_canary) promotes or rolls back; "
        "manual: an operator promotes",
    )
    canary_traffic_percent: float = Field(10.0, gt=0, le=100)
    """Traffic share for the canary (used by the online canary)."""


class CanarySettings(Section):
    """The online canary judge: canary vs production accuracy on labelled predictions.

    An anytime-valid confidence sequence on the accuracy difference (canary minus production),
    checked after every batch of labels without inflating its error, plus latency and error-rate
    guardrails. See ``retrain.canary``.
    """

    alpha: float = Field(0.05, gt=0, lt=0.5)
    """Error level of the confidence sequence: the chance that its interval ever, at any look,
    excludes the true accuracy difference."""

    margin: float = Field(0.01, ge=0, lt=1)
    """Non-inferiority margin: promote once the canary is shown to be at most this much less
    accurate than production (0: only a canary shown to be better is promoted)."""

    planned_labels: int = Field(5000, ge=1, le=10**9)
    """Labels in the smaller arm (the canary) where the interval is tightest relative to its
    standard error; set it near the labels a decision is expected to need."""

    min_labels_per_arm: int = Field(200, ge=1, le=10**9)
    """Labelled predictions each arm needs before the accuracy test may decide."""

    min_bake_minutes: float = Field(60, ge=0, le=MAX_DAYS * 24 * 60)
    """Minutes the canary serves before the accuracy test may decide."""

    max_duration_hours: float = Field(72, gt=0, le=MAX_DAYS * 24)
    """Hours after which a canary still undecided is rolled back (production kept)."""

    latency_slo_ms: float | None = Field(None, gt=0)
    """Latency SLO of the canary's p95 in ms (null: judged against production's p95 only)."""

    latency_ratio: float = Field(1.2, ge=1, le=100)
    """A window breaches when the canary's p95 exceeds max(latency_slo_ms, this x production's
    p95)."""

    latency_window_minutes: float = Field(5, gt=0, le=24 * 60)
    """Length of one latency monitoring window (the p95 of each is compared)."""

    latency_windows: int = Field(3, ge=1, le=1000)
    """Consecutive breaching latency windows (K) that roll the canary back."""

    error_rate_tolerance: float = Field(0.005, ge=0, le=1)
    """Roll back when the canary's error rate exceeds production's by more than this."""

    error_rate_min_requests: int = Field(200, ge=1, le=10**9)
    """Requests the canary serves before its error rate is judged."""

    @model_validator(mode="after")
    def _ordered(self) -> CanarySettings:
        if self.max_duration_hours * 60 <= self.min_bake_minutes:
            raise ValueError(
                f"max_duration_hours ({self.max_duration_hours:g} h) must be longer than "
                f"min_bake_minutes ({self.min_bake_minutes:g} min)"
            )
        return self


# --- airflow-facing ----------------------------------------------------------------------------


#: Airflow's cron presets (``airflow.utils.dates.cron_presets``), what ``CronTriggerTimetable``
#: turns into 5-field expressions.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


def cron_problem(value: str) -> str | None:
    """Why ``value`` is not a schedule Airflow's ``CronTriggerTimetable`` runs, or ``None``.

    A preset or 5 fields (minute hour day-of-month month day-of-week), parsed by ``croniter`` as
    Airflow parses it, that fires at least once (``0 0 30 2 *`` never does).
    """
    presets = ", ".join(CRON_PRESETS)
    expression = CRON_PRESETS.get(value, value)
    if expression.startswith("@"):
        return f"unknown preset {value!r}: use one of {presets} or a 5-field cron expression"
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{value!r} has {len(fields)} fields; give 5 fields (minute hour day-of-month month "
            f"day-of-week) or a preset ({presets})"
        )
    try:
        croniter(expression).get_next(datetime, start_time=datetime(2026, 1, 1))
    except CroniterBadDateError:
        return f"{value!r} never fires (no date matches it)"
    except (ValueError, TypeError, KeyError) as exc:  # croniter's errors are ValueErrors
        return f"{value!r} is not a valid cron expression: {exc}"
    return None


#: The retraining modes: the weekly retrain and the monthly full rebuild (``schedule.weekly`` and
#: ``schedule.full_rebuild``), one step graph for both.
Mode = Literal["weekly", "full_rebuild"]
MODES: tuple[Mode, ...] = ("weekly", "full_rebuild")


def _same_cron(a: str, b: str) -> bool:
    """Whether two schedules are the same expression (presets expanded, spacing ignored)."""
    return CRON_PRESETS.get(a, a).split() == CRON_PRESETS.get(b, b).split()


class ScheduleSettings(Section):
    """Schedules and retries used by the DAGs.

    Crons and the time zone are checked here, so a bad one is a config error at load, never a
    DAG import error. Standard cron ORs day-of-month and day-of-week when both are restricted
    (`0 20 1-7 * 0` fires on days 1-7 *and* on every Sunday): write the n-th weekday of the
    month as `0#1` (the first Sunday), which croniter and Airflow's timetable both read.
    """

    weekly: str = Field(
        "0 6 * * 1",
        min_length=1,
        description="cron or preset of the weekly retrain (retrain_pipeline; default Monday "
        "06:00); the rules and the adaptive cadence decide whether a run retrains",
    )
    full_rebuild: str = Field(
        "0 20 * * 0#1",
        min_length=1,
        description="cron or preset of the monthly full rebuild (retrain_full_rebuild; default "
        "the first Sunday of each month, 20:00: `0#1` is the first Sunday); trains on all "
        "history up to the run's time",
    )
    deprecated_retrain: str | None = Field(
        None,
        alias="retrain",
        min_length=1,
        description="deprecated alias of `weekly` (a config that sets both to different "
        "schedules is refused)",
    )
    monitor: str = Field("@hourly", min_length=1, description="cron or preset of the monitor")
    canary: str = Field(
        "*/5 * * * *",
        min_length=1,
        description="cron of the online canary judge (retrain_canary; with "
        "deployment.promote_to_production: judge)",
    )
    timezone: str = "UTC"
    """IANA time zone of the cron schedules (e.g. `UTC`, `Europe/Berlin`)."""

    retries: int = Field(2, ge=0, le=10)
    """Task retries (the seed: 2)."""

    retry_delay_minutes: float = Field(10, ge=0, le=24 * 60)
    """Delay between retries (the seed: 10 minutes; at most a day)."""

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """``retrain`` (deprecated) stands for ``weekly``; both set differently is an error."""
        if not isinstance(data, dict):
            return data
        key = "retrain" if "retrain" in data else "deprecated_retrain"
        old = data.get(key)
        if not isinstance(old, str):
            return data  # unset, or not a string: the field reports it
        new = data.get("weekly")
        if new is None:
            # a bad alias is reported once, as schedule.retrain (by its field)
            return data if cron_problem(old) else {**data, "weekly": old}
        if isinstance(new, str) and not _same_cron(old, new):
            raise ValueError(
                f"schedule.retrain ({old!r}) and schedule.weekly ({new!r}) are both set and "
                "differ: schedule.retrain is the deprecated name of schedule.weekly, keep only "
                "schedule.weekly"
            )
        return data

    @field_validator("weekly", "full_rebuild", "deprecated_retrain", "monitor", "canary")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        problem = cron_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}: give an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @property
    def retrain(self) -> str:
        """Deprecated: the weekly schedule (read ``weekly``)."""
        return self.weekly

    @property
    def deprecations(self) -> list[str]:
        """What this section still sets under a deprecated name, and what to write instead."""
        if self.deprecated_retrain is None:
            return []
        return [
            f"schedule.retrain is the old name of schedule.weekly (read as weekly "
            f"{self.deprecated_retrain!r}): rename the key to weekly"
        ]

    def cron(self, mode: Mode) -> str:
        """The cron expression (presets expanded) of ``mode``'s schedule."""
        value = self.weekly if mode == "weekly" else self.full_rebuild
        return CRON_PRESETS.get(value, value)

    def next_fires(self, mode: Mode, *, after: datetime, count: int = 3) -> list[datetime]:
        """The next ``count`` times ``mode``'s schedule fires after ``after``, aware in
        ``timezone`` (wall-clock times from croniter, made aware as Airflow's
        ``CronTriggerTimetable`` makes them: a fire stays at its local time across a DST change).
        """
        zone = ZoneInfo(self.timezone)
        local = after.astimezone(zone) if after.tzinfo else after.replace(tzinfo=zone)
        fires = croniter(self.cron(mode), start_time=local.replace(tzinfo=None))
        out: list[datetime] = []
        for _ in range(count):
            wall = fires.get_next(datetime).replace(tzinfo=zone)
            # normalised through UTC: a wall time in a spring-forward gap moves past it
            out.append(wall.astimezone(UTC).astimezone(zone))
        return out


class RebuildChecks(Section):
    """The full rebuild's comprehensive tests; each a checklist item that fails the gate.

    A failing test (`retrain.rebuild_checks`) keeps the candidate out unless the run is forced.
    """

    enabled: bool = True
    """Run the tests (false: a full rebuild is gated as a weekly run is)."""
    cv_folds: int = Field(5, ge=2, le=20, description="folds of the cross-validated metrics")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="level of the CV intervals")
    cv_margin: Fraction = Field(
        0.01,
        description="fails when the candidate's CV accuracy is worse than production's by more "
        "than this, the whole interval of the difference below -cv_margin",
    )
    slice_features: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None,
        description="features to slice by: categoricals per value, numerics per quantile bin "
        "(null: every categorical feature and every numeric one)",
    )
    slice_bins: int = Field(5, ge=2, le=50, description="quantile bins per numeric feature")
    min_slice_rows: int = Field(200, ge=1, le=10**9, description="smaller slices are not judged")
    slice_margin: Fraction = Field(
        0.05, description="a judged slice worse than production by more than this fails"
    )
    brier_margin: Fraction = Field(0.01, description="Brier score allowed above production's")
    ece_margin: Fraction = Field(
        0.02, description="expected calibration error allowed above production's"
    )
    robustness_rows: int = Field(100, ge=1, le=100_000, description="rows perturbed")
    max_latency_ratio: float = Field(
        3.0, ge=1, le=1000, description="candidate latency (per row and one row) / production's"
    )
    max_size_ratio: float = Field(
        5.0, ge=1, le=1000, description="candidate skops size / production's"
    )


class FullRebuildSettings(Section):
    """The monthly full rebuild: all history, the `model.search`, the comprehensive tests.

    `schedule.full_rebuild` starts it (or `retrain run --mode full_rebuild`); a scheduled
    rebuild runs whatever the retraining rules say (only an empty history stops it)."""

    max_rows: int | None = Field(
        None,
        ge=100,
        le=10**10,
        description="at most this many rows of all history, a uniform sample drawn with "
        "model.random_state (the same data gives the same sample); null: every row",
    )
    checks: RebuildChecks = RebuildChecks()


class ServingSettings(Section):
    """``retrain serve`` and the prediction log the online canary judge reads."""

    prediction_log: str | None = Field(
        None,
        description="SQLAlchemy URL of the prediction log (null: SQLite under "
        "storage.work_dir/serving); use ${VAR} for a password",
    )
    refresh_seconds: float = Field(5, gt=0, le=3600)
    """How soon a server follows an alias move (it loads the new version, then swaps)."""

    entity_column: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Column of the event source naming the entity a prediction is for: the canary judge then
    also takes labels from the events (the first event of that entity at or after the
    prediction, within ``label_horizon_hours``), besides those posted to ``/feedback``."""

    label_horizon_hours: float = Field(24 * 7, gt=0, le=MAX_DAYS * 24)
    """How long after a prediction an event of its entity still labels it."""

    max_batch_rows: int = Field(1000, ge=1, le=100_000)
    """Rows per coalesced batch: requests that arrive while a batch computes are answered
    together, one model call per version, up to this many rows (a larger request runs alone)."""

    batch_wait_ms: float = Field(5.0, ge=0, le=100)
    """How long the batching thread waits for more requests to join a batch, only while other
    requests are in flight (a lone request never waits); 0: never waits."""

    model_threads: int = Field(1, ge=0, le=1024)
    """OpenMP threads per model call (0: the library's default, every core). 1 is fastest for
    requests of up to a few thousand rows: histogram gradient boosting opens a parallel region
    per tree, which costs more than it saves on small batches and stalls on a busy machine."""


class NotificationSettings(Section):
    """Where rollbacks, failures and promotions are announced."""

    kind: Literal["log", "slack", "smtp"] = "log"
    """`log`, `slack` (webhook) or `smtp` (RETRAIN_SMTP_* env for the server)."""

    slack_webhook_url: str | None = None
    """Slack incoming-webhook URL (use ${VAR})."""

    smtp_to: list[str] = []
    """E-mail recipients."""

    @model_validator(mode="after")
    def _target(self) -> NotificationSettings:
        if self.kind == "slack" and not self.slack_webhook_url:
            raise ValueError("kind 'slack' needs slack_webhook_url")
        if self.kind == "smtp" and not self.smtp_to:
            raise ValueError("kind 'smtp' needs smtp_to")
        return self


class StorageSettings(Section):
    """Where runs keep their working files (extracted data, models, reports)."""

    work_dir: str = Field(
        ".retrain-work",
        description="local path (relative to the config file) where a run's tasks write their "
        "files (extracted data, model, reports)",
    )
    handoff: Literal["shared", "artifacts"] = Field(
        "shared",
        description="how a DAG task gets the files earlier tasks of its run wrote: `shared` "
        "(work_dir is one filesystem every worker mounts) or `artifacts` (each task publishes "
        "what it wrote to its MLflow run's artifacts under `handoff/`, and a task on another "
        "worker downloads what it lacks: Celery or Kubernetes workers with local disks)",
    )


# --- the whole file -----------------------------------------------------------------------------


class RetrainConfig(Section):
    """A model's whole retraining setup."""

    model: ModelSettings
    data: DataSettings
    registry: RegistrySettings
    retraining_rules: dict[Annotated[str, Field(pattern=_IDENT)], Rule] = Field(
        default_factory=_seed_rules
    )
    triggers: TriggerSettings = TriggerSettings()
    cadence: CadenceSettings = CadenceSettings()
    drift: DriftSettings = DriftSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    ab_test: ABTestSettings = ABTestSettings()
    deployment: DeploymentSettings = DeploymentSettings()
    canary: CanarySettings = CanarySettings()
    serving: ServingSettings = ServingSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    full_rebuild: FullRebuildSettings = FullRebuildSettings()
    notifications: NotificationSettings = NotificationSettings()
    storage: StorageSettings = StorageSettings()
    source_path: Path | None = Field(None, exclude=True, description="file this was loaded from")

    @model_validator(mode="after")
    def _cross_checks(self) -> RetrainConfig:
        features = set(self.model.features.all)
        time_col = self.data.source.event_time_column
        if time_col in features or time_col == self.model.target:
            raise ValueError(
                f"data.source.event_time_column {time_col!r} must not be a feature or the target"
            )
        for key in (
            "drift.features",
            "data.validation.allowed_categories",
            "data.validation.missing",
        ):
            unknown = sorted(set(_lookup(self, key)) - features)
            if unknown:
                raise ValueError(f"{key} names unknown features: {', '.join(unknown)}")
        slice_by = self.full_rebuild.checks.slice_features or []
        unknown = sorted(set(slice_by) - features)
        if unknown:
            raise ValueError(
                f"full_rebuild.checks.slice_features names unknown features: {', '.join(unknown)}"
            )
        if not self.retraining_rules:
            raise ValueError("retraining_rules must define at least one rule")
        return self

    @property
    def experiment_name(self) -> str:
        return self.registry.experiment or f"retrain/{self.model.name}"

    @property
    def log_experiment_name(self) -> str:
        return self.registry.log_experiment or f"retrain/{self.model.name}/log"


def _lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj
