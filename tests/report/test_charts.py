"""The two charts: one bar per minute with data and the detection and containment markers at
their moments; the lineage diagram with every node and every arrow's bytes."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

from hemostat.report.charts import timeline_svg
from hemostat.report.document import environment
from hemostat.report.lang import NBSP, load
from hemostat.report.lineage import NODE_H, layout
from hemostat.scope.model import Destination, Egress, Scope
from tests.report.conftest import CONTAINED, EGRESS_START, FS, minute_bytes

SVG = "{http://www.w3.org/2000/svg}"
PARIS = "Europe/Paris"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (SVG written by the code under test)


def _by_id(svg: str) -> dict[str, ET.Element]:
    return {e.get("id", ""): e for e in _parse(svg).iter() if e.get("id")}


def _x(group: ET.Element) -> float:
    """The x where a group's first path starts (a bar's left edge, a vertical line's x)."""
    path = next(group.iter(f"{SVG}path"))
    match = re.match(r"M\s*([-\d.]+)", path.get("d", ""))
    assert match, path.get("d")
    return float(match.group(1))


def test_one_bar_per_minute_with_data() -> None:
    points = list(minute_bytes())
    points[5] = (points[5][0], 0)  # a quiet minute: no bar
    svg = timeline_svg(tuple(points), load("en", PARIS))
    bars = sorted((k for k in _by_id(svg) if k.startswith("bucket-")), key=lambda k: int(k[7:]))
    assert bars == [f"bucket-{i}" for i in range(19)]


def test_markers_stand_at_the_detection_and_containment_moments() -> None:
    detected = EGRESS_START + timedelta(minutes=6, seconds=30)
    svg = timeline_svg(minute_bytes(), load("fr", PARIS), detected, CONTAINED)
    ids = _by_id(svg)
    first, last = _x(ids["bucket-0"]), _x(ids["bucket-19"])
    per_minute = (last - first) / 19

    def at(ts: datetime) -> float:
        return first + (ts - EGRESS_START).total_seconds() / 60 * per_minute

    assert abs(_x(ids["containment"]) - at(CONTAINED)) < 0.5
    assert abs(_x(ids["detection"]) - at(detected)) < 0.5
    labels = "".join(ids["containment-label"].itertext()) + "".join(
        ids["detection-label"].itertext()
    )
    assert "confinement 03:30" in labels and "détection 03:16" in labels


def test_no_containment_marker_without_an_action() -> None:
    ids = _by_id(timeline_svg(minute_bytes(), load("en", PARIS), EGRESS_START))
    assert "detection" in ids and "containment" not in ids


def test_a_moment_far_off_the_chart_is_drawn_at_the_edge_with_its_date() -> None:
    late = EGRESS_START + timedelta(days=2)
    ids = _by_id(timeline_svg(minute_bytes(), load("en", PARIS), contained=late))
    assert _x(ids["containment"]) > _x(ids["bucket-19"])
    assert "containment 2023-06-16 03:10 \u2192" in "".join(ids["containment-label"].itertext())


def test_the_chart_is_deterministic_and_undated() -> None:
    lang = load("fr", PARIS)
    one = timeline_svg(minute_bytes(), lang, EGRESS_START, CONTAINED)
    two = timeline_svg(minute_bytes(), lang, EGRESS_START, CONTAINED)
    assert one == two and one.startswith("<svg")
    assert "<dc:date>" not in one


def test_an_empty_timeline_says_nothing_left() -> None:
    svg = timeline_svg((), load("en", PARIS))
    assert "No data measured leaving" in svg and "bucket-" not in svg


def _lineage(scope: Scope, code: str = "fr") -> str:
    lang = load(code, PARIS)
    return environment().get_template("lineage.svg.j2").render(d=layout(scope, lang), L=lang)


def _texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in _parse(svg).iter(f"{SVG}text")]


def test_lineage_shows_every_node_and_the_bytes_on_each_arrow(supplier: Scope) -> None:
    svg = _lineage(supplier)
    texts = _texts(svg)
    for label in ("dpi-db-01", "10.1.2.10", "base dpi", "jump-01", "10.1.0.70", "fs-02",
                  "10.1.8.10", "210.243.127.241"):  # fmt: skip
        assert label in texts, label
    texts_ = _parse(svg).iter(f"{SVG}text")
    byte_labels = ["".join(t.itertext()) for t in texts_ if t.get("class") == "bytes"]
    assert byte_labels == [f"590{NBSP}Mo", f"1,9{NBSP}Go", "smb", f"1,9{NBSP}Go", "postgresql"]


def test_lineage_layers_go_from_the_store_to_the_outside(supplier: Scope) -> None:
    nodes = {n.key: n for n in layout(supplier, load("en", PARIS)).nodes}
    xs = [nodes[k].x for k in ("10.1.2.10", "10.1.0.70", FS, "210.243.127.241")]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert nodes["10.1.2.10"].kind == "store" and nodes[FS].kind == "egress"


def test_many_destinations_fold_and_boxes_never_overlap(supplier: Scope) -> None:
    base = supplier.egress.destinations[0]
    dests = tuple(
        dataclasses.replace(base, address=f"198.51.100.{i}", bytes=base.bytes // (i + 1))
        for i in range(7)
    )
    egress: Egress = dataclasses.replace(supplier.egress, destinations=dests)
    diagram = layout(dataclasses.replace(supplier, egress=egress), load("en", PARIS))
    keys = {n.key for n in diagram.nodes}
    assert {f"198.51.100.{i}" for i in range(4)} <= keys and "198.51.100.4" not in keys
    assert "+others" in keys
    assert ["+ 3 other(s)" in n.lines for n in diagram.nodes].count(True) == 1
    boxes = [(n.x - diagram.node_w / 2, n.y - NODE_H / 2, n.x + diagram.node_w / 2,
              n.y + NODE_H / 2) for n in diagram.nodes]  # fmt: skip
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    assert all(x0 >= 0 and x1 <= diagram.width and y1 <= diagram.height for x0, _, x1, y1 in boxes)


def test_two_senders_to_one_destination_get_arrows_without_a_guessed_split(
    supplier: Scope,
) -> None:
    dest = Destination("203.0.113.9", 80_000_000, 4, EGRESS_START, CONTAINED, (FS, "10.1.8.11"))
    egress = dataclasses.replace(supplier.egress, destinations=(dest,))
    diagram = layout(dataclasses.replace(supplier, egress=egress), load("en", PARIS))
    to_dest = [e for e in diagram.edges if e.x2 == max(e.x2 for e in diagram.edges)]
    assert len(to_dest) == 2 and all(e.label == () for e in to_dest)


def test_an_empty_lineage_says_so(nothing: Scope) -> None:
    bare = dataclasses.replace(
        nothing, egress=dataclasses.replace(nothing.egress, destinations=(), hosts=())
    )
    assert "Aucun mouvement de données enregistré." in _texts(_lineage(bare))
    assert f"12{NBSP}MB" in _texts(_lineage(nothing, "en"))
