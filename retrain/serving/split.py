"""The canary split: which arm answers a request, decided by a stable hash of its key.

The key is a row's entity id (a customer, a device); the rows of a call without one share the
call's key, its first request id, so one version answers them all (a canary takes a share of
the calls, as per-request canary routers do; give entity ids to split a call's rows). The same
key of the same model always lands in the same arm (sticky across requests, processes and
restarts), and raising the fraction only moves keys from ``production`` to ``canary``, never
back. The hash is BLAKE2b of ``<model>\\0<key>`` (never Python's ``hash()``, which is salted
per process).
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

__all__ = ["CANARY", "PRODUCTION", "Arm", "canary_share", "choose_arm"]

Arm = Literal["production", "canary"]
PRODUCTION: Final[Arm] = "production"
CANARY: Final[Arm] = "canary"
_SCALE: Final = float(1 << 64)


def canary_share(model: str, key: str) -> float:
    """Where ``key`` falls in ``[0, 1)`` for ``model``: uniform, and the same in every process."""
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def choose_arm(model: str, key: str, fraction: float) -> Arm:
    """``canary`` for the share ``fraction`` of keys (``0``: none, ``1``: all), else
    ``production``."""
    return CANARY if canary_share(model, key) < fraction else PRODUCTION
