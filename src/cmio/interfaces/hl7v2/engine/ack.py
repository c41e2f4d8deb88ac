"""Acknowledgments: the message header the engine reads at receipt, and ACK building.

Original-mode acknowledgment (HL7 v2.5.1 chapter 2, section 2.9.2, and the MSA and ERR
segments, sections 2.14.8 and 2.14.5; https://v2plus.hl7.org/2021Jan/index.html):

* ``AA``: accepted, written to the durable journal;
* ``AE``: error, the message cannot be parsed or accepted; an ERR segment carries the
  location (ERR-2, ``segment^sequence^field``), the HL7 table 0357 code (ERR-3),
  the severity (ERR-4) and the text (ERR-8; versions before 2.5 also get ERR-1);
* ``AR``: rejected, the message type, version or processing id is not handled by the
  channel, or the frame is too large.

:func:`read_header` reads MSH alone from raw bytes (no full parse), so the engine
can answer even a message the parser refuses.

Enhanced-mode acknowledgment (section 2.9.3): when MSH-15 (accept acknowledgment type)
or MSH-16 (application acknowledgment type) is valued, the receipt answer is a commit
ACK, ``CA``/``CE``/``CR`` (:func:`commit_code`), sent on the connection only when MSH-15
asks for it, and the outcome of processing is an application ACK ``AA``/``AE``/``AR``
sent later to the channel's return destination when MSH-16 asks for it
(:func:`wanted`, HL7 table 0155: ``AL`` always, ``NE`` never, ``ER`` on error or
reject only, ``SU`` on success only). In enhanced mode an empty MSH-15 counts as
``AL`` and an empty MSH-16 as ``NE``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ERR_DATA_TYPE",
    "ERR_DUPLICATE_KEY",
    "ERR_INTERNAL",
    "ERR_REQUIRED_FIELD",
    "ERR_SEGMENT_SEQUENCE",
    "ERR_UNSUPPORTED_EVENT",
    "ERR_UNSUPPORTED_PROCESSING_ID",
    "ERR_UNSUPPORTED_TYPE",
    "ERR_UNSUPPORTED_VERSION",
    "AckError",
    "Header",
    "build_ack",
    "commit_code",
    "read_header",
    "wanted",
]

# HL7 table 0357 "Message error condition codes".
ERR_SEGMENT_SEQUENCE = ("100", "Segment sequence error")
ERR_REQUIRED_FIELD = ("101", "Required field missing")
ERR_DATA_TYPE = ("102", "Data type error")
ERR_UNSUPPORTED_TYPE = ("200", "Unsupported message type")
ERR_UNSUPPORTED_EVENT = ("201", "Unsupported event code")
ERR_UNSUPPORTED_PROCESSING_ID = ("202", "Unsupported processing id")
ERR_UNSUPPORTED_VERSION = ("203", "Unsupported version id")
ERR_DUPLICATE_KEY = ("205", "Duplicate key identifier")
ERR_INTERNAL = ("207", "Application internal error")


class Header(NamedTuple):
    """The MSH fields the engine needs before (or without) a full parse.

    Attributes:
        field_sep: MSH-1.
        encoding: MSH-2 (component, repetition, escape, subcomponent characters).
        sending_application: MSH-3 as sent.
        sending_facility: MSH-4 as sent.
        receiving_application: MSH-5 as sent.
        receiving_facility: MSH-6 as sent.
        message_type: MSH-9 components 1 and 2 joined by ``^`` (``ORU^R01``).
        control_id: MSH-10.
        processing_id: MSH-11 first component (``P``, ``T``, ``D``).
        version: MSH-12 first component (``2.5.1``).
        accept_ack: MSH-15 (``AL``, ``NE``, ``ER``, ``SU`` or empty).
        application_ack: MSH-16 (same table 0155).
    """

    field_sep: str
    encoding: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str
    control_id: str
    processing_id: str
    version: str
    accept_ack: str = ""
    application_ack: str = ""

    @property
    def enhanced(self) -> bool:
        """Whether the sender asked for enhanced-mode acknowledgment (MSH-15 or MSH-16)."""
        return bool(self.accept_ack or self.application_ack)

    @property
    def sender(self) -> str:
        """The duplicate-detection scope: sending application and facility."""
        return f"{self.sending_application}|{self.sending_facility}"


def read_header(raw: bytes) -> Header | None:
    """Read MSH from the start of a message; None when it does not start with ``MSH``."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if len(raw) < 8 or raw[:3] != b"MSH":
        return None
    end = len(raw)
    for terminator in (b"\r", b"\n"):
        pos = raw.find(terminator)
        if 0 <= pos < end:
            end = pos
    text = raw[:end].decode("utf-8", "replace")
    if len(text) < 4:  # "MSH" alone on its line: no field separator
        return None
    sep = text[3]
    if sep.isalnum() or sep in " \t":
        return None
    fields = text.split(sep, 16)  # MSH-n is fields[n - 1]: MSH-1 is the separator itself
    if len(fields) < 16:
        fields += [""] * (16 - len(fields))
    encoding = fields[1]
    comp = encoding[0] if encoding else "^"
    type_parts = fields[8].split(comp, 2)
    message_type = "^".join(type_parts[:2]) if len(type_parts) > 1 else type_parts[0]
    accept, application = fields[14], fields[15]
    if comp in application:
        application = application.split(comp, 1)[0]
    return Header(
        sep,
        encoding,
        fields[2],
        fields[3],
        fields[4],
        fields[5],
        message_type,
        fields[9],
        fields[10].split(comp, 1)[0],
        fields[11].split(comp, 1)[0],
        accept.split(comp, 1)[0].strip().upper() if accept else "",
        application.strip().upper() if application else "",
    )


