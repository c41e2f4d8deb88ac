"""Fixtures: a small synthetic health system and its HL7 v2 feeds, once per session."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.synth import SynthConfig, generate
from cmio.synth.hl7v2 import FeedSummary, write_feeds

PATIENTS = 30
SYNTH_SEED = 11
FEED_SEED = 7


@dataclass
class Feeds:
    """A synth folder, its resources by type, and the feeds written from it."""

    source: Path
    out: Path
    summary: FeedSummary
    resources: dict[str, dict[str, dict[str, Any]]]

    def text(self, name: str) -> str:
        """One feed file as text."""
        return (self.out / name).read_bytes().decode("utf-8")


def split_messages(text: str) -> list[str]:
    """Split back-to-back ER7 messages (each starts with ``MSH|``)."""
    if not text:
        return []
    assert text.startswith("MSH|") and text.endswith("\r")
    return ["MSH|" + part for part in text[4:].split("\rMSH|")]


def _fix(messages: list[str]) -> list[str]:
    # split() drops the "\r" that ended each message but the last
    return [m if m.endswith("\r") else m + "\r" for m in messages]


def messages_of(feeds: Feeds, name: str = "all.hl7") -> list[str]:
    """The messages of one feed file, each ending with ``\\r``."""
    return _fix(split_messages(feeds.text(name)))


@pytest.fixture(scope="session")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Feeds:
    """30 patients generated with ``cmio.synth.generate`` and their feeds."""
    source = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(PATIENTS, source, seed=SYNTH_SEED))
    out = tmp_path_factory.mktemp("feeds")
    summary = write_feeds(source, out, seed=FEED_SEED)
    resources: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for kind in ("Patient", "Encounter", "DiagnosticReport", "Observation", "Immunization"):
        for line in (source / f"{kind}.ndjson").read_bytes().splitlines():
            resource = orjson.loads(line)
            resources[kind][resource["id"]] = resource
    return Feeds(source, out, summary, dict(resources))
