"""What a version is: its record and lineage as ``retrain.*`` tags, and the alias moves between
versions.

:class:`VersionRecord` validates a record (every problem at once) and encodes it as version tags;
:class:`ModelVersionInfo` is an MLflow model version as the rest of the system sees it;
:class:`AliasMove` is one alias pointer change. No MLflow import: the tags are plain strings.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrain.errors import DataError
from retrain.registry.lifecycle import ALIASES, GATE_RESULTS, STATUSES
from retrain.times import iso_z, to_utc

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

__all__ = [
    "STATUS_TAG",
    "TAG",
    "AliasMove",
    "Baseline",
    "ModelVersionInfo",
    "VersionRecord",
    "alias_versions",
    "key_digest",
    "latest_version",
    "optional_version",
    "version_label",
]

TAG = "retrain."
STATUS_TAG = "retrain.status"


def _clean_metrics(metrics: Any, problems: list[str]) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        problems.append(f"metrics: expected a mapping of name to number, got {metrics!r}")
        return {}
    clean: dict[str, float] = {}
    for name, raw in metrics.items():
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(raw, bool) or not math.isfinite(number):
            problems.append(f"metrics.{name}: expected a finite number, got {raw!r}")
        else:
            clean[str(name)] = number
    return clean


def _time_field(value: Any, what: str, problems: list[str], *, required: bool = True) -> str:
    if not value:
        if required:
            problems.append(f"{what}: required (ISO-8601 time of the newest training event)")
        return ""
    try:
        return iso_z(value, what=what)
    except ValueError as exc:
        problems.append(str(exc))
        return ""


def key_digest(idempotency_key: str) -> str:
    """The digest of an idempotency key stored with a version or an audit entry (keys can be
    long and hold any character; tags are capped and filters quote them)."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


def optional_version(value: Any) -> int | None:
    """A version number read back from a tag or JSON field; empty or missing is ``None``."""
    return None if value is None or value == "" else int(value)


def version_label(version: int | None) -> str:
    """A version number as a tag value; ``None`` is the empty string."""
    return "" if version is None else str(version)


def alias_versions(rm: RegisteredModel) -> dict[str, int]:
    """The version each alias of a registered model points at."""
    return {alias: int(version) for alias, version in (rm.aliases or {}).items()}


def latest_version(rm: RegisteredModel) -> int | None:
    """The highest version number a registered model has (from its latest version per stage;
    every version retrain creates stays in stage ``None``); ``None`` without versions."""
    numbers = [int(mv.version) for mv in rm.latest_versions or []]
    return max(numbers) if numbers else None


def _held(aliases: Mapping[str, int], version: int) -> tuple[str, ...]:
    """The aliases that point at ``version``: lifecycle aliases first, in promotion order, then
    any others by name."""
    return tuple(a for a in ALIASES if aliases.get(a) == version) + tuple(
        sorted(a for a, v in aliases.items() if v == version and a not in ALIASES)
    )


