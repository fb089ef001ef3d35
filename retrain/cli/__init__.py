"""The ``retrain`` command line. Every command calls the same library function as its DAG task.

Exit codes (:class:`retrain.constants.ExitCode`): 0 = success / not triggered, 10 = ``check``
triggered or ``drift`` found, 3 = ``run`` rejected the candidate, 2 = bad input, 1 = failure.

One module per group of commands (``check``, ``drift``, ``registry``, ``run``, ``config``), each
registering its own arguments; :mod:`~retrain.cli.output` and :mod:`~retrain.cli.render` hold
what they print with.
"""

from __future__ import annotations

from retrain.cli.main import build_parser, main
from retrain.constants import ExitCode

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_TRIGGERED",
    "build_parser",
    "main",
]

EXIT_OK = ExitCode.OK
EXIT_FAILURE = ExitCode.FAILURE
EXIT_BAD_INPUT = ExitCode.BAD_INPUT
EXIT_REJECTED = ExitCode.REJECTED
EXIT_TRIGGERED = ExitCode.TRIGGERED
