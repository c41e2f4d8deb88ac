"""Structural validation done in the preparation worker: skipped by the writer only for the
very resource validated; a refusal reads as without the worker."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cmio.api.app as app
from cmio.api.app import WriteValidator, build_env
from cmio.api.env import Env, Settings
from cmio.api.hl7 import RouterSink
from cmio.api.router import FhirRouter
from cmio.interfaces.hl7v2.engine.destinations import SinkItem, SinkOutcome
from tests.interfaces.hl7v2.engine.test_prepworker import mapped_item


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    env = build_env(f"sqlite:///{tmp_path / 'store.db'}",
                    Settings(validation="off", terminology_db=None))  # fmt: skip
    yield env
    env.repository.close()


def count_structural(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resource types the writer's validator checks structurally from now on."""
    checked: list[str] = []
    inner = app.validate_structure

    def counted(model: Any, resource: dict[str, Any]) -> Any:
        checked.append(str(resource.get("resourceType")))
        return inner(model, resource)

    monkeypatch.setattr(app, "validate_structure", counted)
    return checked


def apply(sink: RouterSink, item: SinkItem, ahead: Any = None) -> SinkOutcome:
    (outcome,) = sink.apply([dataclasses.replace(item, ahead=ahead)])
    return outcome


def observations(item: SinkItem) -> list[dict[str, Any]]:
    entries = item.bundle["entry"]
    return [e["resource"] for e in entries if e["resource"]["resourceType"] == "Observation"]


def test_the_writer_skips_only_what_the_worker_validated(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = RouterSink(FhirRouter(env))
    spec = sink.ahead_spec()
    assert spec is not None and spec.structure
    build = spec.build()
    assert build is not None
    checked = count_structural(monkeypatch)
    item = mapped_item("V1", "P1")  # a new patient: every entry as the Bundle carries it
    ahead = build(item.bundle, {})
    assert all(e[3] is not None for e in ahead.entries.values())
    assert apply(sink, item, ahead).status == 200
    assert checked == []  # store checks, profiles and rules still ran (not structural)
    known = dict(sink.learned_ids(0)[1])
    item = mapped_item("V2", "P1")  # the known patient, unchanged: the sink leaves it out
    ahead = build(item.bundle, known)
    assert sum(e[3] is not None for e in ahead.entries.values()) == len(ahead.entries) - 1
    assert apply(sink, item, ahead).status == 200
    assert checked == []  # ... and points the references at it, as the worker guessed
    item = mapped_item("V3", "P1")  # a wrong guess of the known patient's id
    wrong = {key: "not-the-patient" for key in known}
    assert apply(sink, item, build(item.bundle, wrong)).status == 200
    assert "Observation" in checked  # the references differ: the writer validates them
    checked.clear()
    item = mapped_item("V4", "P2")
    ahead = build(item.bundle, {})
    changed = copy.deepcopy(item.bundle)  # a resource other than the one validated
    observations(dataclasses.replace(item, bundle=changed))[0]["status"] = "amended"
    assert apply(sink, dataclasses.replace(item, bundle=changed), ahead).status == 200
    assert checked == ["Observation"]


def test_a_refusal_reads_as_without_the_worker(env: Env) -> None:
    sink = RouterSink(FhirRouter(env))
    spec = sink.ahead_spec()
    assert spec is not None
    build = spec.build()
    assert build is not None
    item = mapped_item("X1", "P1")
    observations(item)[1]["valueFoo"] = 1  # an unknown element
    observations(item)[2]["issued"] = "yesterday"  # not an instant
    ahead = build(item.bundle, {})
    flags = [e[3] is not None for e in ahead.entries.values()]
    assert flags.count(False) == 2  # the worker found them invalid: the writer validates
    helped = apply(sink, item, ahead)
    alone = apply(sink, item)
    assert helped.status == alone.status == 400
    assert helped.detail == alone.detail and "valueFoo" in helped.detail
    valid = mapped_item("X2", "P1")  # validated ahead, then changed into an invalid one
    ahead = build(valid.bundle, {})
    broken = copy.deepcopy(valid.bundle)
    observations(dataclasses.replace(valid, bundle=broken))[0]["valueFoo"] = 1
    helped = apply(sink, dataclasses.replace(valid, bundle=broken), ahead)
    alone = apply(sink, dataclasses.replace(valid, bundle=broken))
    assert helped.status == alone.status == 400 and helped.detail == alone.detail


def test_no_skipping_for_a_validator_without_its_parts_apart(env: Env) -> None:
    assert isinstance(env.validator, WriteValidator)
    whole = env.validator
    env.validator = lambda resource: whole(resource)  # e.g. a server's own validator
    sink = RouterSink(FhirRouter(env))
    spec = sink.ahead_spec()
    assert spec is not None and not spec.structure
    build = spec.build()
    assert build is not None
    item = mapped_item("N1", "P1")
    ahead = build(item.bundle, {})
    assert all(e[3] is None for e in ahead.entries.values())
    assert apply(sink, item, ahead).status == 200
