"""``validate``: the extracted window against the data contract."""

from __future__ import annotations

from retrain.data import ExtractResult, extracted_row_hashes, read_frame
from retrain.drift import CategoricalProfile, ReferenceProfile
from retrain.errors import DataError
from retrain.pipeline.context import RunContext
from retrain.pipeline.services import Services
from retrain.validate import ValidationReport, check_frame

__all__ = ["validate_step"]


def validate_step(
    services: Services, ctx: RunContext, extracted: ExtractResult
) -> ValidationReport:
    """The contract's report; :class:`DataError` naming every problem when it fails.

    Categories never seen by the baseline model are checked against its reference profile.
    """
    frame = read_frame(extracted.path)
    report = check_frame(
        services.config,
        frame,
        known_categories=_known_categories(services, ctx),
        row_hashes=extracted_row_hashes(extracted.path),
    )
    tracker = services.tracker(ctx.mlflow_run_id)
    tracker.log(tags={"retrain.validation": "passed" if report.ok else "failed"})
    if not report.ok:
        raise DataError(report.problems, source=f"validation of {extracted.data_version}")
    return report


def _known_categories(services: Services, ctx: RunContext) -> dict[str, list[str]] | None:
    baseline = ctx.pinned_baseline()
    data = services.registry.reference_profile(baseline.version) if baseline else None
    if data is None:
        return None
    profile = ReferenceProfile.from_dict(data)
    return {
        name: [str(c) for c in p.categories]
        for name, p in profile.features.items()
        if isinstance(p, CategoricalProfile) and not p.truncated
    }