@dataclass(frozen=True)
class VersionRecord:
    """The seed's version record plus lineage; stored as ``retrain.*`` tags of a model version.

    ``version_id``, ``timestamp`` and ``git_commit`` are filled in at registration when empty;
    ``status`` is kept by the registry. ``watermark`` is the newest event time in the training
    data (ISO-8601 UTC): "new data since last training" starts from it.
    """

    algorithm: str
    training_data_version: str
    metrics: Mapping[str, float]
    features: Sequence[str]
    retraining_id: str
    watermark: str
    trigger_reasons: Sequence[str] = ()
    gate: str = "passed"
    version_id: str = ""
    timestamp: str = ""
    git_commit: str = ""
    status: str = "pending"

    @classmethod
    def from_value(cls, value: VersionRecord | Mapping[str, Any]) -> VersionRecord:
        """Validate a record or a plain mapping; every problem is reported at once."""
        data = asdict(value) if isinstance(value, VersionRecord) else dict(value)
        problems = [f"unknown field {key!r}" for key in sorted(set(data) - set(_RECORD_FIELDS))]
        for key in ("algorithm", "training_data_version", "retraining_id"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                problems.append(f"{key}: expected a non-empty string, got {data.get(key)!r}")
        metrics = _clean_metrics(data.get("metrics"), problems)
        features = data.get("features")
        if isinstance(features, str) or not isinstance(features, Sequence) or not features:
            problems.append(f"features: expected a non-empty list of names, got {features!r}")
            features = ()
        reasons = data.get("trigger_reasons") or ()
        reasons = [reasons] if isinstance(reasons, str) else reasons
        gate = data.get("gate") or "passed"
        if gate not in GATE_RESULTS:
            problems.append(f"gate: expected one of {', '.join(GATE_RESULTS)}, got {gate!r}")
        status = data.get("status") or "pending"
        if status not in STATUSES:
            problems.append(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
        watermark = _time_field(data.get("watermark"), "watermark", problems)
        timestamp = _time_field(data.get("timestamp"), "timestamp", problems, required=False)
        if problems:
            raise DataError(problems, source="invalid version record")
        return cls(
            algorithm=data["algorithm"],
            training_data_version=data["training_data_version"],
            metrics=metrics,
            features=tuple(str(f) for f in features),
            retraining_id=data["retraining_id"],
            watermark=watermark,
            trigger_reasons=tuple(str(r) for r in reasons),
            gate=gate,
            version_id=data.get("version_id") or "",
            timestamp=timestamp,
            git_commit=data.get("git_commit") or "",
            status=status,
        )

    def to_tags(self) -> dict[str, str]:
        """``retrain.*`` tag values (lists and mappings as JSON)."""
        tags = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict | list | tuple):
                tags[TAG + key] = json.dumps(value, sort_keys=True)
            else:
                tags[TAG + key] = str(value)
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> VersionRecord:
        """Read a record back from version tags (missing tags read as empty)."""

        def get(key: str, default: str = "") -> str:
            return tags.get(TAG + key, default)

        def loads(key: str, default: Any) -> Any:
            try:
                return json.loads(get(key)) if get(key) else default
            except json.JSONDecodeError:
                return default

        return cls(
            algorithm=get("algorithm"),
            training_data_version=get("training_data_version"),
            metrics=loads("metrics", {}),
            features=tuple(loads("features", [])),
            retraining_id=get("retraining_id"),
            watermark=get("watermark"),
            trigger_reasons=tuple(loads("trigger_reasons", [])),
            gate=get("gate"),
            version_id=get("version_id"),
            timestamp=get("timestamp"),
            git_commit=get("git_commit"),
            status=get("status", "unmanaged"),
        )

    @property
    def watermark_time(self) -> datetime | None:
        return to_utc(self.watermark, what="watermark")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = dict(self.metrics)
        data["features"] = list(self.features)
        data["trigger_reasons"] = list(self.trigger_reasons)
        return data


_RECORD_FIELDS = tuple(VersionRecord.__dataclass_fields__)


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version with its record, as the rest of the system sees it."""

    name: str
    version: int
    status: str
    aliases: tuple[str, ...]
    record: VersionRecord
    run_id: str | None
    model_id: str | None
    source: str
    created_at: str
    idempotency_key: str | None = None
    created: bool = True

    @classmethod
    def from_mlflow(
        cls, name: str, mv: ModelVersion, aliases: Mapping[str, int], *, created: bool = True
    ) -> ModelVersionInfo:
        """Read an MLflow model version, given where the model's aliases point (lifecycle
        aliases first, in promotion order, then any others by name)."""
        tags = dict(mv.tags or {})
        version = int(mv.version)
        return cls(
            name=name,
            version=version,
            status=tags.get(STATUS_TAG, "unmanaged"),
            aliases=_held(aliases, version),
            record=VersionRecord.from_tags(tags),
            run_id=mv.run_id or None,
            model_id=tags.get("retrain.model_id") or getattr(mv, "model_id", None),
            source=mv.source or "",
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
            idempotency_key=tags.get("retrain.idempotency_key"),
            created=created,
        )

    @classmethod
    def from_aliases(cls, info: ModelVersionInfo, aliases: Mapping[str, int]) -> ModelVersionInfo:
        """``info`` with the aliases that ``aliases`` point at it."""
        return replace(info, aliases=_held(aliases, info.version))

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def age_seconds(self, now: datetime | None = None) -> float:
        return (
            (now or datetime.now(UTC)) - datetime.fromisoformat(self.created_at)
        ).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["record"] = self.record.to_dict()
        data["uri"] = self.uri
        return data


@dataclass(frozen=True)
class Baseline:
    """The production version a run compares against (and signals are measured for)."""

    version: int
    watermark: datetime | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, info: ModelVersionInfo) -> Baseline:
        return cls(info.version, info.record.watermark_time, dict(info.record.metrics))


@dataclass(frozen=True)
class AliasMove:
    """One alias pointer change: ``None`` means the alias did not exist / is removed."""

    alias: str
    from_version: int | None
    to_version: int | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AliasMove:
        """Read a move back from its JSON form (``dataclasses.asdict`` of a move)."""
        return cls(
            data["alias"],
            optional_version(data["from_version"]),
            optional_version(data["to_version"]),
        )
