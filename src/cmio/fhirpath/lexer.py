"""Tokenizer for FHIRPath (http://hl7.org/fhirpath/N1/#grammar, lexical rules).

Produces :class:`Token` objects: identifiers (plain and ```delimited```),
string, number and date/time literals, ``%`` external constants, ``$``
variables and operators. Whitespace and ``//`` / ``/* */`` comments are
skipped.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from cmio.fhirpath.errors import FhirPathSyntaxError

__all__ = ["Token", "tokenize", "unescape"]


class Token(NamedTuple):
    """One lexical token.

    Attributes:
        kind: ``id`` (plain identifier or keyword), ``qid`` (delimited identifier),
            ``str``, ``num``, ``date``, ``datetime``, ``time``, ``env``, ``var``,
            ``op`` or ``eof``.
        text: the token text, unescaped for ``qid``, ``str`` and ``env``.
        pos: 0-based offset in the expression.
    """

    kind: str
    text: str
    pos: int


_TIME = r"\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_TZ = r"(?:Z|[+-]\d{2}:\d{2})"
_DATE = r"\d{4}(?:-\d{2}(?:-\d{2})?)?"
_RULES = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<badcomment>/\*)
  | (?P<datetime>@"""
    + _DATE
    + r"T(?:"
    + _TIME
    + _TZ
    + r"""?)?)
  | (?P<date>@"""
    + _DATE
    + r""")
  | (?P<time>@T"""
    + _TIME
    + r""")
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<qid>`(?:[^`\\]|\\.)*`)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<env>%(?:[A-Za-z_][A-Za-z0-9_-]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {
    "'": "'",
    '"': '"',
    "`": "`",
    "\\": "\\",
    "/": "/",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_ESCAPE_RE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)


def unescape(body: str, pos: int = 0) -> str:
    """Resolve the escapes of a string or delimited identifier body
    (http://hl7.org/fhirpath/N1/#string)."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise FhirPathSyntaxError(f"invalid escape sequence \\{code}", pos + match.start())

    return _ESCAPE_RE.sub(replace, body) if "\\" in body else body


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens, ending with an ``eof`` token.

    Raises:
        FhirPathSyntaxError: on a character no token can start with, or an
            unterminated string, identifier or comment.
    """
    tokens: list[Token] = []
    pos = 0
    size = len(text)
    while pos < size:
        match = _RULES.match(text, pos)
        if match is None:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = match.lastgroup
        assert kind is not None
        value = match.group()
        if kind == "badcomment":
            raise FhirPathSyntaxError("unterminated comment", pos)
        if kind in ("qid", "str"):
            value = unescape(value[1:-1], pos + 1)
        elif kind == "env":
            body = value[1:]
            value = unescape(body[1:-1], pos + 2) if body[0] in "`'" else body
        if kind not in ("ws", "comment"):
            tokens.append(Token(kind, value, pos))
        pos = match.end()
    tokens.append(Token("eof", "", size))
    return tokens
