"""``extract``: the training window ending at ``as_of``, new rows counted after the baseline.

A full rebuild (``mode: full_rebuild``) takes all history up to ``as_of``, whatever
``data.training_window_days`` says, sampled down to ``full_rebuild.max_rows`` when set."""

from __future__ import annotations

from retrain.data import ALL_HISTORY, ExtractResult, extract
from retrain.pipeline.context import RunContext
from retrain.pipeline.services import Services

__all__ = ["extract_step"]


def extract_step(services: Services, ctx: RunContext) -> ExtractResult:
    """Write the window to the work directory; rows after the baseline's watermark are new."""
    baseline = ctx.pinned_baseline()
    rebuild = ctx.mode == "full_rebuild"
    # a full rebuild ignores data.training_window_days (RunOptions refuses a window_days for it)
    window_days = ALL_HISTORY if rebuild else ctx.window_days
    result = extract(
        services.config,
        out_dir=ctx.work_dir,
        as_of=ctx.as_of,
        watermark=baseline.watermark if baseline else None,
        window_days=window_days,
        sql_url=services.sql_url,
        max_rows=services.config.full_rebuild.max_rows if rebuild else None,
    )
    services.tracker(ctx.mlflow_run_id).log(
        params={
            "data_version": result.data_version,
            "rows": result.rows,
            "window_start": result.window_start,
        },
        metrics={
            "rows": result.rows,
            "new_samples": result.new_samples,
            **({"rows_before_sampling": result.sampled_from} if result.sampled_from else {}),
        },
    )
    return result
