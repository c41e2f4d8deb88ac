"""Encoding rules: escapes, empty trailing fields, DTM/NM formats, MLLP framing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import hl7  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from cmio.synth.hl7v2.encode import (
    Encoded,
    comp,
    escape,
    mllp_frame,
    number,
    rep,
    segment,
    sub,
    ts,
    unescape,
)
from cmio.synth.hl7v2.messages import message, msh, pid
from cmio.synth.hl7v2.records import Address, Header, PatientRecord, Phone, Quirks


def test_escape_each_delimiter() -> None:
    assert escape("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert escape("plain") == "plain"
    assert unescape(escape("line1\nline2\r")) == "line1\nline2\r"


@given(st.text(alphabet=st.sampled_from(list("ab|^&~\\\r\n X1")), max_size=40))
def test_escape_round_trip(text: str) -> None:
    assert unescape(escape(text)) == text


def test_composites_escape_once_and_drop_trailing_empties() -> None:
    assert comp("A&B", sub("X", "Y"), None, "") == "A\\T\\B^X&Y"
    assert rep(comp("1", "MR"), None, comp("2")) == "1^MR~2"
    assert comp(Encoded("a^b")) == "a^b"
    assert segment("PID", "1", None, None) == "PID|1"
    assert segment("PV1", "1", pad_to=5) == "PV1|1||||"
    assert segment("ZPI") == "ZPI"


def test_msh_field_numbering() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-5)))
    header = Header("ADT", "A04", "ADT_A01", "APP", "FAC", when, "42")
    parsed = hl7.parse(message([msh(header, Quirks())]))
    assert str(parsed.segment("MSH")[9]) == "ADT^A04^ADT_A01"
    assert str(parsed.segment("MSH")[10]) == "42"
    assert str(parsed.segment("MSH")[11]) == "P"
    assert str(parsed.segment("MSH")[12]) == "2.5.1"
    assert str(parsed.segment("MSH")[7]) == "20250304050607-0500"


def test_timestamps_and_numbers() -> None:
    assert ts(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20250102030405+0000"
    assert ts(datetime(2006, 3, 5)) == "20060305"
    assert ts(
        datetime(2025, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=5, minutes=30))), False
    ) == ("202501020304+0530")
    assert number(13.8) == "13.8"
    assert number(105) == "105"
    assert number(0.00001) == "0.00001"
    assert float(number(1e-7)) == 1e-7


def test_mllp_frame() -> None:
    framed = mllp_frame("MSH|^~\\&|A\r")
    assert framed.startswith(b"\x0b") and framed.endswith(b"\x1c\r")
    assert framed[1:-2] == b"MSH|^~\\&|A\r"


def test_name_and_address_with_delimiters_decode_back() -> None:
    patient = PatientRecord(
        id="p1",
        mrn="RB1",
        mrn_system="https://example.org/mrn",
        mrn_authority="RBH",
        family="O|Brien^Smith",
        given=("Ann&Mary", "Lou~ise"),
        sex="F",
        birth_date="1980-02-03",
        addresses=(Address(("1 Main St\\Rear",), "Columbus", "OH", "43215", "US"),),
        phones=(Phone("614-555-0100"),),
    )
    when = datetime(2025, 3, 4, tzinfo=UTC)
    text = message(
        [
            msh(Header("ADT", "A08", "ADT_A01", "A", "F", when, "1"), Quirks()),
            pid(patient, Quirks()),
        ]
    )
    parsed = hl7.parse(text)
    # python-hl7's extract_field decodes the escape sequences
    assert parsed.extract_field("PID", 1, 5, 1, 1) == "O|Brien^Smith"
    assert parsed.extract_field("PID", 1, 5, 1, 2) == "Ann&Mary"
    assert parsed.extract_field("PID", 1, 5, 1, 3) == "Lou~ise"
    assert parsed.extract_field("PID", 1, 11, 1, 1) == "1 Main St\\Rear"
    raw_name = str(parsed.segment("PID")[5]).split("^")[0]
    assert raw_name == "O\\F\\Brien\\S\\Smith"
    assert parsed.unescape(raw_name) == unescape(raw_name) == "O|Brien^Smith"
    assert parsed.extract_field("PID", 1, 3, 1, 1) == "RB1"
    assert parsed.extract_field("PID", 1, 3, 1, 5) == "MR"
    assert parsed.extract_field("PID", 1, 7, 1, 1) == date(1980, 2, 3).strftime("%Y%m%d")
