"""``retrain_airflow.hosts.hostname``: the worker name Airflow records per task instance."""

from __future__ import annotations

import socket

import pytest

from retrain_airflow.hosts import HOSTNAME_ENV, hostname


def test_the_variable_names_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOSTNAME_ENV, " worker2 ")
    assert hostname() == "worker2"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_without_it_airflows_default(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(HOSTNAME_ENV, raising=False)
    else:
        monkeypatch.setenv(HOSTNAME_ENV, value)
    assert hostname() == socket.getfqdn()


def test_airflow_can_load_it_by_its_dotted_path() -> None:
    from airflow._shared.module_loading import import_string

    assert import_string("retrain_airflow.hosts.hostname") is hostname
