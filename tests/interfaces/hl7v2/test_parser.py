"""The HL7 v2 parser: delimiters, escapes, structure, terminators, errors."""

from __future__ import annotations

import pickle

import hl7  # type: ignore[import-untyped]
import pytest

from cmio.interfaces.hl7v2 import (
    Delimiters,
    ParseError,
    escape,
    message_structure,
    parse,
    split_messages,
    unescape,
)

ORU = (
    "MSH|^~\\&|LIS|LAB^1.2.3^ISO|EHR|HOSP|20250301120000-0500||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||123^^^HOSP&1.2.840&ISO^MR~999^^^SSA^SS||Doe^Jane\\S\\Ann^Q||19800102|F\r"
    "OBR|1|P1|F1|24323-8^CMP^LN\r"
    "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F\r"
    "OBX|2|ST|X^Comment^L||a\\F\\b\\E\\c\\.br\\d\\T\\e\\R\\f|||\r"
    "ZPI|1|custom^value\r"
)


def test_message_header_accessors() -> None:
    m = parse(ORU)
    assert m.control_id == "C1"
    assert m.message_type == ("ORU", "R01", "ORU_R01")
    assert m.version == "2.5.1"
    assert m.sending == ("LIS", "LAB")
    assert m.receiving == ("EHR", "HOSP")
    assert m.timestamp == "20250301120000-0500"
    assert m.processing_id == "P"
    assert m.names == ["MSH", "PID", "OBR", "OBX", "OBX", "ZPI"]
    assert m.delimiters == Delimiters()


def test_fields_repetitions_components_subcomponents() -> None:
    m = parse(ORU)
    pid = m["PID"][0]
    reps = pid.field(3).repetitions
    assert [r.value for r in reps] == ["123", "999"]
    assert reps[0].component(4).subcomponents == ["HOSP", "1.2.840", "ISO"]
    assert pid.get(3, 1, 4, 2) == "1.2.840"
    assert pid.get(3, 2, 5) == "SS"
    assert pid.get(3, 3) == ""
    assert pid.get(5, 1, 2) == "Jane^Ann"
    assert m.value("PID-3(2).1") == "999"
    assert m.value("PID-3.4.3") == "ISO"
    assert m.value("OBX[2]-5") == "a|b\\c\nd&e~f"
    assert m.value("OBX[3]-5") == ""
    assert m.value("NTE-1") == ""
    assert m.value("ZPI-2.2") == "value"
    assert m.value("MSH-1") == "|"
    assert m.value("MSH-2") == "^~\\&"
    assert m.value("MSH-9.3") == "ORU_R01"
    assert len(pid) == 8
    assert pid.raw_field(99) == ""
    with pytest.raises(ValueError, match="malformed"):
        m.value("pid-3")


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segment_terminators_bom_and_mllp_framing(terminator: str) -> None:
    text = ORU.replace("\r", terminator)
    for data in (
        text,
        text.encode(),
        b"\xef\xbb\xbf" + text.encode(),
        b"\x0b" + text.encode() + b"\x1c\r",
        b"\x0b\xef\xbb\xbf" + text.encode() + b"\x1c\r",
        "\x0b\ufeff" + text + "\x1c\r",
    ):
        m = parse(data)
        assert m.names[-1] == "ZPI"
        assert m.encode() == ORU
        assert m.value("OBX-3.2") == "Glucose"


def test_blank_lines_missing_fields_and_trailing_delimiters() -> None:
    m = parse("MSH|^~\\&|A||||||ADT^A08|X|P|2.3|||\r\r\nPID|||42^^^^MR^^||||||||\r\n\n")
    assert m.message_type == ("ADT", "A08", "ADT_A01")
    assert m.version == "2.3"
    assert m.value("PID-3.5") == "MR"
    assert m.value("PID-3.6") == ""
    assert m.value("PID-2") == ""
    assert m.value("PID-30") == ""
    assert m.segment("PID") is not None and not m.segment("PID").field(5)  # type: ignore[union-attr]


def test_custom_delimiters_and_truncation_character() -> None:
    m = parse("MSH*!@%$#*APP*FAC*****ORU!R01*9*P*2.7\rPID*1**7!!!A$B!MR@8**x%S%y%T%z%P%%F%")
    assert m.delimiters == Delimiters("*", "!", "@", "%", "$", "#")
    assert m.message_type.structure == "ORU_R01"
    assert m.value("PID-3.4.2") == "B"
    assert m.value("PID-3(2)") == "8"
    assert m.value("PID-5") == "x!y$z#*"


def test_escapes() -> None:
    d = "|^~\\&"
    assert unescape("\\H\\bold\\N\\ plain", d) == "bold plain"
    assert unescape("a\\.sp 2\\b\\.in +4\\c", d) == "a\n\nbc"
    assert unescape("\\XC3A9\\t\\X0D0A\\", d) == "\u00e9t\r\n"
    assert unescape("\\XE9\\", d, "latin-1") == "\u00e9"
    assert unescape("\\Zlocal\\ kept \\C2842\\x", d) == "\\Zlocal\\ kept x"
    assert unescape("open \\ never closed", d) == "open \\ never closed"
    assert unescape("\\Q\\", d) == "\\Q\\"
    raw = "a|b^c~d\\e&f\r\ng"
    assert unescape(escape(raw, d), d) == raw