_COMMIT = {"AA": "CA", "AE": "CE", "AR": "CR"}


def commit_code(code: str) -> str:
    """The enhanced-mode commit code of an original-mode receipt code (AA→CA, AE→CE, AR→CR)."""
    return _COMMIT.get(code, code)


def wanted(condition: str, code: str, *, default: str) -> bool:
    """Whether an acknowledgment with ``code`` is sent under MSH-15/16 ``condition``.

    Args:
        condition: the table 0155 value (``AL``, ``NE``, ``ER``, ``SU``; empty: ``default``).
        code: the acknowledgment code (``CA``/``AA`` success, anything else an error).
        default: the value an empty field stands for.

    See HL7 v2.5.1 section 2.9.3 and table 0155.
    """
    condition = condition or default
    success = code in ("CA", "AA")
    if condition == "NE":
        return False
    if condition == "ER":
        return not success
    if condition == "SU":
        return success
    return True  # AL, and any unknown value: answering is the safe side


@dataclass(frozen=True, slots=True)
class AckError:
    """What goes into the ERR segment.

    Attributes:
        code: HL7 table 0357 code and its display, e.g. :data:`ERR_REQUIRED_FIELD`.
        text: the user message (ERR-8).
        segment: segment id of the location (ERR-2.1), if known.
        sequence: occurrence of that segment in the message (ERR-2.2).
        field: field number (ERR-2.3).
        position: character offset in the message (given in the text).
        severity: ERR-4 (``E`` error, ``W`` warning, ``I`` information, ``F`` fatal).
    """

    code: tuple[str, str]
    text: str
    segment: str | None = None
    sequence: int | None = None
    field: int | None = None
    position: int | None = None
    severity: str = "E"


_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


_SPECIAL = frozenset("\\|^&~\r\n")


def _escape(text: str) -> str:
    if _SPECIAL.isdisjoint(text):  # the usual case: nothing to escape
        return text
    for char, escaped in _ESCAPES:
        text = text.replace(char, escaped)
    return text.replace("\r", " ").replace("\n", " ")


def _timestamp(now: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(now)) + "+0000"


def build_ack(
    header: Header | None,
    code: str,
    ack_control_id: str,
    *,
    error: AckError | None = None,
    now: float | None = None,
    request: str = "",
) -> bytes:
    """An ACK for a message (its header may be unknown: garbage).

    The ACK uses the standard delimiters, swaps sender and receiver, echoes the
    version and processing id, and answers MSA-2 with the message's control id.

    Args:
        header: the received message's MSH, or None when it had none.
        code: ``AA``, ``AE`` or ``AR``.
        ack_control_id: MSH-10 of the ACK itself.
        error: ERR content for ``AE``/``AR``.
        now: the ACK's MSH-7 (epoch seconds; default: now).
        request: MSH-15 and MSH-16 of the ACK itself (``AL|NE``: an enhanced-mode application
            ACK asks the original sender for a commit ACK); empty: none.
    """
    h = header
    event = ""
    if h is not None and "^" in h.message_type:
        event = h.message_type.split("^")[1]
    version = (h.version if h is not None else "") or "2.5.1"
    msh = "|".join(
        (
            "MSH",
            "^~\\&",
            _escape(h.receiving_application) if h else "CMIO",
            _escape(h.receiving_facility) if h else "",
            _escape(h.sending_application) if h else "",
            _escape(h.sending_facility) if h else "",
            _timestamp(time.time() if now is None else now),
            "",
            f"ACK^{event}^ACK" if event else "ACK",
            _escape(ack_control_id),
            (_escape(h.processing_id) if h else "") or "P",
            _escape(version),
            *(("", "", request) if request else ()),
        )
    )
    control = _escape(h.control_id) if h is not None else ""
    if error is None:
        return f"{msh}\rMSA|{code}|{control}\r".encode()
    text = _escape(error.text)[:500]
    msa = f"MSA|{code}|{control}|{text[:80]}"
    location = ""
    if error.segment:
        parts = [error.segment, str(error.sequence or 1), str(error.field or "")]
        location = "^".join(parts).rstrip("^")
    err_code = f"{error.code[0]}^{error.code[1]}^HL70357"
    err1 = ""
    if version.startswith(("2.1", "2.2", "2.3", "2.4")):
        err1 = "^".join((error.segment or "", str(error.sequence or ""), str(error.field or "")))
        err1 = f"{err1}^{error.code[0]}&{error.code[1]}&HL70357"
    err = f"ERR|{err1}|{location}|{err_code}|{error.severity}||||{text}"
    return f"{msh}\r{msa}\r{err}\r".encode()
