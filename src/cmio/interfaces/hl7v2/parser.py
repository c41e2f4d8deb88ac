"""A fast, lazy HL7 v2 (ER7) parser: bytes or text in, :class:`Message` out.

Implements HL7 v2.3 to v2.8.2 chapter 2 (Control), section 2.5 "Message construction rules"
(https://v2plus.hl7.org/2021Jan/index.html): the delimiters are read from MSH-1 and MSH-2
(a fifth MSH-2 character is the v2.7 truncation character), segments may end with CR, LF or
CRLF, a leading byte-order mark and MLLP framing bytes are dropped, empty lines are ignored,
and Z-segments are kept like any other. Parsing only checks the structure (MSH first, valid
segment ids, no control characters); fields are split and escapes decoded when read.
``strict=True`` also checks every escape sequence. Bytes are decoded with the character set of
MSH-18 when declared, else as UTF-8, falling back to Latin-1 (which keeps every byte).
"""

from __future__ import annotations

import codecs
import re
from types import MappingProxyType
from typing import TypeVar, overload

from cmio.interfaces.hl7v2.errors import ParseError
from cmio.interfaces.hl7v2.escape import escape_error
from cmio.interfaces.hl7v2.message import Delimiters, Message

__all__ = ["SUPPORTED_VERSIONS", "charset_codec", "parse", "split_messages"]

SUPPORTED_VERSIONS = (
    "2.3",
    "2.3.1",
    "2.4",
    "2.5",
    "2.5.1",
    "2.6",
    "2.7",
    "2.7.1",
    "2.8",
    "2.8.1",
    "2.8.2",
)

# HL7 Table 0211 (alternate character sets) to Python codecs.
_CHARSETS = MappingProxyType(
    {
        "ASCII": "ascii",
        "ISO IR6": "ascii",
        "8859/1": "latin-1",
        "ISO IR100": "latin-1",
        "8859/2": "iso8859-2",
        "8859/3": "iso8859-3",
        "8859/4": "iso8859-4",
        "8859/5": "iso8859-5",
        "8859/6": "iso8859-6",
        "8859/7": "iso8859-7",
        "8859/8": "iso8859-8",
        "8859/9": "iso8859-9",
        "8859/15": "iso8859-15",
        "UNICODE": "utf-8",
        "UNICODE UTF-8": "utf-8",
        "ISO IR192": "utf-8",
        "UNICODE UTF-16": "utf-16",
        "UNICODE UTF-32": "utf-32",
        "GB 18030-2000": "gb18030",
        "BIG-5": "big5",
        "KS X 1001": "euc-kr",
        "ISO IR87": "iso2022-jp",
        "ISO IR159": "iso2022-jp-2",
    }
)
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])  # _BAD_CONTROL
_STANDARD = Delimiters()  # | ^ ~ \ &: what nearly every message declares
_STANDARD_MSH = "MSH|^~\\&|"  # the start of such a message: MSH-1, MSH-2, a separator


def charset_codec(value: str) -> str | None:
    """The Python codec for an HL7 Table 0211 character set name (MSH-18), or None if unknown.

    See https://v2plus.hl7.org/2021Jan/index.html (Control, Table 0211).
    """
    return _CHARSETS.get(value.strip().upper()) if value.strip() else "utf-8"


def _declared_charset(head: bytes) -> str:
    """MSH-18 read from the raw bytes of the MSH segment (ASCII-compatible encodings)."""
    end = len(head)
    for stop in (b"\r", b"\n"):
        pos = head.find(stop)
        if 0 <= pos < end:
            end = pos
    line = head[:end]
    if len(line) < 4:
        return ""
    parts = line.split(line[3:4])
    # parts[0] = MSH, parts[1] = MSH-2, parts[n - 1] = MSH-n
    if len(parts) < 18:
        return ""
    return parts[17].split(b"~")[0].decode("ascii", errors="replace")


