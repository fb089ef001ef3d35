"""The canary judge's looks as a figure: D_hat with its confidence sequence over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from retrain.canary import CanaryEvaluation, Decision
from retrain.reports.figures import CURRENT_COLOR, REFERENCE_COLOR, new_figure

__all__ = ["evaluations_figure"]

_DECISION_COLORS = {Decision.PROMOTE: "#55a868", Decision.ROLLBACK: "#c44e52"}


def evaluations_figure(
    evaluations: Sequence[CanaryEvaluation], *, title: str = "canary - production accuracy"
) -> Figure:
    """``D_hat`` (canary minus production accuracy) at every look with its interval, the zero
    line and the non-inferiority line at ``-margin``; a look that decided is marked in its
    decision's colour. Looks before both arms had labels (no interval yet) are left out."""
    fig, ax = new_figure(width=7.2, height=3.4)
    looks = [e for e in evaluations if e.canary_labels and e.production_labels]
    ax.axhline(0.0, color="black", linewidth=0.8)
    if evaluations:
        margin = evaluations[-1].margin
        ax.axhline(-margin, color=CURRENT_COLOR, linestyle="--", linewidth=1.0,
                   label=f"-margin ({-margin:g})")  # fmt: skip
    if not looks:
        ax.text(0.5, 0.5, "no labelled looks yet", transform=ax.transAxes, ha="center")
    else:
        at = _times(looks)
        d_hat = np.array([e.d_hat for e in looks])
        lower = np.array([e.lower for e in looks])
        upper = np.array([e.upper for e in looks])
        ax.fill_between(at, lower, upper, color=REFERENCE_COLOR, alpha=0.2, step="post",
                        label="confidence sequence")  # fmt: skip
        ax.step(at, d_hat, where="post", color=REFERENCE_COLOR, linewidth=1.6, label="D_hat")
        for decision, color in _DECISION_COLORS.items():
            picked = [e for e in looks if e.decision is decision]
            if picked:
                ax.scatter(_times(picked), [e.d_hat for e in picked], color=color,
                           zorder=3, label=decision.value)  # fmt: skip
        # the first looks' intervals are wide: frame D_hat and the two lines, with twice the
        # median half-width around them, so the later (narrow) intervals stay readable
        half = float(np.median(upper - lower)) / 2
        low = min(float(d_hat.min()), -looks[-1].margin) - 2 * half
        high = max(float(d_hat.max()), 0.0) + 2 * half
        ax.set_ylim(max(low, -1.0), min(high, 1.0))
        fig.autofmt_xdate()
    ax.set_title(title)
    ax.set_ylabel("accuracy difference")
    if ax.get_legend_handles_labels()[1]:
        ax.legend(frameon=False, fontsize=8)
    return fig


def _times(evaluations: Sequence[CanaryEvaluation]) -> npt.NDArray[np.datetime64]:
    """The looks' times as UTC ``datetime64`` (what matplotlib plots as dates)."""
    utc = [
        (e.at.astimezone(UTC) if e.at.tzinfo else e.at).replace(tzinfo=None) for e in evaluations
    ]
    return np.array(utc, dtype="datetime64[us]")
