"""The feeds against their FHIR source: parsing, counts, identifiers, values, order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import hl7  # type: ignore[import-untyped]
import pytest

from cmio.synth.hl7v2 import write_feeds
from cmio.synth.hl7v2.context import digits
from cmio.synth.hl7v2.feed import NOTES
from tests.synth_hl7v2.conftest import FEED_SEED, Feeds, messages_of

STRUCTURE = {
    "ADT^A01": "ADT_A01",
    "ADT^A04": "ADT_A01",
    "ADT^A08": "ADT_A01",
    "ADT^A03": "ADT_A03",
    "ORU^R01": "ORU_R01",
    "VXU^V04": "VXU_V04",
}


def _parsed(feeds: Feeds, name: str = "all.hl7") -> list[Any]:
    return [hl7.parse(m) for m in messages_of(feeds, name)]


def _kind(msg: Any) -> str:
    return f"{msg.extract_field('MSH', 1, 9, 1, 1)}^{msg.extract_field('MSH', 1, 9, 1, 2)}"


def _is_lab(report: dict[str, Any]) -> bool:
    return any(c["code"] == "LAB" for cat in report.get("category", []) for c in cat["coding"])


def test_every_message_parses_with_right_header(feeds: Feeds) -> None:
    parsed = _parsed(feeds)
    assert len(parsed) == feeds.summary.messages > 100
    for msg in parsed:
        kind = _kind(msg)
        assert msg.extract_field("MSH", 1, 9, 1, 3) == STRUCTURE[kind]
        assert str(msg.segment("MSH")[12]) == "2.5.1"
        assert str(msg.segment("MSH")[11]) == "P"
        assert str(msg.segment("MSH")[3]) and str(msg.segment("MSH")[4])
        assert str(msg.segment("MSH")[5]) and str(msg.segment("MSH")[6])
        assert msg.segment("PID") is not None
        if kind.startswith("ADT"):
            assert str(msg.segment("EVN")[1]) == kind[4:]
            assert msg.extract_field("PV1", 1, 19, 1, 5) == "VN"
    ids = [str(m.segment("MSH")[10]) for m in parsed]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_counts_match_fhir(feeds: Feeds) -> None:
    counts = Counter(_kind(m) for m in _parsed(feeds))
    assert dict(counts) == feeds.summary.by_type
    encounters = feeds.resources["Encounter"].values()
    admits = sum(1 for e in encounters if e["class"]["code"] in ("IMP", "EMER"))
    ended = sum(
        1 for e in encounters if e["class"]["code"] in ("IMP", "EMER") and "end" in e["period"]
    )
    labs = sum(1 for r in feeds.resources["DiagnosticReport"].values() if _is_lab(r))
    assert labs > 0 and admits > 0
    assert counts["ORU^R01"] == labs
    assert counts["VXU^V04"] == len(feeds.resources["Immunization"])
    assert counts["ADT^A01"] == admits
    assert counts["ADT^A03"] == ended
    assert counts["ADT^A04"] == len(feeds.resources["Encounter"]) - admits
    assert 0 < counts["ADT^A08"] < len(feeds.resources["Patient"])


def test_admissions_pair_and_discharge_follows_admit(feeds: Feeds) -> None:
    seen: dict[str, str] = {}
    for msg in _parsed(feeds, "adt.hl7"):
        kind = _kind(msg)
        visit = msg.extract_field("PV1", 1, 19, 1, 1)
        if kind == "ADT^A01":
            assert msg.extract_field("PV1", 1, 2, 1, 1) in ("I", "E")
            assert visit not in seen
            seen[visit] = "open"
        elif kind == "ADT^A03":
            assert seen.get(visit) == "open"
            assert msg.extract_field("PV1", 1, 45, 1, 1)
            seen[visit] = "closed"
        elif kind == "ADT^A04":
            assert msg.extract_field("PV1", 1, 2, 1, 1) == "O"
    assert "closed" in seen.values()


def test_pid3_is_the_patient_mrn(feeds: Feeds) -> None:
    mrns = set()
    for patient in feeds.resources["Patient"].values():
        for ident in patient["identifier"]:
            if any(c["code"] == "MR" for c in ident.get("type", {}).get("coding", [])):
                mrns.add(ident["value"])
    used = set()
    for msg in _parsed(feeds):
        assert msg.extract_field("PID", 1, 3, 1, 5) == "MR"
        assert msg.extract_field("PID", 1, 3, 1, 4, 1)
        used.add(msg.extract_field("PID", 1, 3, 1, 1))
    assert used <= mrns and len(used) > len(mrns) // 2


def test_obx_values_and_units_equal_observations(feeds: Feeds) -> None:
    reports = {
        "L" + digits(r["id"], 9): r
        for r in feeds.resources["DiagnosticReport"].values()
        if _is_lab(r)
    }
    observations = feeds.resources["Observation"]
    numeric = coded = 0
    for msg in _parsed(feeds, "oru.hl7"):
        report = reports[msg.extract_field("OBR", 1, 3, 1, 1)]
        assert msg.extract_field("OBR", 1, 4, 1, 1) == report["code"]["coding"][0]["code"]
        assert msg.extract_field("OBR", 1, 4, 1, 3) == "LN"
        obx = list(msg.segments("OBX"))
        assert len(obx) == len(report["result"])
        for i, ref in enumerate(report["result"], start=1):
            obs = observations[ref["reference"].split("/")[1]]
            assert msg.extract_field("OBX", i, 3, 1, 1) == obs["code"]["coding"][0]["code"]
            assert msg.extract_field("OBX", i, 3, 1, 3) == "LN"
            assert msg.extract_field("OBX", i, 11, 1, 1) == "F"
            if "valueQuantity" in obs:
                numeric += 1
                quantity = obs["valueQuantity"]
                assert msg.extract_field("OBX", i, 2, 1, 1) == "NM"
                assert float(msg.extract_field("OBX", i, 5, 1, 1)) == quantity["value"]
                assert msg.extract_field("OBX", i, 6, 1, 1) == quantity["code"]
                assert msg.extract_field("OBX", i, 6, 1, 3) == "UCUM"
                assert msg.extract_field("OBX", i, 8, 1, 1) in ("N", "H", "L")
            else:
                coded += 1
                concept = obs["valueCodeableConcept"]["coding"][0]
                assert msg.extract_field("OBX", i, 2, 1, 1) == "CWE"
                assert msg.extract_field("OBX", i, 5, 1, 1) == concept["code"]
    assert numeric > 0
    assert coded >= 0


def test_vxu_carries_cvx_and_route(feeds: Feeds) -> None:
    cvx = Counter(
        i["vaccineCode"]["coding"][0]["code"] for i in feeds.resources["Immunization"].values()
    )
    sent: Counter[str] = Counter()
    for msg in _parsed(feeds, "vxu.hl7"):
        assert msg.extract_field("RXA", 1, 5, 1, 3) == "CVX"
        assert msg.extract_field("RXR", 1, 1, 1, 3) == "HL70162"
        assert msg.extract_field("ORC", 1, 1, 1, 1) == "RE"
        sent[msg.extract_field("RXA", 1, 5, 1, 1)] += 1
    assert sent == cvx


def test_quirks_present(feeds: Feeds) -> None:
    text = feeds.text("all.hl7")
    assert "\rZPI|1|" in text
    assert "\rNTE|1|L|" in text
    for escape in ("\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\"):
        assert escape in text
    assert "\rPID|1||" in text and "^MR~" in text  # PID-3 repetitions
    assert "^PRS^CP" in text  # a second phone repetition
    assert "||||\r" in text  # empty trailing fields kept by some senders
    assert "\n" not in text
    notes = {
        hl7.parse(m).extract_field("NTE", 1, 3, 1, 1)
        for m in messages_of(feeds, "oru.hl7")
        if "\rNTE|" in m
    }
    assert notes <= set(NOTES) and notes


def test_mllp_variant_frames_every_message(feeds: Feeds) -> None:
    data = (feeds.out / "all.mllp").read_bytes()
    blocks = data.split(b"\x1c\r")
    assert blocks[-1] == b""
    framed = [b[1:].decode("utf-8") for b in blocks[:-1] if b.startswith(b"\x0b")]
    assert framed == messages_of(feeds)
    per_type = sum(len(messages_of(feeds, n)) for n in ("adt.hl7", "oru.hl7", "vxu.hl7"))
    assert per_type == len(framed)


def test_a08_update_brings_the_fhir_values(feeds: Feeds) -> None:
    patients = {p["identifier"][0]["value"]: p for p in feeds.resources["Patient"].values()}
    updated = 0
    for msg in _parsed(feeds, "adt.hl7"):
        if _kind(msg) != "ADT^A08":
            continue
        patient = patients[msg.extract_field("PID", 1, 3, 1, 1)]
        assert msg.extract_field("PID", 1, 11, 1, 1) == patient["address"][0]["line"][0]
        assert msg.extract_field("PID", 1, 13, 1, 1) == patient["telecom"][0]["value"]
        updated += 1
    assert updated


def test_same_seed_same_bytes(feeds: Feeds, tmp_path: Path) -> None:
    again = write_feeds(feeds.source, tmp_path / "again", seed=FEED_SEED)
    assert again.by_type == feeds.summary.by_type
    for name in (*feeds.summary.files, "manifest.json"):
        assert (tmp_path / "again" / name).read_bytes() == (feeds.out / name).read_bytes()
    other = write_feeds(feeds.source, tmp_path / "other", seed=FEED_SEED + 1)
    assert other.by_type["ORU^R01"] == feeds.summary.by_type["ORU^R01"]
    assert (tmp_path / "other" / "all.hl7").read_bytes() != (feeds.out / "all.hl7").read_bytes()


@pytest.mark.parametrize("name", ["adt.hl7", "oru.hl7", "vxu.hl7"])
def test_per_type_files_hold_one_family(feeds: Feeds, name: str) -> None:
    kinds = {_kind(m)[:3] for m in _parsed(feeds, name)}
    assert kinds == {name[:3].upper()}


def test_admit_carries_visit_number_start_and_diagnoses(feeds: Feeds) -> None:
    encounters = {digits(e["id"], 12): e for e in feeds.resources["Encounter"].values()}
    checked = 0
    for text in messages_of(feeds, "adt.hl7"):
        msg = hl7.parse(text)
        if _kind(msg) != "ADT^A01":
            continue
        encounter = encounters[msg.extract_field("PV1", 1, 19, 1, 1)]
        start = encounter["period"]["start"]
        stamp = start[:19].replace("-", "").replace("T", "").replace(":", "")
        assert msg.extract_field("PV1", 1, 44, 1, 1).startswith(stamp)
        assert msg.extract_field("EVN", 1, 6, 1, 1).startswith(stamp)
        icd = [
            c["code"]
            for r in encounter.get("reasonCode", [])
            for c in r["coding"]
            if c["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
        ]
        sent = [s for s in text.split("\r") if s.startswith("DG1|")]
        assert [s.split("|")[3].split("^")[0] for s in sent] == icd
        assert all(s.split("|")[3].split("^")[2] == "I10C" for s in sent)
        checked += 1
    assert checked


def test_output_does_not_depend_on_input_line_order(feeds: Feeds, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for path in feeds.source.glob("*.ndjson"):
        lines = path.read_bytes().splitlines(keepends=True)
        (shuffled / path.name).write_bytes(b"".join(reversed(lines)))
    write_feeds(shuffled, tmp_path / "out", seed=FEED_SEED)
    for name in feeds.summary.files:
        assert (tmp_path / "out" / name).read_bytes() == (feeds.out / name).read_bytes()