def _decode(data: bytes) -> tuple[str, str]:
    """Bytes to text and the codec used for ``\\X..\\`` data."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ParseError(f"invalid UTF-16 text: {exc.reason}", position=exc.start) from None
    if data[:1] == b"\x0b":
        data = data[1:]
        if data[:3] == b"\xef\xbb\xbf":  # a byte-order mark inside the MLLP frame
            data = data[3:]
    if data.isascii():
        return data.decode("ascii"), ""  # the charset (for \X..\) is read from MSH-18 later
    declared = _declared_charset(data[:4096]) if data[:3] == b"MSH" else ""
    codec = charset_codec(declared) if declared else "utf-8"
    if codec is None:
        raise ParseError(f"unknown character set {declared!r}", segment="MSH", field=18)
    if declared:
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"text is not valid {declared} ({exc.reason})", position=exc.start
            ) from None
    try:
        return data.decode("utf-8"), codec
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _offsets(text: str) -> list[int]:
    """Start offsets (in ``text``) of the non-empty lines, in order."""
    starts: list[int] = []
    pos = 0
    for m in _NEWLINE.finditer(text):
        if m.start() > pos and text[pos : m.start()].strip():
            starts.append(pos)
        pos = m.end()
    if pos < len(text) and text[pos:].strip():
        starts.append(pos)
    return starts


def _delimiters(first: str) -> Delimiters:
    if not first.startswith("MSH"):
        what = repr(first[:3]) if first else "nothing"
        raise ParseError(
            f"a message starts with an MSH segment, found {what}",
            segment=first[:3] or None,
            segment_index=1,
            position=0,
        )
    if len(first) < 8:
        raise ParseError(
            "MSH is too short to hold MSH-1 and MSH-2", segment="MSH", segment_index=1, field=2,
            position=0,
        )  # fmt: skip
    fs = first[3]
    end = first.find(fs, 4)
    enc = first[4:] if end < 0 else first[4:end]
    if len(enc) not in (4, 5):
        raise ParseError(
            f"MSH-2 must hold 4 encoding characters (5 with truncation), found {enc!r}",
            segment="MSH", segment_index=1, field=2, position=4,
        )  # fmt: skip
    chars = fs + enc
    for i, c in enumerate(chars):
        if c.isalnum() or c.isspace() or not c.isprintable() or chars.count(c) > 1:
            raise ParseError(
                f"invalid or repeated delimiter {c!r} in MSH-1/MSH-2",
                segment="MSH", segment_index=1, field=1 if i == 0 else 2, position=3 + i,
            )  # fmt: skip
    return Delimiters(fs, enc[0], enc[1], enc[2], enc[3], enc[4] if len(enc) == 5 else "")


def parse(data: bytes | str, *, strict: bool = False) -> Message:
    """Parse one HL7 v2 message.

    Args:
        data: the message (bytes or text); MLLP start/end bytes and a byte-order mark are
            dropped; segments may end with CR, LF or CRLF.
        strict: also check every escape sequence (unknown or unterminated is an error).

    Returns:
        The message; fields are split and decoded when read.

    Raises:
        ParseError: not an HL7 v2 message, naming the segment, field and position. See
            https://v2plus.hl7.org/2021Jan/index.html (Control, message construction rules).
    """
    clean = False  # known to hold no control character (checked on the bytes)
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data)
        text, charset = _decode(data)
        # ASCII: a character per byte; deleting the control bytes is cheaper than isprintable
        clean = not charset and len(data.translate(None, _CONTROL_BYTES)) == len(data)
    else:
        text, charset = data, ""
        if text[:1] == "\ufeff":
            text = text[1:]
        if text[:1] == "\x0b":
            text = text[1:].lstrip("\ufeff")
    if text[-2:] == "\x1c\r":
        text = text[:-2]
    elif text[-1:] == "\x1c":
        text = text[:-1]
    body = text.replace("\r\n", "\r").replace("\n", "\r") if "\n" in text else text
    raw = [s for s in body.split("\r") if s and not s.isspace()]
    if not clean and not body.replace("\r", "").isprintable():  # else no control characters
        for seg in raw:
            if not seg.isprintable() and _BAD_CONTROL.search(seg):
                bad = _BAD_CONTROL.search(text)
                assert bad is not None
                _fail_at(
                    text, bad.start(), f"control character {ord(bad.group()):#04x} in the message"
                )
    if not raw:
        raise ParseError("empty message: no segments", position=0)
    first = raw[0]
    delims = _STANDARD if first[:9] == _STANDARD_MSH else _delimiters(first)
    if not charset:
        declared = raw[0].split(delims.field, 18)
        name = declared[17].split(delims.repetition)[0] if len(declared) > 17 else ""
        found = charset_codec(name) if name else "utf-8"
        if found is None:
            raise ParseError(
                f"unknown character set {name!r}", segment="MSH", segment_index=1, field=18
            )
        charset = found
    fs = delims.field
    names = [seg[:3] for seg in raw]
    if names.count("MSH") != 1 or not all(_valid_head(h, fs) for h in {s[:4] for s in raw}):
        _check_segment_ids(text, raw, fs)  # raises, naming the first bad segment
    message = Message(raw, names, delims, charset)
    if strict:
        _check_escapes(text, message)
    return message


def _valid_head(head: str, fs: str) -> bool:
    """Whether a segment's first four characters are a valid id and the field separator."""
    name = head[:3]
    return (
        len(name) == 3
        and head[3:4] in (fs, "")
        and name.isascii()
        and name.isalnum()
        and name[0].isalpha()
        and name.isupper()
    )


