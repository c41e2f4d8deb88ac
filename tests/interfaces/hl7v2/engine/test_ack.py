"""ACK building and the receipt-time MSH reader."""

from __future__ import annotations

from cmio.interfaces.hl7v2.engine.ack import (
    ERR_REQUIRED_FIELD,
    ERR_UNSUPPORTED_VERSION,
    AckError,
    build_ack,
    read_header,
)
from cmio.interfaces.hl7v2.parser import parse
from tests.interfaces.hl7v2.engine.conftest import oru


def test_read_header_with_custom_delimiters() -> None:
    raw = b"\xef\xbb\xbfMSH#*~\\&#APP#FAC#RCV#RFAC#20240101##ADT*A01*ADT_A01#X1#T#2.3\nPID#1\n"
    h = read_header(raw)
    assert h is not None
    assert (h.sending_application, h.sending_facility, h.control_id) == ("APP", "FAC", "X1")
    assert (h.message_type, h.processing_id, h.version) == ("ADT^A01", "T", "2.3")
    assert h.sender == "APP|FAC"
    assert read_header(b"PID|1") is None
    assert read_header(b"MSHA|") is None
    assert read_header(b"MSH\rPID|1|\r") is None  # no separator on the MSH line (was IndexError)


def test_read_header_fields_past_msh_16_and_repeated_components() -> None:
    raw = (b"MSH|^~\\&|A|F|R|RF|20240101||ORU^R01^ORU_R01^X|C9|P^T|2.5.1^US|||al^x|SU^y|US|"
           b"UNICODE UTF-8|EN\rPID|1\r")  # fmt: skip
    h = read_header(raw)
    assert h is not None
    assert (h.message_type, h.control_id, h.processing_id, h.version) == (
        "ORU^R01", "C9", "P", "2.5.1")  # fmt: skip
    assert (h.accept_ack, h.application_ack, h.enhanced) == ("AL", "SU", True)
    short = read_header(b"MSH|^~\\&|A|F\r")
    assert short is not None and (short.control_id, short.message_type, short.enhanced) == (
        "", "", False)  # fmt: skip


def test_aa_swaps_sender_and_receiver() -> None:
    header = read_header(oru("42", sender="LAB"))
    ack = parse(build_ack(header, "AA", "ACK1", now=0))
    assert ack.message_type.code == "ACK" and ack.message_type.event == "R01"
    assert (ack.sending_application, ack.receiving_application) == ("CMIO", "LAB")
    assert (ack.value("MSA-1"), ack.value("MSA-2"), ack.control_id) == ("AA", "42", "ACK1")
    assert ack.version == "2.5.1" and ack.processing_id == "P"
    assert "ERR" not in ack


def test_ae_has_err_location_code_and_escaped_text() -> None:
    header = read_header(oru("7"))
    error = AckError(
        ERR_REQUIRED_FIELD, "PID-3 | missing ^ here", segment="PID", sequence=1, field=3
    )
    ack = parse(build_ack(header, "AE", "A2", error=error))
    assert ack.value("MSA-1") == "AE"
    assert ack.value("ERR-2.1") == "PID" and ack.value("ERR-2.3") == "3"
    assert ack.value("ERR-3.1") == "101" and ack.value("ERR-3.3") == "HL70357"
    assert ack.value("ERR-4") == "E"
    assert ack.value("ERR-8") == "PID-3 | missing ^ here"  # escaped on the wire, decoded here


def test_v23_ack_also_carries_err_1() -> None:
    header = read_header(oru("8", version="2.3"))
    error = AckError(ERR_UNSUPPORTED_VERSION, "no", segment="MSH", sequence=1, field=12)
    ack = parse(build_ack(header, "AR", "A3", error=error))
    assert ack.version == "2.3"
    assert ack.value("ERR-1.1") == "MSH" and ack.value("ERR-1.4.1") == "203"


def test_ack_without_header() -> None:
    error = AckError(ERR_REQUIRED_FIELD, "garbage")
    ack = parse(build_ack(None, "AE", "A4", error=error))
    assert ack.value("MSA-1") == "AE" and ack.value("MSA-2") == ""
