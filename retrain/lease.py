"""The lease that serialises the registry writes of one model's runs across processes: the
``deploy`` step of ``retrain run`` and of the DAG alike (the Airflow pool covers DAG tasks only).

A run holds its model's lease while it writes to the registry (registering a version, moving
aliases), so two runs never interleave there: two bootstraps cannot race to register v1 and v2,
and one run can never complete another's promotion as "pending". A second run waits for the
lease (bounded: ``wait`` seconds), then is refused with :class:`LeaseHeldError` naming who holds
it and since when (retryable: the DAG task retries; ``retrain run`` says running again may
succeed). A holder renews its lease while it works (:meth:`ModelLease.hold`); a crashed
holder's lease expires after ``ttl`` and the next contender ends it.

The lease lives in MLflow, the one thing every runner of the model shares: one run per request
in the experiment ``<experiment>/lease``, RUNNING while wanted or held, FINISHED once given back,
KILLED once expired or superseded. MLflow has no compare-and-set, so who holds the lease is
decided by Lamport's bakery algorithm over the requests' tags, which needs only reads and
writes: a request is created ``choosing``, reads every live request, takes a ticket one above
the highest, stops choosing, and holds the lease once no live request is choosing and none has
a lower ``(ticket, run id)``. A request created after another's ticket was written sees that
ticket, so two contenders never both find themselves first. Uncontended, taking and giving back
the lease costs five MLflow calls (create, read, ticket, read, close) plus one experiment
lookup per process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlflow.entities import RunTag

from retrain.errors import LeaseHeldError, ProductionMovedError, RetrainError
from retrain.tracking import bounded, ensure_experiment, unreachable

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from retrain.config import RetrainConfig

__all__ = [
    "LEASE_TTL",
    "LEASE_WAIT",
    "Lease",
    "LeaseHeldError",
    "ModelLease",
    "ProductionMovedError",
]

logger = logging.getLogger(__name__)

#: How long a lease lasts without renewal (a holder renews it every third of that).
LEASE_TTL = timedelta(minutes=15)
#: How long a run waits for the lease before it is refused (another run's deploy: seconds).
LEASE_WAIT = 300.0
#: How long a contender waits for others still choosing their ticket (one or two round trips).
_CHOOSING_WAIT = 10.0

_KEY = "retrain.lease.key"
_HOLDER = "retrain.lease.holder"
_TICKET = "retrain.lease.ticket"
_CHOOSING = "retrain.lease.choosing"
_EXPIRES = "retrain.lease.expires"
_SINCE = "retrain.lease.since"
_RETRAINING = "retrain.lease.retraining_id"
_ENDED = "retrain.lease.ended"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Lease:
    """One request for (or holding of) a model's lease, as its MLflow run says."""

    key: str
    holder: str
    run_id: str
    ticket: int
    choosing: bool
    requested: datetime
    expires: datetime
    since: datetime | None = None
    retraining_id: str | None = None

    @classmethod
    def of(cls, run: Any) -> Lease:
        tags = run.data.tags
        since = tags.get(_SINCE)
        return cls(
            key=tags.get(_KEY, ""),
            holder=tags.get(_HOLDER, "?"),
            run_id=str(run.info.run_id),
            ticket=int(tags.get(_TICKET) or 0),
            choosing=tags.get(_CHOOSING) == "1",
            requested=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
            expires=datetime.fromisoformat(tags[_EXPIRES]) if _EXPIRES in tags else _now(),
            since=datetime.fromisoformat(since) if since else None,
            retraining_id=tags.get(_RETRAINING),
        )

    @property
    def order(self) -> tuple[int, str]:
        return (self.ticket, self.run_id)

    def describe(self) -> str:
        """``<holder> (retraining <id>) since <time> (its lease expires <time> unless renewed)``."""
        what = f" (retraining {self.retraining_id})" if self.retraining_id else ""
        return (
            f"{self.holder}{what} since {_stamp(self.since or self.requested)} "
            f"(its lease expires {_stamp(self.expires)} unless renewed)"
        )