def _check_segment_ids(text: str, raw: list[str], fs: str) -> None:
    """Raise for the first segment with an invalid id, or for a second MSH."""
    for i, seg in enumerate(raw):
        name = seg[:3]
        if (
            (len(seg) > 3 and seg[3] != fs)
            or not (name.isascii() and name.isalnum() and name[0].isalpha() and name.isupper())
            or len(name) != 3
        ):
            _fail_segment(text, i, f"invalid segment id {seg.split(fs, 1)[0][:10]!r}")
        if i and name == "MSH":
            _fail_segment(
                text, i, "a second MSH segment: one message per parse (see split_messages)"
            )


def _fail_at(text: str, position: int, reason: str) -> None:
    starts = _offsets(text)
    index = 0
    for i, start in enumerate(starts):
        if start <= position:
            index = i
    name = text[starts[index] : starts[index] + 3] if starts else ""
    raise ParseError(reason, segment=_printable(name), segment_index=index + 1, position=position)


def _printable(name: str | None) -> str | None:
    return name if name and name.isascii() and name.isalnum() else None


def _fail_segment(text: str, index: int, reason: str) -> None:
    starts = _offsets(text)
    start = starts[index] if index < len(starts) else None
    name = text[start : start + 3] if start is not None else None
    raise ParseError(reason, segment=_printable(name), segment_index=index + 1, position=start)


def _check_escapes(text: str, message: Message) -> None:
    chars, charset = message.delimiters.chars, message.charset
    esc = message.delimiters.escape
    starts: list[int] | None = None
    for seg in message:
        if esc not in seg.raw:
            continue
        fields = seg.fields
        first = 3 if seg.name == "MSH" else 1
        for n in range(first, len(fields)):
            found = escape_error(fields[n], chars, charset)
            if found is None:
                continue
            if starts is None:
                starts = _offsets(text)
            m = n - 1 if seg.name == "MSH" else n
            within = len(chars[0].join(seg.raw.split(chars[0])[:m])) + 1
            raise ParseError(
                found[1],
                segment=seg.name,
                segment_index=seg.index,
                field=n,
                position=starts[seg.index - 1] + within + found[0],
            )


@overload
def split_messages(data: str) -> list[str]: ...


@overload
def split_messages(data: bytes) -> list[bytes]: ...


def split_messages(data: bytes | str) -> list[bytes] | list[str]:
    """Split back-to-back messages (a file or batch) at each ``MSH`` segment.

    Batch envelope segments (FHS, BHS, BTS, FTS; HL7 v2 section 2.10.3) and MLLP framing
    bytes (0x0B, 0x1C) are dropped.

    Args:
        data: text or bytes holding zero or more messages.

    Returns:
        One item per message, of the input's type, each ending with CR. See
        https://v2plus.hl7.org/2021Jan/index.html (Control, batch protocol).
    """
    if isinstance(data, str):
        data = data.lstrip("\ufeff").replace("\x0b", "").replace("\x1c", "")
        lines = [s for s in _NEWLINE.split(data) if s and not s.isspace()]
        return list(_group(lines, "MSH", ("FHS", "BHS", "BTS", "FTS"), "\r"))
    if data[:3] == codecs.BOM_UTF8:
        data = data[3:]
    data = data.replace(b"\x0b", b"").replace(b"\x1c", b"")
    blines = [s for s in re.split(rb"\r\n|\r|\n", data) if s and not s.isspace()]
    return list(_group(blines, b"MSH", (b"FHS", b"BHS", b"BTS", b"FTS"), b"\r"))


_T = TypeVar("_T", str, bytes)


def _group(lines: list[_T], msh: _T, envelope: tuple[_T, ...], cr: _T) -> list[_T]:
    out: list[_T] = []
    current: list[_T] = []
    for line in lines:
        head = line[:3]
        if head in envelope:
            continue
        if head == msh and current:
            out.append(cr.join(current) + cr)
            current = []
        current.append(line)
    if current:
        out.append(cr.join(current) + cr)
    return out
