"""skops serialization of fitted models: no pickle, and only the types recorded at save time load.

Used for the model handed from the train step to the evaluate and deploy steps
(:mod:`retrain.train`) and for every registered version (:mod:`retrain.registry`). skops is
imported lazily: it walks every scikit-learn estimator at import (1-2 s).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["dumps_trusted", "load_trusted", "quiet_skops", "skops_io"]


@contextlib.contextmanager
def quiet_skops() -> Iterator[None]:
    """Silence the warnings skops triggers without cause.

    skops resolves names by probing every loaded module; inside an Airflow task that makes the
    lazy deprecated-import shims warn hundreds of times (attributed to skops).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"skops\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"skops\.")
        yield


def skops_io() -> Any:
    """``skops.io``, imported under :func:`quiet_skops`."""
    with quiet_skops():
        import skops.io  # noqa: PLC0415 - 1-2 s at import; under the warning filter

    return skops.io


def dumps_trusted(model: Any) -> tuple[bytes, list[str]]:
    """``model`` as skops bytes, and the types it holds that skops does not trust by default
    (the list to trust when loading it back)."""
    sio = skops_io()
    with quiet_skops():
        data: bytes = sio.dumps(model)
        return data, sorted(sio.get_untrusted_types(data=data))


def load_trusted(path: str | Path, trusted: list[str]) -> Any:
    """Load a skops file, trusting only ``trusted`` beyond skops' defaults."""
    sio = skops_io()
    with quiet_skops():
        return sio.load(path, trusted=list(trusted))
