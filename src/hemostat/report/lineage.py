"""The lineage diagram: data store -> internal hosts -> egress host -> destination, laid out in
layers by hop depth, with the bytes on each arrow. The layout is computed here; the drawing
is the ``lineage.svg.j2`` template (plain SVG shapes and text, readable from 1 to ~8 nodes).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from hemostat.report.lang import Lang
from hemostat.scope.model import Destination, Scope

MIN_WIDTH = 760
NODE_W, NODE_H = 140, 52  # widest box; narrower when columns are many
GAP = 90  # room between two columns for the arrow's labels
ROW, TOP, SIDE = 66, 26, 6
MAX_DESTINATIONS = 4  # more are folded into one "+ N others" node
_CHAR = 7.2  # average width of one 12 px character, for label backgrounds


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    x: float
    y: float
    lines: tuple[str, ...]
    kind: str  # store | host | egress | outside


@dataclass(frozen=True, slots=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: tuple[str, ...]  # bytes, then the service or port
    head: str  # arrowhead polygon points

    @property
    def mid(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    @property
    def label_width(self) -> float:
        return max((len(x) for x in self.label), default=0) * _CHAR + 8


@dataclass(frozen=True)
class Diagram:
    width: int
    height: int
    node_w: float
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    columns: tuple[tuple[float, str], ...]  # (x centre, title)


@dataclass
class _Arrow:
    bytes: int | None = None  # None: not known for this pair (shown without a label)
    services: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """Nodes (by column) and arrows before coordinates are given."""

    col: dict[str, int]
    lines: dict[str, tuple[str, ...]]
    kind: dict[str, str]
    weight: dict[str, int]
    arrows: dict[tuple[str, str], _Arrow]


def layout(scope: Scope, lang: Lang) -> Diagram:
    plan = _plan(scope, lang)
    columns = max(plan.col.values(), default=-1) + 1
    width = max(MIN_WIDTH, columns * (NODE_W + GAP) - GAP + 2 * SIDE)
    node_w = min(NODE_W, (width - 2 * SIDE - (columns - 1) * GAP) / max(columns, 1))
    by_col: dict[int, list[str]] = defaultdict(list)
    for key in sorted(plan.col, key=lambda k: -plan.weight[k]):
        by_col[plan.col[key]].append(key)
    rows = max((len(v) for v in by_col.values()), default=0)
    step = (width - 2 * SIDE - node_w) / max(columns - 1, 1)
    centre: dict[str, tuple[float, float]] = {}
    for col, keys in by_col.items():
        offset = (rows - len(keys)) * ROW / 2
        for row, key in enumerate(keys):
            centre[key] = (SIDE + node_w / 2 + col * step, TOP + offset + row * ROW + ROW / 2)
    nodes = tuple(Node(k, *centre[k], plan.lines[k], plan.kind[k]) for k in centre)
    edges = tuple(
        _edge(centre[a], centre[b], node_w, _label(arrow, lang))
        for (a, b), arrow in plan.arrows.items()
    )
    titles = tuple(
        (SIDE + node_w / 2 + c * step, lang.t(f"lineage.{_column_title(c, columns)}"))
        for c in range(columns)
    )
    return Diagram(width, TOP + rows * ROW + 6, node_w, nodes, edges, titles)


def _column_title(col: int, columns: int) -> str:
    return "outside" if col == columns - 1 else "egress" if col == columns - 2 else "inside"


def _label(arrow: _Arrow, lang: Lang) -> tuple[str, ...]:
    size = () if arrow.bytes is None else (lang.size(arrow.bytes),)
    return (*size, *(["/".join(arrow.services)] if arrow.services else []))


def _plan(scope: Scope, lang: Lang) -> _Plan:
    depth = max((h.depth for h in scope.lineage), default=0)
    plan = _Plan({}, {}, {}, defaultdict(int), defaultdict(_Arrow))
    for host in scope.egress.hosts:
        _node(plan, host.ip, depth, _host_lines(host.name, host.ip), "egress", host.bytes)
    dests = sorted(scope.egress.destinations, key=lambda d: -d.bytes)
    for d in dests[:MAX_DESTINATIONS]:
        _node(plan, d.address, depth + 1, (d.address,), "outside", d.bytes)
        for h in d.hosts:  # bytes per sender are known only when there is one sender
            _arrow(plan, h, d.address, d.bytes if len(d.hosts) == 1 else None)
    _fold(plan, dests[MAX_DESTINATIONS:], depth + 1, lang)
    for hop in sorted(scope.lineage, key=lambda h: (h.depth, -h.bytes)):
        col = depth - hop.depth
        src_lines = _host_lines(hop.src_name, hop.src)
        if hop.datastore:
            src_lines = (*src_lines, lang.t("lineage.store", name=hop.datastore))
        kind = "store" if hop.datastore else "host"
        _node(plan, hop.src, col, src_lines, kind, hop.bytes)
        _node(plan, hop.dst, col + 1, _host_lines(hop.dst_name, hop.dst), "host", hop.bytes)
        _arrow(plan, hop.src, hop.dst, hop.bytes, hop.service or str(hop.port))
    for ip in {h for d in dests for h in d.hosts} - plan.col.keys():  # sender not in hosts
        _node(plan, ip, depth, (ip,), "egress", 0)
    return plan


def _fold(plan: _Plan, rest: list[Destination], col: int, lang: Lang) -> None:
    """Destinations beyond the first few: one node, with how many and how much."""
    if not rest:
        return
    key = "+others"
    lines = (lang.t("lineage.others", n=len(rest)), lang.size(sum(d.bytes for d in rest)))
    _node(plan, key, col, lines, "outside", 0)
    for h in dict.fromkeys(h for d in rest for h in d.hosts):
        _arrow(plan, h, key, None)


def _node(plan: _Plan, key: str, col: int, lines: tuple[str, ...], kind: str, weight: int) -> None:
    """Add a node; one already placed keeps its column (the one nearest the egress)."""
    if key not in plan.col:
        plan.col[key], plan.lines[key], plan.kind[key] = col, lines, kind
    elif kind == "store":
        plan.lines[key], plan.kind[key] = lines, kind
    plan.weight[key] += weight


def _arrow(plan: _Plan, src: str, dst: str, size: int | None, service: str = "") -> None:
    """One arrow per pair of nodes: the bytes of several hops add up, their services list."""
    arrow = plan.arrows[(src, dst)]
    if size is not None:
        arrow.bytes = (arrow.bytes or 0) + size
    if service and service not in arrow.services:
        arrow.services.append(service)


def _host_lines(name: str | None, ip: str) -> tuple[str, ...]:
    return (name, ip) if name and name != ip else (ip,)


def _edge(
    a: tuple[float, float], b: tuple[float, float], node_w: float, label: tuple[str, ...]
) -> Edge:
    """An arrow from the right side of box ``a`` to the left side of box ``b``."""
    x1, y1 = a[0] + node_w / 2, a[1]
    x2, y2 = b[0] - node_w / 2, b[1]
    if x2 <= x1:  # same or earlier column: from the bottom of one to the top of the other
        x1, y1, x2, y2 = a[0], a[1] + NODE_H / 2, b[0], b[1] - NODE_H / 2
    angle = math.atan2(y2 - y1, x2 - x1)
    size, spread = 8.0, 0.42
    points = [(x2, y2)] + [
        (x2 - size * math.cos(angle + s), y2 - size * math.sin(angle + s))
        for s in (spread, -spread)
    ]
    head = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return Edge(x1, y1, x2, y2, label, head)
