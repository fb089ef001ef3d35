"""skops serialization of fitted models: no pickle, and only the types recorded at save time load.

Used for the model handed from the train step to the evaluate and deploy steps
(:mod:`retrain.train`) and for every registered version (:mod:`retrain.registry`). skops is
imported lazily: it walks every scikit-learn estimator at import (1-2 s).

The types to trust beyond skops' own defaults are recorded when a model is saved
(:func:`dumps_trusted`). skops *constructs* every trusted type it meets in a file (it calls it,
or its ``__new__``/``__setstate__``), so a list naming a function that runs code or touches the
system (``builtins.exec``, ``os.system``, ``subprocess.Popen``, ``numpy.load``...) would let a
crafted file run it: :func:`unsafe_types` names those, and :func:`load_trusted` refuses them.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from retrain.errors import DataError

__all__ = [
    "UNSAFE_MODULES",
    "dumps_trusted",
    "load_trusted",
    "quiet_skops",
    "skops_io",
    "unsafe_types",
]

#: Top-level modules whose functions and classes run code, load pickles, or reach the system
#: (processes, files, network, the interpreter): never trusted, whatever a list says.
UNSAFE_MODULES: Final = frozenset(
    {
        "_io",
        "_pickle",
        "_posixsubprocess",
        "_thread",
        "asyncio",
        "bdb",
        "cloudpickle",
        "code",
        "codeop",
        "ctypes",
        "dbm",
        "dill",
        "ftplib",
        "gc",
        "http",
        "importlib",
        "inspect",
        "io",
        "joblib",
        "marshal",
        "multiprocessing",
        "nt",
        "os",
        "pathlib",
        "pdb",
        "pickle",
        "pkgutil",
        "platform",
        "posix",
        "pty",
        "runpy",
        "shelve",
        "shutil",
        "signal",
        "site",
        "smtplib",
        "socket",
        "sqlite3",
        "subprocess",
        "sys",
        "sysconfig",
        "tempfile",
        "threading",
        "types",
        "urllib",
        "webbrowser",
        "zipimport",
    }
)
#: Single names that run code or load pickles although their module is otherwise harmless.
_UNSAFE_NAMES: Final = frozenset(
    {
        "builtins.__import__",
        "builtins.breakpoint",
        "builtins.compile",
        "builtins.delattr",
        "builtins.eval",
        "builtins.exec",
        "builtins.exit",
        "builtins.getattr",
        "builtins.globals",
        "builtins.help",
        "builtins.input",
        "builtins.locals",
        "builtins.open",
        "builtins.quit",
        "builtins.setattr",
        "builtins.vars",
        "functools.reduce",
        "numpy.load",
        "numpy.lib.npyio.load",
        "numpy.fromfile",
        "numpy.memmap",
        "operator.attrgetter",
        "operator.methodcaller",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
    }
)
_DOTTED: Final = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+")


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


def unsafe_types(types: Iterable[str]) -> list[str]:
    """The entries of a trusted-types list that must never be trusted: names in
    :data:`UNSAFE_MODULES` or of a code-running function, and anything that is not a dotted
    ``module.name``. Empty for every list a scikit-learn pipeline needs."""
    bad = []
    for name in types:
        text = str(name)
        top = text.split(".", 1)[0]
        if not _DOTTED.fullmatch(text) or top in UNSAFE_MODULES or text in _UNSAFE_NAMES:
            bad.append(text)
    return sorted(set(bad))


def dumps_trusted(model: Any) -> tuple[bytes, list[str]]:
    """``model`` as skops bytes, and the types it holds that skops does not trust by default
    (the list to trust when loading it back)."""
    sio = skops_io()
    with quiet_skops():
        data: bytes = sio.dumps(model)
        return data, sorted(sio.get_untrusted_types(data=data))


def load_trusted(path: str | Path, trusted: list[str]) -> Any:
    """Load a skops file, trusting only ``trusted`` beyond skops' defaults; a list naming a
    type that must never be trusted (:func:`unsafe_types`) is refused before the file is read."""
    bad = unsafe_types(trusted)
    if bad:
        names = ", ".join(bad)
        problem = f"refusing to trust {names}: these types run code or reach the system"
        raise DataError([problem], source=str(path))
    sio = skops_io()
    with quiet_skops():
        return sio.load(path, trusted=list(trusted))
