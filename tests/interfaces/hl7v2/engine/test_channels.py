"""Channel YAML: defaults, every section, and errors that name the key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cmio.interfaces.hl7v2.engine.channels import (
    ChannelError,
    RetryPolicy,
    load_channel,
    load_channels,
    parse_channel,
)


def test_full_channel_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(
        """
name: lab-feed
journal: j.db
source: {type: mllp, port: 2575, max_message_bytes: 2048, frame_timeout: 5}
accept: {message_types: [ORU^R01], versions: ["2.3", "2.5.1"], processing_ids: [P]}
filters:
  - {field: MSH-4, in: [HOSP]}
  - {field: PID-3.4, matches: "^HO"}
  - {field: MSH-11, not_in: [T]}
mapping: {timezone: "-05:00"}
destinations:
  - {type: store}
  - {type: folder, path: out}
  - {type: mllp, host: 10.0.0.5, port: 2576}
retry: {max_attempts: 4, initial_delay: 0.1, multiplier: 3, max_delay: 1}
""",
        encoding="utf-8",
    )
    config = load_channel(path)
    assert config.name == "lab-feed" and config.journal == "j.db"
    assert config.source.max_message_bytes == 2048 and config.source.frame_timeout == 5
    assert config.accept.message_types == ("ORU^R01",)
    assert config.accept.processing_ids == ("P",)
    assert [f.path for f in config.filters] == ["MSH-4", "PID-3.4", "MSH-11"]
    assert config.filters[0].accepts("HOSP") and not config.filters[0].accepts("X")
    assert config.filters[1].accepts("HOSP") and not config.filters[1].accepts("XHO")
    assert not config.filters[2].accepts("T")
    assert [d.type for d in config.destinations] == ["store", "folder", "mllp"]
    assert config.mapping == {"timezone": "-05:00"}
    assert [config.retry.delay(n) for n in (1, 2, 3)] == pytest.approx([0.1, 0.3, 0.9])
    assert config.retry.delay(5) == 1


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: c\n", encoding="utf-8")
    config = load_channel(path)
    assert config.source.type == "mllp" and config.source.port == 2575
    assert [d.type for d in config.destinations] == ["store"]
    assert config.retry == RetryPolicy()
    assert "2.8.2" in config.accept.versions and "2.3" in config.accept.versions


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("source: {}", "name"),
        ("name: c\nretry: {max_attempts: 0}", "retry.max_attempts"),
        ("name: c\nsource: {type: ftp}", "source.type"),
        ("name: c\nsource: {type: folder}", "source.path"),
        ("name: c\nsource: {prot: 1}", "source.prot: unknown key"),
        ("name: c\nfilters: [{field: PID3, in: [a]}]", "filters[0].field"),
        ("name: c\nfilters: [{field: PID-3, in: [a], matches: b}]", "filters[0]"),
        ("name: c\nfilters: [{field: PID-3, matches: '('}]", "filters[0].matches"),
        ("name: c\ndestinations: [{type: mllp, host: h}]", "destinations[0]"),
        ("name: c\naccept: {versions: ['2.1']}", "accept.versions"),
        ("name: c\nbogus: 1", "bogus: unknown key"),
        ("name: [", "line 1"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ChannelError, match=f"(?s)c.yaml.*{re.escape(where)}"):
        load_channel(path)


def test_return_destination_and_retention() -> None:
    config = parse_channel({"name": "r", "return_destination": {"host": "h", "port": 7},
                            "retention": {"days": 2, "prune_every": 0}})  # fmt: skip
    assert config.return_destination is not None and config.return_destination.port == 7
    assert (config.retention.days, config.retention.duplicate_window_days) == (2, 2)
    assert parse_channel({"name": "r"}).retention.days == 30
    bad = [
        ({"return_destination": {"host": "h"}}, "return_destination: an mllp destination"),
        ({"return_destination": {"type": "folder"}}, "return_destination.type"),
        ({"retention": {"days": 5, "duplicate_window_days": 1}}, "duplicate_window_days"),
        ({"retention": {"days": -1}}, "retention.days"),
    ]
    for extra, message in bad:
        with pytest.raises(ChannelError, match=message):
            parse_channel({"name": "r", **extra})


def test_load_channels_from_a_folder_or_a_path_list(tmp_path: Path) -> None:
    folder = tmp_path / "channels"
    folder.mkdir()
    for name in ("b-feed", "a-feed"):
        (folder / f"{name}.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    (folder / "notes.txt").write_text("not a channel", encoding="utf-8")
    assert [c.name for c in load_channels(str(folder))] == ["a-feed", "b-feed"]
    one, two = folder / "b-feed.yaml", folder / "a-feed.yaml"
    listed = load_channels(f"{one}{os.pathsep}{two}")
    assert [c.name for c in listed] == ["b-feed", "a-feed"]
    with pytest.raises(ChannelError, match="no such channel file or folder"):
        load_channels(str(tmp_path / "missing"))
    (folder / "bad.yaml").write_text("name: x\nretry: {max_attempts: 0}\n", encoding="utf-8")
    with pytest.raises(ChannelError, match=re.escape("bad.yaml")):
        load_channels(str(folder))
