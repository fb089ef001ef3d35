"""``train``: fit the pipeline and profile its training data for drift checks."""

from __future__ import annotations

from pathlib import Path

from retrain.data import ExtractResult, read_frame
from retrain.drift import build_profile
from retrain.pipeline.context import RunContext
from retrain.pipeline.results import Trained
from retrain.pipeline.services import Services
from retrain.train import train

__all__ = ["train_step"]


def train_step(services: Services, ctx: RunContext, extracted: ExtractResult) -> Trained:
    """The fitted model (skops file) and the reference profile of the training window."""
    config = services.config
    frame = read_frame(extracted.path)
    fit = train(config, frame, out_dir=ctx.work_dir, tune=ctx.mode == "full_rebuild")
    features = config.model.features
    profile = build_profile(
        frame, numeric=features.numeric, categorical=features.categorical, settings=config.drift
    )
    profile_path = profile.save(Path(ctx.work_dir) / "reference_profile.json")
    searched = fit.search
    services.tracker(ctx.mlflow_run_id).log(
        params={
            "algorithm": fit.algorithm,
            "train_rows": fit.train_rows,
            "holdout_rows": fit.holdout_rows,
            **{f"param_{k}": v for k, v in fit.params.items()},
            **(
                {"search_method": searched.method, "search_chosen": searched.chosen}
                if searched
                else {}
            ),
        },
        metrics={
            "fit_seconds": fit.fit_seconds,
            **(
                {
                    "search_seconds": searched.seconds,
                    "search_best_score": searched.best_score,
                    "search_configured_score": searched.configured_score,
                }
                if searched
                else {}
            ),
        },
    )
    return Trained(fit=fit, profile_path=str(profile_path))