def test_strict_escapes_name_segment_field_and_position() -> None:
    text = "MSH|^~\\&|A|B\rPID|1||x\\Q\\y\r"
    assert parse(text).value("PID-3") == "x\\Q\\y"
    with pytest.raises(ParseError) as info:
        parse(text, strict=True)
    err = info.value
    assert (err.segment, err.segment_index, err.field) == ("PID", 2, 3)
    assert err.position is not None and text[err.position :].startswith("\\Q\\")
    assert "PID-3" in str(err)
    text = "MSH|^~\\&|A\\B|B\r"
    with pytest.raises(ParseError) as info:
        parse(text, strict=True)
    assert info.value.field == 3 and text[info.value.position or 0] == "\\"


@pytest.mark.parametrize(
    ("data", "reason", "segment", "field"),
    [
        ("", "empty", None, None),
        ("\r\n\r\n", "empty", None, None),
        ("PID|1\r", "starts with an MSH", "PID", None),
        ("MSH|^~", "too short", "MSH", 2),
        ("MSH|^~\\&&|A\r", "invalid or repeated delimiter", "MSH", 2),
        ("MSH|^~|A|B|C|D|E\r", "4 encoding characters", "MSH", 2),
        ("MSHA^~\\&|A\r", "invalid or repeated delimiter", "MSH", 1),
        ("MSH|^~\\&|A\rPID|1\rP D|2\r", "invalid segment id", None, None),
        ("MSH|^~\\&|A\rPIDX|1\r", "invalid segment id", "PID", None),
        ("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r", "second MSH", "MSH", None),
        ("MSH|^~\\&|A\rPID|\x00\x01\r", "control character", "PID", None),
        (b"MSH|^~\\&|A||||||||2.5|||||||UNICODE UTF-8\rPID|\xff\r", "not valid", None, None),
        (b"MSH|^~\\&|A||||||||2.5|||||||KLINGON\r", "unknown character set", "MSH", 18),
    ],
)
def test_errors_name_the_place(
    data: str | bytes, reason: str, segment: str | None, field: int | None
) -> None:
    with pytest.raises(ParseError, match=reason) as info:
        parse(data)
    assert info.value.segment == segment
    assert info.value.field == field
    assert info.value.reason in str(info.value)
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_invalid_segment_position_points_at_the_segment() -> None:
    text = "MSH|^~\\&|A\r\nPID|1\r\n123|2\r\n"
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.segment_index == 3
    assert info.value.position == text.index("123|")


def test_character_sets() -> None:
    latin = "MSH|^~\\&|A||||||||2.5|||||||8859/1\rPID|1||||M\u00fcller\r".encode("latin-1")
    assert parse(latin).value("PID-5") == "M\u00fcller"
    assert parse(latin).charset == "latin-1"
    undeclared = "MSH|^~\\&|A\rPID|1||||M\u00fcller\r".encode("latin-1")
    assert parse(undeclared).value("PID-5") == "M\u00fcller"
    utf8 = "MSH|^~\\&|A\rPID|1||||\u5c71\u7530\r".encode()
    assert parse(utf8).value("PID-5") == "\u5c71\u7530"
    utf16 = "MSH|^~\\&|A\rPID|1||||x\r".encode("utf-16")
    assert parse(utf16).value("PID-5") == "x"


def test_message_structure_table_0354() -> None:
    assert message_structure("ADT", "A04") == "ADT_A01"
    assert message_structure("ADT", "A31") == "ADT_A05"
    assert message_structure("ADT", "A40") == "ADT_A39"
    assert message_structure("ADT", "A11") == "ADT_A09"
    assert message_structure("SIU", "S14") == "SIU_S12"
    assert message_structure("MDM", "T02") == "MDM_T02"
    assert message_structure("ORU", "R01") == "ORU_R01"
    assert message_structure("ACK", "R01") == "ACK"


def test_split_messages_drops_batch_envelope() -> None:
    batch = "FHS|^~\\&\rBHS|^~\\&\r" + ORU + ORU.replace("C1", "C2") + "BTS|2\rFTS|1\r"
    parts = split_messages(batch)
    assert [parse(p).control_id for p in parts] == ["C1", "C2"]
    assert split_messages(batch.encode()) == [p.encode() for p in parts]
    framed = b"".join(b"\x0b" + p.encode() + b"\x1c\r" for p in parts)
    assert split_messages(framed) == [p.encode() for p in parts]


def test_agrees_with_python_hl7_on_every_value() -> None:
    m = parse(ORU)
    ref = hl7.parse(ORU)
    for seg, theirs in zip(m, ref, strict=True):
        assert seg.name == str(theirs[0])
        for n in range(1, len(theirs)):
            if seg.name == "MSH" and n <= 2:
                continue
            for r, rep in enumerate(theirs[n] if len(str(theirs[n])) else [], start=1):
                for c, comp in enumerate(rep if isinstance(rep, list) else [rep], start=1):
                    for s, sub in enumerate(comp if isinstance(comp, list) else [comp], start=1):
                        assert seg.get(n, r, c, s) == ref.unescape(str(sub)) or "\\" in str(sub)