class ModelLease:
    """Take, renew and give back the lease of ``config``'s model (every call bounded)."""

    def __init__(
        self,
        config: RetrainConfig,
        client: MlflowClient,
        *,
        ttl: timedelta = LEASE_TTL,
        wait: float = LEASE_WAIT,
        poll: float = 0.5,
    ) -> None:
        self.settings = config.registry
        self.client = client
        self.model = config.model.name
        self.experiment_name = f"{config.experiment_name}/lease"
        self.ttl = ttl
        self.wait = wait
        self.poll = poll
        self._experiment_id: str | None = None

    # --- reading ------------------------------------------------------------------------------

    def _experiment(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = ensure_experiment(self.client, self.experiment_name)
        return self._experiment_id

    def _live(self) -> list[Lease]:
        """Live requests (RUNNING, not expired), lowest ticket first; expired ones are ended."""
        runs = self.client.search_runs(
            [self._experiment()],
            filter_string="attributes.status = 'RUNNING'",
            max_results=1000,
        )
        now, live = _now(), []
        for run in runs:
            lease = Lease.of(run)
            if lease.expires < now:
                self._end(lease, "KILLED", f"expired {_stamp(lease.expires)}, ended {_stamp(now)}")
                logger.warning(
                    "lease of model %s: ended the expired lease of %s", self.model, lease.holder
                )
            else:
                live.append(lease)
        return sorted(live, key=lambda lease: lease.order)

    def current(self) -> Lease | None:
        """Who holds (or is first in line for) the model's lease, if anyone."""
        with bounded(self.settings, f"reading the lease of model {self.model}"):
            live = [lease for lease in self._live() if not lease.choosing and lease.ticket]
        return live[0] if live else None

    # --- writing ------------------------------------------------------------------------------

    def _end(self, lease: Lease, status: str, why: str) -> None:
        with contextlib.suppress(Exception):  # another contender may have ended it first
            self.client.set_tag(lease.run_id, _ENDED, why)
        self.client.set_terminated(lease.run_id, status=status)

    def _expiry(self) -> str:
        return _stamp(_now() + self.ttl)

    def acquire(
        self, key: str, *, holder: str | None = None, retraining_id: str | None = None
    ) -> Lease:
        """Take the lease for ``key`` (a run key), waiting up to ``wait`` seconds for the run
        that holds it. Raises :class:`LeaseHeldError` naming the holder and since when if it is
        still held then; the refused request is withdrawn. A live request of the same ``key``
        (a crashed earlier attempt of a retried task) is ended, not waited for."""
        who = holder or f"{key} (pid {os.getpid()} on {socket.gethostname()})"
        with bounded(self.settings, f"taking the lease of model {self.model}"):
            # choosing: a contender that dies now blocks the others for seconds, not a ttl
            choosing_until = _stamp(_now() + timedelta(seconds=3 * _CHOOSING_WAIT))
            tags = {_KEY: key, _HOLDER: who, _CHOOSING: "1", _EXPIRES: choosing_until}
            if retraining_id:
                tags[_RETRAINING] = retraining_id
            run = self.client.create_run(
                self._experiment(), run_name=f"lease {key}"[:250], tags=tags
            )
            run_id = str(run.info.run_id)
            live = self._live()
            for earlier in live:
                if earlier.key == key and earlier.run_id != run_id:
                    self._end(earlier, "KILLED", f"superseded {_stamp(_now())} by {run_id}")
            ticket = 1 + max((lease.ticket for lease in live if lease.key != key), default=0)
            since = _now()
            self.client.log_batch(
                run_id,
                tags=[
                    RunTag(_TICKET, str(ticket)),
                    RunTag(_CHOOSING, "0"),
                    RunTag(_EXPIRES, self._expiry()),
                    RunTag(_SINCE, _stamp(since)),
                ],
            )
            mine = Lease(
                key, who, run_id, ticket, False, since, _now() + self.ttl, since, retraining_id
            )
            return self._wait_for_turn(mine)

    def _wait_for_turn(self, mine: Lease) -> Lease:
        started = time.monotonic()
        while True:
            live = self._live()
            if not any(lease.run_id == mine.run_id for lease in live):
                raise LeaseHeldError(
                    f"model {self.model}: the lease request of {mine.holder} expired or was "
                    "ended while it waited"
                )
            blockers = [
                lease
                for lease in live
                if lease.run_id != mine.run_id
                and (lease.choosing or (lease.ticket and lease.order < mine.order))
            ]
            if not blockers:
                return mine
            waited = time.monotonic() - started
            ahead = [lease for lease in blockers if not lease.choosing]
            if (ahead and waited >= self.wait) or waited >= max(self.wait, _CHOOSING_WAIT):
                self._end(mine, "FINISHED", f"withdrawn {_stamp(_now())}: refused")
                first = min(ahead or blockers, key=lambda lease: lease.order)
                raise LeaseHeldError(
                    f"model {self.model} is being deployed by {first.describe()}; this run "
                    f"waited {waited:.0f} s for it and was refused"
                )
            time.sleep(self.poll)

    def renew(self, lease: Lease) -> bool:
        """Push ``lease``'s expiry ``ttl`` ahead; ``False`` if it is no longer held."""
        with bounded(self.settings, f"renewing the lease of model {self.model}"):
            run = self.client.get_run(lease.run_id)
            if run.info.status != "RUNNING":
                return False
            self.client.set_tag(lease.run_id, _EXPIRES, self._expiry())
            return True

    def release(self, lease: Lease) -> None:
        """Give ``lease`` back (one call)."""
        with bounded(self.settings, f"giving back the lease of model {self.model}"):
            self.client.set_terminated(lease.run_id, status="FINISHED")

    @contextlib.contextmanager
    def hold(self, key: str, *, retraining_id: str | None = None) -> Iterator[Lease]:
        """Hold the model's lease for the block: taken (waiting up to ``wait`` s), renewed every
        third of ``ttl`` by a thread, given back at the end whatever happens (a failed give-back
        is logged: the lease then expires on its own; MLflow found unreachable moments ago is not
        waited on again)."""
        lease = self.acquire(key, retraining_id=retraining_id)
        stop = threading.Event()
        period = max(1.0, self.ttl.total_seconds() / 3)

        def renew() -> None:
            while not stop.wait(period):
                try:
                    if not self.renew(lease):
                        logger.warning("lease of model %s for %s was ended", self.model, key)
                        return
                except RetrainError as exc:
                    logger.warning("could not renew the lease of model %s: %s", self.model, exc)

        thread = threading.Thread(target=renew, name=f"lease {key}", daemon=True)
        thread.start()
        try:
            yield lease
        finally:
            stop.set()
            if unreachable(self.settings):
                logger.error("lease of model %s for %s: left to expire", self.model, key)
            else:
                try:
                    self.release(lease)
                except RetrainError as exc:
                    logger.error("could not give back the lease of model %s: %s", self.model, exc)
