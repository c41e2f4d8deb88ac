"""Recursive-descent (precedence climbing) parser for FHIRPath.

Follows the N1 grammar and its operator precedence
(http://hl7.org/fhirpath/N1/#operator-precedence), highest first: ``.`` and
``[]``; unary ``+``/``-``; ``* / div mod``; ``+ - &``; ``is as``; ``|``;
``< > <= >=``; ``= ~ != !~``; ``in contains``; ``and``; ``xor or``;
``implies``. All binary operators associate to the left.
"""

from __future__ import annotations

from decimal import Decimal

from cmio.fhirpath.errors import FhirPathSyntaxError
from cmio.fhirpath.lexer import Token, tokenize
from cmio.fhirpath.quantity import CALENDAR_UNITS, Quantity
from cmio.fhirpath.syntax import (
    Binary,
    EnvVar,
    Expr,
    Function,
    Indexer,
    Literal,
    Member,
    TypeOp,
    TypeSpec,
    Unary,
    Variable,
)
from cmio.fhirpath.temporal import parse_date, parse_datetime, parse_time

__all__ = ["parse", "type_spec_of"]

_BINARY: dict[str, int] = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "~": 5,
    "!=": 5,
    "!~": 5,
    "<": 6,
    ">": 6,
    "<=": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}
_UNARY_LEVEL = 11
_WORD_OPERATORS = frozenset(
    {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}
)
_IDENTIFIER_KEYWORDS = frozenset({"as", "contains", "in", "is"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.token
        if token.kind != "op" or token.text != text:
            raise FhirPathSyntaxError(
                f"expected {text!r}, found {token.text or 'end'!r}", token.pos
            )
        return self.advance()

    def binary_operator(self) -> str | None:
        token = self.token
        if token.kind == "op" and token.text in _BINARY:
            return token.text
        if token.kind == "id" and token.text in _WORD_OPERATORS:
            return token.text
        return None

    def expression(self, level: int = 0) -> Expr:
        left = self.unary()
        while True:
            op = self.binary_operator()
            if op is None or _BINARY[op] <= level:
                return left
            token = self.advance()
            if op in ("is", "as"):
                left = TypeOp(token.pos, op, left, self.type_specifier())
            else:
                left = Binary(token.pos, op, left, self.expression(_BINARY[op]))

    def unary(self) -> Expr:
        token = self.token
        if token.kind == "op" and token.text in ("+", "-"):
            self.advance()
            return Unary(token.pos, token.text, self.unary())
        return self.postfix(self.term())

    def postfix(self, expr: Expr) -> Expr:
        while True:
            token = self.token
            if token.kind == "op" and token.text == ".":
                self.advance()
                expr = self.invocation(expr)
            elif token.kind == "op" and token.text == "[":
                self.advance()
                index = self.expression()
                self.expect("]")
                expr = Indexer(token.pos, expr, index)
            else:
                return expr

    def identifier(self) -> Token:
        token = self.token
        if token.kind == "qid" or (
            token.kind == "id"
            and (token.text not in _WORD_OPERATORS or token.text in _IDENTIFIER_KEYWORDS)
        ):
            return self.advance()
        raise FhirPathSyntaxError(
            f"expected an identifier, found {token.text or 'end'!r}", token.pos
        )

    def invocation(self, target: Expr | None) -> Expr:
        token = self.token
        if token.kind == "var" and target is not None:
            raise FhirPathSyntaxError(f"unexpected {token.text}", token.pos)
        name = self.identifier()
        nxt = self.token
        if name.kind == "id" and nxt.kind == "op" and nxt.text == "(":
            self.advance()
            args: list[Expr] = []
            if not (self.token.kind == "op" and self.token.text == ")"):
                args.append(self.expression())
                while self.token.kind == "op" and self.token.text == ",":
                    self.advance()
                    args.append(self.expression())
            self.expect(")")
            return Function(name.pos, target, name.text, tuple(args))
        return Member(name.pos, target, name.text)

    def term(self) -> Expr:
        token = self.token
        kind = token.kind
        if kind == "op":
            if token.text == "(":
                self.advance()
                expr = self.expression()
                self.expect(")")
                return expr
            if token.text == "{":
                self.advance()
                self.expect("}")
                return Literal(token.pos, None)
            raise FhirPathSyntaxError(f"unexpected {token.text!r}", token.pos)
        if kind == "num":
            return self.number(self.advance())
        if kind == "str":
            return Literal(self.advance().pos, token.text)
        if kind in ("date", "datetime", "time"):
            self.advance()
            return Literal(token.pos, _temporal(token))
        if kind == "env":
            self.advance()
            return EnvVar(token.pos, token.text)
        if kind == "var":
            self.advance()
            name = token.text[1:]
            if name not in ("this", "index", "total"):
                raise FhirPathSyntaxError(f"unknown variable {token.text}", token.pos)
            return Variable(token.pos, name)
        if kind == "id" and token.text in ("true", "false"):
            self.advance()
            return Literal(token.pos, token.text == "true")
        if kind in ("id", "qid"):
            return self.invocation(None)
        raise FhirPathSyntaxError(f"unexpected {token.text or 'end of expression'!r}", token.pos)

    def number(self, token: Token) -> Expr:
        value: int | Decimal = Decimal(token.text) if "." in token.text else int(token.text)
        unit = self.token
        if unit.kind == "str":
            self.advance()
            return Literal(token.pos, Quantity(Decimal(value), unit.text))
        if unit.kind == "id" and unit.text in CALENDAR_UNITS:
            self.advance()
            return Literal(token.pos, Quantity(Decimal(value), unit.text))
        return Literal(token.pos, value)

    def type_specifier(self) -> TypeSpec:
        first = self.identifier()
        if self.token.kind == "op" and self.token.text == ".":
            self.advance()
            second = self.identifier()
            return TypeSpec(first.text, second.text)
        return TypeSpec(None, first.text)


def _temporal(token: Token) -> object:
    body = token.text[1:]
    if token.kind == "time":
        value: object = parse_time(body[1:])
    elif token.kind == "date":
        value = parse_date(body)
    else:
        value = parse_datetime(body[:-1] if body.endswith("T") else body)
    if value is None:
        raise FhirPathSyntaxError(f"invalid date/time literal {token.text}", token.pos)
    return value


def parse(text: str) -> Expr:
    """Parse a FHIRPath expression into its syntax tree.

    See http://hl7.org/fhirpath/N1/#grammar.

    Raises:
        FhirPathSyntaxError: with the position of the offending token.
    """
    parser = _Parser(text)
    if parser.token.kind == "eof":
        raise FhirPathSyntaxError("empty expression", 0)
    expr = parser.expression()
    if parser.token.kind != "eof":
        raise FhirPathSyntaxError(f"unexpected {parser.token.text!r}", parser.token.pos)
    return expr


def type_spec_of(expr: Expr) -> TypeSpec | None:
    """The type specifier an argument of ``is()``, ``as()`` or ``ofType()`` names."""
    if isinstance(expr, Member):
        if expr.target is None:
            return TypeSpec(None, expr.name)
        if isinstance(expr.target, Member) and expr.target.target is None:
            return TypeSpec(expr.target.name, expr.name)
    return None
