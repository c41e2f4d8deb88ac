"""JSON Patch (RFC 6902) over JSON Pointer (RFC 6901), as FHIR PATCH uses it.

See https://hl7.org/fhir/R4/http.html#patch and https://www.rfc-editor.org/rfc/rfc6902.
The patch is applied to a deep copy; the input is never modified, so a failed
patch changes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["JsonPatchError", "apply_patch"]


class JsonPatchError(ValueError):
    """The patch document is malformed or cannot be applied; ``index`` is the failing op."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"patch operation {index}: {message}")
        self.index = index


def _tokens(pointer: str, index: int) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(index, f"path {pointer!r} must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _array_index(token: str, size: int, index: int, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise JsonPatchError(index, f"{token!r} is not an array index")
    position = int(token)
    if position > size or (position == size and not allow_end):
        raise JsonPatchError(index, f"array index {position} out of range")
    return position


def _parent(doc: Any, tokens: list[str], index: int) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise JsonPatchError(index, f"path segment {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), index, False)]
        else:
            raise JsonPatchError(index, f"cannot descend into a scalar at {token!r}")
    return node


def _get(doc: Any, pointer: str, index: int) -> Any:
    tokens = _tokens(pointer, index)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(index, f"{pointer!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), index, False)]
    raise JsonPatchError(index, f"{pointer!r} does not exist")


def _remove(doc: Any, pointer: str, index: int) -> Any:
    tokens = _tokens(pointer, index)
    if not tokens:
        raise JsonPatchError(index, "cannot remove the whole document")
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(index, f"{pointer!r} does not exist")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_array_index(last, len(parent), index, False))
    raise JsonPatchError(index, f"{pointer!r} does not exist")


def _add(doc: Any, pointer: str, value: Any, index: int) -> Any:
    tokens = _tokens(pointer, index)
    if not tokens:
        return value
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), index, True), value)
    else:
        raise JsonPatchError(index, f"cannot add below a scalar at {pointer!r}")
    return doc


def apply_patch(document: Any, patch: Any) -> Any:
    """Apply a JSON Patch document and return the patched copy.

    Raises:
        JsonPatchError: when an operation is malformed, a path is missing, or a
            ``test`` fails.
    """
    if not isinstance(patch, list):
        raise JsonPatchError(0, "a JSON Patch document must be an array of operations")
    doc = copy.deepcopy(document)
    for index, op in enumerate(patch):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise JsonPatchError(index, "each operation needs 'op' and a string 'path'")
        kind, path = op.get("op"), op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise JsonPatchError(index, f"'{kind}' needs a 'value'")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]), index)
        elif kind == "remove":
            _remove(doc, path, index)
        elif kind == "replace":
            _get(doc, path, index)
            if _tokens(path, index):
                _remove(doc, path, index)
            doc = _add(doc, path, copy.deepcopy(op["value"]), index)
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise JsonPatchError(index, f"'{kind}' needs a string 'from'")
            if kind == "move" and (path + "/").startswith(source + "/") and path != source:
                raise JsonPatchError(index, "cannot move a value into one of its children")
            value = (
                _remove(doc, source, index)
                if kind == "move"
                else copy.deepcopy(_get(doc, source, index))
            )
            doc = _add(doc, path, value, index)
        elif kind == "test":
            if _get(doc, path, index) != op["value"]:
                raise JsonPatchError(index, f"test failed at {path!r}")
        else:
            raise JsonPatchError(index, f"unknown op {kind!r}")
    return doc
