"""A realistic synthetic churn event stream with a drift at a known week.

Used by the demo, the tests and the benchmarks. Each week is one hive-style parquet partition
(``week=YYYY-MM-DD/part-0.parquet``). From ``drift_week`` on, the stream changes in two ways:
a covariate shift in seven of the eight features (higher charges, more support calls and data
use, more month-to-month contracts, electronic checks and fibre)
and a change of the label relationship (fibre customers and support calls matter more), so a
model trained before the drift loses accuracy and a retrained one recovers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CATEGORICAL", "NUMERIC", "TARGET", "StreamSpec", "generate_week", "write_stream"]

NUMERIC = ["tenure", "monthly_charges", "total_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["contract", "payment_method", "internet_service"]
TARGET = "churned"
EVENT_TIME = "event_time"

_CONTRACTS = ["month-to-month", "one-year", "two-year"]
_PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
_INTERNET = ["dsl", "fiber", "none"]


@dataclass(frozen=True)
class StreamSpec:
    """Shape of the stream: start, length, rows per week and where the drift starts."""

    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    weeks: int = 8
    rows_per_week: int = 5000
    drift_week: int | None = 5  # 0-based index of the first drifted week; None = no drift
    seed: int = 7


def generate_week(spec: StreamSpec, week: int) -> pd.DataFrame:
    """The labelled events of week ``week`` (0-based)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([spec.seed, week])
    n = spec.rows_per_week
    drifted = spec.drift_week is not None and week >= spec.drift_week
    contract_p = [0.70, 0.18, 0.12] if drifted else [0.45, 0.30, 0.25]
    internet_p = [0.25, 0.60, 0.15] if drifted else [0.40, 0.35, 0.25]

    contract = rng.choice(_CONTRACTS, size=n, p=contract_p)
    payment_p = [0.52, 0.14, 0.16, 0.18] if drifted else [0.35, 0.2, 0.22, 0.23]
    payment = rng.choice(_PAYMENTS, size=n, p=payment_p)
    internet = rng.choice(_INTERNET, size=n, p=internet_p)
    tenure = np.clip(rng.gamma(2.0, 14.0, size=n), 0, 72).round()
    monthly = rng.normal(82 if drifted else 65, 18, size=n).clip(18, 140).round(2)
    total = (tenure * monthly * rng.uniform(0.9, 1.05, size=n)).round(2)
    calls = rng.poisson(3.2 if drifted else 1.6, size=n)
    usage = rng.lognormal(3.35 if drifted else 3.0, 0.6, size=n).round(2)

    month_to_month = contract == "month-to-month"
    fiber = internet == "fiber"
    if drifted:  # concept change: fibre customers and support calls now drive churn
        logit = (
            -1.0
            - 0.07 * tenure
            + 0.01 * (monthly - 65)
            + 1.1 * (calls - 3)
            + 2.8 * fiber
            + 1.0 * month_to_month
        )
    else:
        logit = (
            -1.2
            - 0.09 * tenure
            + 0.045 * (monthly - 65)
            + 0.5 * (calls - 1.5)
            + 2.6 * month_to_month
            - 0.6 * (payment == "credit-card")
        )
    churned = rng.random(n) < 1 / (1 + np.exp(-3.0 * logit))

    seconds = np.sort(rng.uniform(0, 7 * 24 * 3600, size=n))
    base = pd.Timestamp(spec.start + timedelta(weeks=week))
    return pd.DataFrame(
        {
            EVENT_TIME: (base + pd.to_timedelta(seconds, unit="s")).as_unit("us"),
            "customer_id": [f"c{week:03d}{i:06d}" for i in range(n)],
            "tenure": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": calls.astype("int64"),
            "data_usage_gb": usage,
            "contract": contract,
            "payment_method": payment,
            "internet_service": internet,
            TARGET: churned.astype("int64"),
        }
    )


def write_stream(root: str | Path, spec: StreamSpec, *, weeks: range | None = None) -> list[Path]:
    """Write weekly partitions under ``root``; returns the files written."""
    root = Path(root)
    written = []
    for week in weeks if weeks is not None else range(spec.weeks):
        frame = generate_week(spec, week)
        day = (spec.start + timedelta(weeks=week)).date().isoformat()
        path = root / f"week={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        written.append(path)
    return written
