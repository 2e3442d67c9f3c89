"""Which tables a PostgreSQL statement reads, and what it does with them (query, copy into
another table, export): a tokenizer and the FROM/JOIN lists, enough for the statements
``log_statement`` and pgaudit write (CTE names, sub-queries, function calls such as
``EXTRACT(x FROM y)``, ``COPY ... TO``, ``TABLE t``), not a full SQL parser.
"""

from __future__ import annotations

import re

from hemostat.schema import Action

_TOKEN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*|/\*.*?\*/)
    |(?P<str>'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)
    |(?P<qid>"(?:[^"]|"")+")
    |(?P<id>[A-Za-z_][\w$]*)
    |(?P<op>[\d.]+|.)""",
    re.S | re.X,
)
#: words after which "(" opens a group or a sub-query, not a function call
_NOT_CALLS = frozenset({"from", "join", "in", "exists", "as", "on", "any", "all", "some",
                        "values", "lateral", "where", "and", "or", "not", "select", "union",
                        "with", "using", "over", "filter", "within", "copy"})  # fmt: skip
_CLAUSES = frozenset({"where", "join", "inner", "left", "right", "full", "cross", "natural",
                      "on", "using", "group", "order", "limit", "offset", "union", "except",
                      "intersect", "having", "window", "for", "to", "with", "returning",
                      "fetch", "tablesample", "into", "from", "select", "lateral",
                      "only"})  # fmt: skip


def reads(sql: str) -> tuple[Action | None, list[str]]:
    """What a statement does with data and the tables it reads (``schema.table``); no tables
    for statements that only write or define."""
    tokens = _tokens(sql)
    words = [t.lower() for kind, t in tokens if kind == "id"]
    first = words[0] if words else ""
    if first == "explain" and "analyze" not in words[:3]:
        return None, []
    if first == "copy":
        return _copy(tokens)
    if first not in ("select", "with", "table", "insert", "create", "explain", "declare"):
        return None, []
    if first == "create" and not ("as" in words and {"table", "materialized"} & set(words[:4])):
        return None, []  # a view or function reads nothing when defined
    if first == "table":  # TABLE t is SELECT * FROM t
        found: list[str] = []
        _table_list(tokens, 1, found, set())
        return Action.QUERY, found
    into = ("into" in words and first == "select") or first in ("insert", "create")
    return (Action.COPY if into else Action.QUERY), _tables(tokens)


def _copy(tokens: list[tuple[str, str]]) -> tuple[Action | None, list[str]]:
    depth, name, end = 0, [], len(tokens)
    for i, (kind, text) in enumerate(tokens[1:], 1):
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and kind == "id" and text.lower() in ("to", "from"):
            if text.lower() == "from":
                return None, []
            end = i
            break
        elif depth == 0 and i <= 3 and (kind in ("id", "qid") or text == "."):
            name.append((kind, text))
    if end == len(tokens):
        return None, []
    if tokens[1][1] == "(":
        return Action.EXPORT, _tables(tokens[2:end])
    table = _name([t for t in name if t[1] != "."])
    return Action.EXPORT, [table] if table and not catalog(table) else []


def _tokens(sql: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup if m.lastgroup != "tag" else "str"
        if kind not in ("ws", "str"):
            out.append((str(kind), m.group()))
    return out


def _tables(tokens: list[tuple[str, str]]) -> list[str]:
    """Tables after FROM and JOIN (not inside function calls such as EXTRACT(x FROM y)),
    less the statement's WITH names."""
    found: list[str] = []
    ctes: set[str] = set()
    calls: list[bool] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        word = text.lower() if kind == "id" else ""
        if text == "(":
            prev = tokens[i - 1] if i else ("op", "")
            calls.append(prev[0] in ("id", "qid") and prev[1].lower() not in _NOT_CALLS)
        elif text == ")" and calls:
            calls.pop()
        elif word == "as" and i + 1 < len(tokens) and tokens[i + 1][1] == "(" and i:
            ctes.add(_ident(tokens[i - 1]))
        elif word in ("from", "join") and not (calls and calls[-1]):
            i = _table_list(tokens, i + 1, found, ctes)
            continue
        i += 1
    return list(dict.fromkeys(found))


def _table_list(tokens: list[tuple[str, str]], i: int, found: list[str], ctes: set[str]) -> int:
    """Read ``a [AS x], b, ONLY c`` from ``i``; returns where it stopped."""
    while i < len(tokens):
        while i < len(tokens) and tokens[i][1].lower() in ("only", "lateral"):
            i += 1
        parts = []
        while i < len(tokens) and tokens[i][0] in ("id", "qid"):
            parts.append(tokens[i])
            if i + 1 < len(tokens) and tokens[i + 1][1] == ".":
                i += 2
            else:
                i += 1
                break
        cte = len(parts) == 1 and _ident(parts[0]) in ctes
        if parts and not cte and not (i < len(tokens) and tokens[i][1] == "("):  # a function
            table = _name(parts)
            if table and not catalog(table):
                found.append(table)
        if i < len(tokens) and tokens[i][1].lower() == "as":
            i += 1
        if i < len(tokens) and tokens[i][0] in ("id", "qid") and (
                tokens[i][1].lower() not in _CLAUSES):  # fmt: skip
            i += 1  # alias
        if not (parts and i < len(tokens) and tokens[i][1] == ","):
            return i
        i += 1
    return i


def _ident(token: tuple[str, str]) -> str:
    kind, text = token
    return text[1:-1].replace('""', '"') if kind == "qid" else text.lower()


def _name(parts: list[tuple[str, str]]) -> str | None:
    names = [_ident(p) for p in parts]
    if not names or len(names) > 3:
        return None
    return ".".join(names[-2:]) if len(names) > 1 else f"public.{names[0]}"


def qualified(name: str) -> str:
    """``name`` with its schema (``public`` when it has none)."""
    return name if "." in name else f"public.{name}"


def catalog(table: str) -> bool:
    """Whether ``schema.table`` is PostgreSQL's own catalog, not data."""
    schema, _, name = table.partition(".")
    return schema in ("pg_catalog", "information_schema") or (
        schema == "public" and name.startswith("pg_")
    )
