"""FHIRPath functions in SQL: the function calls of the view subset.

``where()``, ``exists()``, ``empty()``, ``not()``, ``first()``, ``count()``,
``join()``, ``ofType()``, ``extension(url)``, ``lowBoundary()``/``highBoundary()``,
``getResourceKey()``, ``getReferenceKey([type])`` and ``memberOf(valueset)`` over the values of
:mod:`cmio.views.sqlpath` (http://hl7.org/fhirpath/N1/#functions and
https://sql-on-fhir.org/ig/latest/StructureDefinition-ViewDefinition.html#required-additional-functions).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sqlglot import exp

from cmio.fhirpath.syntax import Expr, Function, Member, TypeSpec
from cmio.views.dialects.base import SqlKind
from cmio.views.sqltypes import SYSTEM_KINDS, FType, Val
from cmio.views.typed import TypedLayoutUnsupported

if TYPE_CHECKING:
    from cmio.views.sqlpath import PathCompiler

__all__ = ["FunctionCompiler"]


class FunctionCompiler:
    """Compiles function calls for one :class:`~cmio.views.sqlpath.PathCompiler`."""

    def __init__(self, pc: PathCompiler) -> None:
        self.pc = pc
        self._members: dict[tuple[str, str], exp.Expression] = {}

    def compile(self, node: Function, focus: Val) -> Val:
        """Compile a function call on ``focus``."""
        name = node.name
        if name == "ofType":
            return self._of_type(node, focus)
        base = focus if node.target is None else self.pc.expr(node.target, focus)
        args = node.args
        if name == "where" and len(args) == 1:
            return self._where(base, args[0])
        if name == "exists" and len(args) <= 1:
            if args:
                base = self._where(base, args[0])
            return self._exists(base, True)
        if name == "empty" and not args:
            return self._exists(base, False)
        if name == "not" and not args:
            item = self.pc.single(base, self.pc.text)
            return Val(
                exp.Not(this=self.pc.typed(item, "boolean")), False, FType("boolean"), "boolean"
            )
        if name == "first" and not args:
            if not base.many:
                return base
            return replace(
                base, sql=self.pc.d.element(base.sql, exp.Literal.number(0)), many=False, path=None
            )
        if name == "count" and not args:
            return Val(self.pc.d.length(self.pc.as_list(base)), False, FType("integer"), "integer")
        if name == "join" and len(args) <= 1:
            return self._join(base, args, focus)
        if name == "extension" and len(args) == 1:
            return self._extension(base, args[0], focus)
        if name == "getResourceKey" and not args:
            key = self.pc.member(base, "id")
            return Val(self.pc.typed(key, "string"), False, FType("string"), "string")
        if name in ("lowBoundary", "highBoundary") and not args:
            return self._boundary(base, name == "highBoundary")
        if name == "getReferenceKey" and len(args) <= 1:
            return self._reference_key(base, args)
        if name == "memberOf" and len(args) == 1:
            return self._member_of(base, args[0], focus)
        raise self.pc.unsupported(f"the function {name}()")

    def _boundary(self, base: Val, high: bool) -> Val:
        item = self.pc.single(base, self.pc.text)
        if isinstance(item.sql, exp.Null):
            return Val(exp.Null(), False, item.ftype, "string")
        code = (item.ftype.code or "").removeprefix("System.")
        code = {"Decimal": "decimal", "Date": "date", "DateTime": "dateTime", "Time": "time"}.get(
            code, code
        )
        sql = self.pc.d.boundary(self.pc.typed(item, "string"), code, high)
        if sql is None:
            raise self.pc.unsupported(
                f"{'high' if high else 'low'}Boundary() on {code or 'this value'}"
            )
        kind: SqlKind = "decimal" if code == "decimal" else "string"
        return Val(sql, False, FType(code), kind)

    def _member_of(self, base: Val, url_arg: Expr, focus: Val) -> Val:
        """``memberOf(url)``: a join of the value's codes against the value set's expansion
        table (:mod:`cmio.views.valuesets`), for values read from the resource itself."""
        pc = self.pc
        url = pc.expr(url_arg, focus).sql
        if not (isinstance(url, exp.Literal) and url.is_string):
            raise pc.unsupported("memberOf() with a value set that is not a string")
        item = pc.single(base, pc.text)
        if isinstance(item.sql, exp.Null):
            return Val(exp.Null(), False, FType("boolean"), "boolean")
        if pc.membership is None or not pc.rooted(focus):
            raise pc.unsupported("memberOf() on a value inside forEach, repeat or where()")
        code = item.ftype.code or ""
        memo = (item.sql.sql(), url.this)
        if memo in self._members:  # the same test twice (a where and a column): one join
            return Val(self._members[memo].copy(), False, FType("boolean"), "boolean")

        def key(coding: Val) -> exp.Expression:
            system = pc.typed(pc.member(coding, "system"), "string")
            value = exp.Paren(this=pc.typed(pc.member(coding, "code"), "string"))
            prefix = exp.Coalesce(
                this=exp.Paren(this=system), expressions=[exp.Literal.string("*")]
            )
            return pc.d.concat_strings(pc.d.concat_strings(prefix, exp.Literal.string("|")), value)

        if code == "CodeableConcept":
            codings = pc.member(item, "coding")
            var = pc.fresh()
            keys = pc.d.transform(pc.as_list(codings), var, key(pc.item(codings, var)))
        elif code == "Coding":
            keys = pc.d.make_list([key(item)])
        elif pc.json_kind(item) == "string":
            text = exp.Paren(this=pc.typed(item, "string"))
            keys = pc.d.make_list([pc.d.concat_strings(exp.Literal.string("*|"), text)])
        else:
            raise pc.unsupported(f"memberOf() on {code or 'this value'}")
        self._members[memo] = pc.membership(keys, url.this)
        return Val(self._members[memo].copy(), False, FType("boolean"), "boolean")

    def _where(self, base: Val, criterion: Expr) -> Val:
        if not base.many:
            var_focus = base
            cond = self.pc.typed(
                self.pc.single(self.pc.expr(criterion, var_focus), self.pc.text), "boolean"
            )
            return replace(base, sql=exp.Case(ifs=[exp.If(this=cond, true=base.sql)]), path=None)
        var = self.pc.fresh()
        item = self.pc.item(base, var)
        cond = self.pc.typed(self.pc.single(self.pc.expr(criterion, item), self.pc.text), "boolean")
        return replace(base, sql=self.pc.d.filter(base.sql, var, cond))

    def _exists(self, base: Val, exists: bool) -> Val:
        if base.many:
            sql: exp.Expression = exp.GT(
                this=self.pc.d.length(base.sql), expression=exp.Literal.number(0)
            )
            if not exists:
                sql = exp.Not(this=exp.Paren(this=sql))
        else:
            held = (
                self.pc.at(base.anchor, base.path, not self.pc.d.typed) if base.path else base.sql
            )
            sql = exp.Is(this=held, expression=exp.Null())
            if exists:
                sql = exp.Not(this=sql)
        return Val(exp.Paren(this=sql), False, FType("boolean"), "boolean")

    def _of_type(self, node: Function, focus: Val) -> Val:
        spec = _type_spec(node.args[0]) if len(node.args) == 1 else None
        if spec is None:
            raise self.pc.unsupported("ofType() without a type name")
        wanted = spec.name
        target = node.target
        if isinstance(target, Member):
            base = focus if target.target is None else self.pc.expr(target.target, focus)
            props = self.pc.props(base.ftype, target.name) if base.kind is None else []
            if len(props) > 1 or (props and props[0][1].element.choice):
                key = target.name + wanted[0].upper() + wanted[1:]
                if not any(k == key for k, _ in props):
                    return Val(exp.Null(), False, FType(wanted))
                return self.pc.member(base, target.name, key)
        value = focus if target is None else self.pc.expr(target, focus)
        code = value.ftype.code or ""
        if (
            code == wanted
            or code == f"System.{wanted}"
            or SYSTEM_KINDS.get(f"System.{wanted}") == value.kind
        ):
            return value
        return Val(exp.Null(), False, FType(wanted))

    def _join(self, base: Val, args: tuple[Expr, ...], focus: Val) -> Val:
        separator: exp.Expression = exp.Literal.string("")
        if args:
            separator = self.pc.typed(
                self.pc.single(self.pc.expr(args[0], focus), self.pc.text), "string"
            )
        var = self.pc.fresh()
        item = self.pc.item(base, var)
        strings = self.pc.d.transform(self.pc.as_list(base), var, self.pc.typed(item, "string"))
        return Val(self.pc.d.join_strings(strings, separator), False, FType("string"), "string")

    def _extension(self, base: Val, url_arg: Expr, focus: Val) -> Val:
        url = self.pc.typed(self.pc.single(self.pc.expr(url_arg, focus), self.pc.text), "string")
        extension = self.pc.type_of("Extension")
        if self.pc.d.typed:
            raise TypedLayoutUnsupported("extension()")
        if base.kind is not None:
            raise self.pc.unsupported("extension() on a primitive value")
        if base.ftype.index is None:
            base = replace(base, ftype=FType(base.ftype.code, {}))
        if "extension" in (base.ftype.index or {}):
            items = self.pc.member(base, "extension")
        elif base.many:
            var = self.pc.fresh()
            items = Val(
                self.pc.d.flatten(
                    self.pc.d.transform(
                        base.sql, var, self.pc.d.json_children(exp.column(var), "extension")
                    )
                ),
                True,
            )
        else:
            items = Val(self.pc.d.json_children(base.sql, "extension"), True)
        items = replace(items, ftype=extension)
        var = self.pc.fresh()
        own = self.pc.d.json_scalar(self.pc.d.json_child(exp.column(var), "url"), "string")
        return Val(
            self.pc.d.filter(self.pc.as_list(items), var, exp.EQ(this=own, expression=url)),
            True,
            extension,
        )

    def _reference_key(self, base: Val, args: tuple[Expr, ...]) -> Val:
        wanted = None
        if args:
            spec = _type_spec(args[0])
            if spec is None:
                raise self.pc.unsupported("getReferenceKey() with a non-type argument")
            wanted = spec.name

        def key(item: Val) -> Val:
            reference = self.pc.typed(self.pc.member(item, "reference"), "string")
            target = self.pc.d.reference_key(reference, wanted)
            return Val(target, False, FType("string"), "string")

        return self.pc.map_items(base, key)


def _type_spec(node: Expr) -> TypeSpec | None:
    if isinstance(node, Member) and node.target is None:
        return TypeSpec(None, node.name)
    if isinstance(node, Member) and isinstance(node.target, Member) and node.target.target is None:
        return TypeSpec(node.target.name, node.name)
    return None
