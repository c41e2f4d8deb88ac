"""HL7 v2 escape sequences: decoding on read, encoding on write.

Implements HL7 v2.5.1 chapter 2 section 2.7 "Use of escape sequences in text fields"
(the same in v2.3 to v2.8.2; https://v2plus.hl7.org/2021Jan/index.html , Control,
"Escape sequences supporting multiple character sets" and "Formatted text"):

* ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` give the field, component, subcomponent, repetition and escape
  characters the message defines in MSH-1/MSH-2; ``\\P\\`` the truncation character (v2.7+).
* ``\\Xhhhh..\\`` is hexadecimal data, decoded with the message character set (MSH-18;
  UTF-8 unless declared otherwise).
* ``\\.br\\`` (line break) becomes ``\\n``; ``\\.sp n\\`` becomes ``n`` line breaks; the other
  formatting commands (``\\.in``, ``\\.ti``, ``\\.sk``, ``\\.ce``, ``\\.fi``, ``\\.nf``) are dropped.
* ``\\H\\`` and ``\\N\\`` (start and end of highlighting) are **dropped**: the text is kept, the
  emphasis is not (FHIR strings have no highlighting).
* ``\\Cxxyy\\`` and ``\\Mxxyyzz\\`` (ISO 2022 character set switches) are dropped.
* ``\\Zxx..\\`` (locally defined) and any unknown sequence are kept verbatim, and so is an
  unterminated escape character, so nothing is lost; :func:`escape_error` reports them for
  strict parsing.
"""

from __future__ import annotations

import binascii

__all__ = ["escape", "escape_error", "unescape"]

_FORMAT_DROPPED = frozenset({"in", "ti", "sk", "ce", "fi", "nf"})


def _decode_sequence(body: str, delims: str, charset: str) -> str | None:
    """The text for one escape sequence body (between the escape characters), or None if unknown.

    ``delims`` is the 5-character string field, component, repetition, escape, subcomponent
    (plus the truncation character when the message defines one).
    """
    if len(body) == 1:
        c = body
        if c == "F":
            return delims[0]
        if c == "S":
            return delims[1]
        if c == "R":
            return delims[2]
        if c == "E":
            return delims[3]
        if c == "T":
            return delims[4]
        if c == "P" and len(delims) > 5:
            return delims[5]
        if c in "HN":
            return ""
        return None
    if not body:
        return None
    head = body[0]
    if head == "X":
        digits = body[1:]
        if len(digits) % 2:
            return None
        try:
            return binascii.unhexlify(digits).decode(charset, errors="replace")
        except (binascii.Error, ValueError, LookupError):
            return None
    if head == ".":
        command = body[1:3]
        if command == "br" and len(body) == 3:
            return "\n"
        if command == "sp":
            arg = body[3:].strip()
            if not arg:
                return "\n"
            if arg.isdigit() and len(arg) <= 3:
                return "\n" * int(arg)
            return None
        if command in _FORMAT_DROPPED:
            return ""
        return None
    if head in "CM" and len(body) in (5, 7) and _is_hex(body[1:]):
        return ""
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def unescape(text: str, delims: str = "|^~\\&", charset: str = "utf-8") -> str:
    """Decode the escape sequences in one value (field, component or subcomponent).

    Args:
        text: the value as it appears in the message.
        delims: field, component, repetition, escape and subcomponent characters, in that
            order (MSH-1 then MSH-2), optionally followed by the v2.7 truncation character.
        charset: Python codec for ``\\Xhh..\\`` data (from MSH-18).

    Returns:
        The decoded text. Unknown and unterminated sequences are kept verbatim. See
        https://v2plus.hl7.org/2021Jan/index.html (Control, escape sequences in text fields).
    """
    esc = delims[3]
    start = text.find(esc)
    if start < 0:
        return text
    out: list[str] = []
    i = 0
    while start >= 0:
        end = text.find(esc, start + 1)
        if end < 0:
            break
        decoded = _decode_sequence(text[start + 1 : end], delims, charset)
        if decoded is None:
            # unknown or locally defined (\Z..\): kept verbatim, terminators included
            out.append(text[i : end + 1])
        else:
            out.append(text[i:start])
            out.append(decoded)
        i = end + 1
        start = text.find(esc, i)
    out.append(text[i:])
    return "".join(out)


def escape_error(
    text: str, delims: str = "|^~\\&", charset: str = "utf-8"
) -> tuple[int, str] | None:
    """The first malformed escape sequence in a value, for strict parsing.

    Args:
        text: the value as it appears in the message.
        delims: as for :func:`unescape`.
        charset: as for :func:`unescape`.

    Returns:
        ``(offset in text, reason)`` or ``None`` when every sequence is known and terminated.
        ``\\Z..\\`` (locally defined) sequences are accepted. See
        https://v2plus.hl7.org/2021Jan/index.html (Control, escape sequences in text fields).
    """
    esc = delims[3]
    start = text.find(esc)
    while start >= 0:
        end = text.find(esc, start + 1)
        if end < 0:
            return start, "unterminated escape sequence"
        body = text[start + 1 : end]
        if not body:
            return start, "empty escape sequence"
        if body[0] != "Z" and _decode_sequence(body, delims, charset) is None:
            return start, f"unknown escape sequence {esc}{body}{esc}"
        start = text.find(esc, end + 1)
    return None


def escape(text: str, delims: str = "|^~\\&") -> str:
    """Escape delimiters and line breaks so ``text`` can be placed in one value.

    Args:
        text: raw text.
        delims: as for :func:`unescape`.

    Returns:
        The text with the escape, field, component, repetition, subcomponent (and truncation)
        characters as ``\\E\\ \\F\\ \\S\\ \\R\\ \\T\\ (\\P\\)`` and control characters (CR, LF...;
        not TAB) as ``\\Xhh\\``,
        so :func:`unescape` gives ``text`` back. See https://v2plus.hl7.org/2021Jan/index.html .
    """
    esc = delims[3]
    table: dict[str, str | int | None] = {
        delims[3]: f"{esc}E{esc}",
        delims[0]: f"{esc}F{esc}",
        delims[1]: f"{esc}S{esc}",
        delims[2]: f"{esc}R{esc}",
        delims[4]: f"{esc}T{esc}",
    }
    for code in (*range(0x20), 0x7F):
        if code != 0x09:
            table[chr(code)] = f"{esc}X{code:02X}{esc}"
    if len(delims) > 5:
        table[delims[5]] = f"{esc}P{esc}"
    return text.translate(str.maketrans(table))
