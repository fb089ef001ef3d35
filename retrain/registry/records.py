"""What a version is: its record and lineage as ``retrain.*`` tags, and the alias moves between
versions.

A version carries six tags, short enough to read in the MLflow UI: ``retrain.status``,
``retrain.gate``, ``retrain.training`` (the retraining id), ``retrain.data`` (the training data
version), ``retrain.key_hash`` (the idempotency key's digest, searched at registration) and
``retrain.record``: everything else as one compact JSON object (at most :data:`TAG_VALUE_LIMIT`
characters). Versions registered before that layout carry one ``retrain.<field>`` tag per field;
:func:`stored_fields` reads both, and such a tag overrides the JSON (an operator may still set
``retrain.trusted_types``).

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

from retrain.errors import DataError, RegistryError
from retrain.redact import redact
from retrain.registry.lifecycle import ALIASES, GATE_RESULTS, STATUSES
from retrain.times import iso_z, to_utc

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

__all__ = [
    "KEY_TAG",
    "LEGACY_KEY_TAG",
    "RECORD_TAG",
    "STATUS_TAG",
    "TAG",
    "TAG_VALUE_LIMIT",
    "AliasMove",
    "Baseline",
    "ModelVersionInfo",
    "VersionRecord",
    "alias_versions",
    "key_digest",
    "latest_version",
    "newest_has_legacy_tags",
    "optional_version",
    "stored_fields",
    "version_label",
]

TAG = "retrain."
STATUS_TAG = "retrain.status"
#: The idempotency key's digest (searched server-side); ``retrain.idempotency`` before.
KEY_TAG = "retrain.key_hash"
LEGACY_KEY_TAG = "retrain.idempotency"
#: Every field without a tag of its own, as one compact JSON object.
RECORD_TAG = "retrain.record"
#: The longest ``retrain.record`` written. MLflow 3.17 accepts 100,000 characters in a model
#: version tag value, but servers whose database predates MLflow's 2025 migration (and older
#: releases) hold 5,000.
TAG_VALUE_LIMIT = 5000
#: The fields with a tag of their own: read at a glance in the MLflow UI, or searched.
_OWN_TAGS: Mapping[str, str] = {
    "status": STATUS_TAG,
    "gate": "retrain.gate",
    "retraining_id": "retrain.training",
    "training_data_version": "retrain.data",
}
#: What registration stores besides the record (each an own ``retrain.<name>`` tag before).
_VERSION_FIELDS = (
    "idempotency_key",
    "model_id",
    "artifact_uri",
    "reference_profile",
    "artifacts",
    "trusted_types",
)
_JSON_FIELDS = frozenset({"metrics", "features", "trigger_reasons", "artifacts", "trusted_types"})
#: What may be shortened when ``retrain.record`` would exceed the limit.
_SHRINKABLE = ("idempotency_key", "trigger_reasons", "features")
_SHORT_ITEM = 200


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


def newest_has_legacy_tags(rm: RegisteredModel) -> bool:
    """Whether the newest version of ``rm`` carries the old one-tag-per-field layout: then a
    version with an idempotency key may carry its digest under :data:`LEGACY_KEY_TAG`."""
    return any(LEGACY_KEY_TAG in (mv.tags or {}) for mv in rm.latest_versions or [])


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
    """The seed's version record plus lineage; stored as ``retrain.*`` tags of a model version
    (:meth:`to_tags`).

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

    def to_tags(self, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The version tags of this record (see the module): status, gate, retraining id and
        training data version as short tags; the other fields and ``extra`` (what registration
        stores with the version) as JSON in ``retrain.record``. Secrets are masked; a record
        too long for one tag is shortened (:func:`_record_json`)."""
        data = {**self.to_dict(), **(extra or {})}
        tags = {tag: redact(str(data.pop(name))) for name, tag in _OWN_TAGS.items()}
        tags[RECORD_TAG] = _record_json(data)
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> VersionRecord:
        """Read a record back from version tags of either layout (missing fields read as
        empty, a version without a status as ``unmanaged``)."""
        return cls.from_fields(stored_fields(tags))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> VersionRecord:
        """Read a record back from :func:`stored_fields` (a field of the wrong type reads as
        empty)."""

        def items(name: str) -> tuple[str, ...]:
            value = fields.get(name)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        metrics = fields.get("metrics")
        return cls(
            algorithm=_text(fields, "algorithm"),
            training_data_version=_text(fields, "training_data_version"),
            metrics=dict(metrics) if isinstance(metrics, dict) else {},
            features=items("features"),
            retraining_id=_text(fields, "retraining_id"),
            watermark=_text(fields, "watermark"),
            trigger_reasons=items("trigger_reasons"),
            gate=_text(fields, "gate"),
            version_id=_text(fields, "version_id"),
            timestamp=_text(fields, "timestamp"),
            git_commit=_text(fields, "git_commit"),
            status=_text(fields, "status", "unmanaged"),
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
_STORED = frozenset((*_RECORD_FIELDS, *_VERSION_FIELDS))


def _text(fields: Mapping[str, Any], name: str, default: str = "") -> str:
    """Field ``name`` of :func:`stored_fields` if it is a string, else ``default``."""
    value = fields.get(name)
    return value if isinstance(value, str) else default


def _decode(value: str) -> Any:
    """A JSON tag value decoded; the string itself if it is not JSON."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def stored_fields(tags: Mapping[str, str]) -> dict[str, Any]:
    """A version's record and registration fields, from its tags in either layout: the JSON of
    ``retrain.record``, overridden by any old-style ``retrain.<field>`` tag (lists and mappings
    as JSON), overridden by the short tags. A field none of them has is absent."""
    record = _decode(tags.get(RECORD_TAG, "{}"))
    fields = dict(record) if isinstance(record, dict) else {}
    for key, value in tags.items():
        name = key.removeprefix(TAG)
        if key.startswith(TAG) and name in _STORED:
            fields[name] = _decode(value) if name in _JSON_FIELDS else value
    fields.update({name: tags[tag] for name, tag in _OWN_TAGS.items() if tag in tags})
    return fields


def _masked(value: Any) -> Any:
    """``value`` with :func:`redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _shorter(value: Any) -> Any:
    """``value`` shortened one step: a long string, or the long items of a list, cut to
    :data:`_SHORT_ITEM` characters; else a string or list halved."""
    if isinstance(value, str) and len(value) > _SHORT_ITEM:
        return value[:_SHORT_ITEM]
    if isinstance(value, list) and any(len(str(v)) > _SHORT_ITEM for v in value):
        return [str(v)[:_SHORT_ITEM] for v in value]
    return value[: len(value) // 2]


def _record_json(data: Mapping[str, Any]) -> str:
    """``data`` (secrets masked) as compact JSON of at most :data:`TAG_VALUE_LIMIT` characters.

    Too long, the longest of :data:`_SHRINKABLE` is shortened until it fits (the idempotency key,
    which its digest tag identifies; trigger reasons, kept by the retraining's log record;
    feature names, listed by the model's signature) and ``truncated`` names what was cut.
    Nothing else is cut: what still does not fit raises :class:`RegistryError`. Status and
    lineage have tags of their own and are never cut.
    """
    fields: dict[str, Any] = _masked({k: v for k, v in data.items() if v is not None})
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    while len(text) > TAG_VALUE_LIMIT:
        name = max(
            (n for n in _SHRINKABLE if fields.get(n)),
            key=lambda n: len(json.dumps(fields[n])),
            default=None,
        )
        if name is None:
            raise RegistryError(
                f"the version record is {len(text)} characters without what can be shortened: "
                f"more than one MLflow version tag holds ({TAG_VALUE_LIMIT}); fewer metrics or "
                "trusted types, or shorter names, are needed to register it"
            )
        fields[name] = _shorter(fields[name])
        fields["truncated"] = sorted({*fields.get("truncated", ()), name})
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return text


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
        fields = stored_fields(tags)
        version = int(mv.version)
        return cls(
            name=name,
            version=version,
            status=tags.get(STATUS_TAG, "unmanaged"),
            aliases=_held(aliases, version),
            record=VersionRecord.from_fields(fields),
            run_id=mv.run_id or None,
            model_id=_text(fields, "model_id") or getattr(mv, "model_id", None),
            source=mv.source or "",
            created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
            idempotency_key=_text(fields, "idempotency_key") or None,
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
