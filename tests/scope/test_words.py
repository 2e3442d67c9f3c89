"""Scoping's sentences kept as (key, values): their English is the old sentences' byte for
byte (the ``old_*`` functions below are the f-strings of hemostat before the change, copied),
their French is French, with French number formats."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from hemostat.detect.context import size as human
from hemostat.inventory import Datastore, Inventory
from hemostat.report.lang import NBSP, load, table
from hemostat.schema import Category
from hemostat.scope import _busy, _routine, _timeline, _unknowns, bounds
from hemostat.scope.model import Egress, EgressHost, Hop, Read, Status
from hemostat.scope.words import Size, Term, said

T0 = datetime(2023, 6, 14, 1, 0, tzinfo=UTC)
FR = load("fr", "Europe/Paris")
EN = load("en", "Europe/Paris")
#: words an English reasoning sentence has and a French one must not
ENGLISH = re.compile(r"\b(No evidence|rows|read|compressed|unknown|left|records|bound|the)\b")


def hop(src: str, port: int, size: int, followed: bool = True, store: str | None = None) -> Hop:
    return Hop(src, "10.1.8.10", None, None, port, None, size, 3, T0, T0 + timedelta(minutes=5),
               1, store, followed)  # fmt: skip


def read(obj: str, rows: int, size: int, *, estimated: bool = False, bulk: bool = True) -> Read:
    return Read("dpi", obj, "svc_export", "10.1.8.10", ("SELECT",), 2, rows, rows * 2, size,
                T0, T0 + timedelta(minutes=3), estimated, bulk)  # fmt: skip


DPI = Datastore(name="dpi", host="10.1.2.30", ports=[5432], category=Category.PATIENT,
                records=250_000, subjects=120_000, bytes=4_000_000_000)  # fmt: skip
PACS = Datastore(name="pacs", host="10.1.3.4", ports=[104], category=Category.PATIENT,
                 records=40_000, subjects=9_000, bytes=900_000_000)  # fmt: skip


# ---- the old sentences (hemostat 96cca41), copied --------------------------------------------


def old_possible(
    store: Datastore, hops: list[Hop], given: int, carried: float, high: int
) -> tuple[str, str]:
    ports = ", ".join(str(p) for p in sorted({h.port for h in hops}))
    hosts = ", ".join(sorted({h.dst for h in hops}))
    return (
        f"{human(given)} moved from {store.host} (ports {ports}) to {hosts} before the "
        "egress, and no access event shows what was read: the low bound is 0.",
        f"High bound: {high:,} records, the most that {human(carried)} can hold at "
        "the store's smallest bytes per record.",
    )


def old_proven(store: Datastore, reads: list[Read], fit: bounds.Fit, r: Any) -> tuple[str, ...]:
    accounts = ", ".join(sorted({x.account or "?" for x in reads}))
    clients = ", ".join(sorted({x.client or "?" for x in reads}))
    read = r.bytes_read
    records, subjects = r.records, r.subjects
    lines = [
        f"The access log shows {sum(r.events for r in reads):,} bulk read(s) of "
        f"{len({r.object for r in reads})} object(s) of {store.name} by {accounts} from "
        f"{clients}: {human(read)} (largest read per object).",
        f"Low bound {records.low:,} records: the rows read"
        + (f", scaled to the {fit.low:.0%} of them that {human(fit.egress)} can hold "
           "uncompressed" if fit.low < 1 else ", all of which fit in what left")
        + ".",
        f"High bound {records.high:,} records: every row those accounts read"
        + (f", as far as {human(fit.egress)} compressed {fit.max_compression:g} times can hold "
           "them, smallest rows first" if fit.high < 1
           else f" (what left holds them all once compressed up to {fit.max_compression:g} times)")
        + (f"; the store holds {store.records:,}." if store.records else "."),
        f"People: {subjects.low:,} to {subjects.high:,}, from the people per row of each table "
        "read (the same person is in several tables: the low bound is the best single table).",
    ]  # fmt: skip
    if any(x.estimated for x in reads):
        lines.append("File reads carry no row count: rows are estimated from bytes at the "
                     "table's (or store's) bytes per record.")  # fmt: skip
    return tuple(lines)


def old_statement(category: Category, status: Status, c: Any) -> str:
    names = ", ".join(c.datastores)
    if status == Status.NONE:
        return (f"No evidence that {category} data left: no {category} data store was read by, "
                "or sent data towards, the hosts behind the egress.")  # fmt: skip
    if status == Status.PROVEN:
        return (f"{category.capitalize()} data left: {c.records.low:,} to {c.records.high:,} "
                f"records about {c.subjects.low:,} to {c.subjects.high:,} people, proven by the "
                f"access log ({names}).")  # fmt: skip
    return (f"{category.capitalize()} data may have left: data moved from {names} towards the "
            f"egress but no read is logged; up to {c.records.high:,} records about "
            f"{c.subjects.high:,} people.")  # fmt: skip


# ---- English: the old sentences ---------------------------------------------------------------


def test_a_store_only_flows_reached_says_what_it_said() -> None:
    hops = [hop("10.1.3.4", 104, 700_000_000), hop("10.1.3.4", 443, 12_345_678)]
    r = bounds.possible(PACS, hops, 150_000_000, 3.0)
    given = 712_345_678
    assert r.evidence == old_possible(PACS, hops, given, 450_000_000.0, r.records.high)
    assert r.reasoning() == list(r.evidence)
    french = r.reasoning(FR)
    assert f"712{NBSP}Mo sont partis de 10.1.3.4 (ports 104, 443)" in french[0]
    assert f"{r.records.high:,}".replace(",", NBSP) in french[1]
    assert all(not ENGLISH.search(s) for s in french), french


@pytest.mark.parametrize(
    ("egress", "records", "estimated"),
    [
        (50_000_000, 250_000, False),  # a part of the reads left: scaled low and high
        (5_000_000_000, None, True),  # all of them: nothing scaled; store size unknown; files
        (300_000_000, 250_000, False),  # the low fits, the high only compressed
    ],
)
def test_a_store_the_access_log_proves_says_what_it_said(
    egress: int, records: int | None, estimated: bool
) -> None:
    store = DPI.model_copy(update={"records": records})
    reads = [read("public.patients", 90_000, 180_000_000, estimated=estimated),
             read("public.sejours", 30_000, 15_000_000)]  # fmt: skip
    fit = bounds.fit(egress, reads, 2.5)
    r = bounds.proven(store, reads, fit, [])
    assert r.evidence == old_proven(store, reads, fit, r)
    french = r.reasoning(FR)
    assert len(french) == len(r.evidence) == 4 + estimated
    assert all(not ENGLISH.search(s) for s in french), french
    assert f"Borne basse de {r.records.low:,} enregistrements".replace(",", NBSP) in french[1]
    if fit.low < 1:
        assert f"{fit.low:.0%}".replace("%", f"{NBSP}%") in french[1]


def test_category_statements_say_what_they_said() -> None:
    proven = bounds.proven(DPI, [read("public.patients", 90_000, 180_000_000)],
                           bounds.fit(50_000_000, [read("public.patients", 90_000, 180_000_000)],
                                      2.5), [])  # fmt: skip
    possible = bounds.possible(PACS, [hop("10.1.3.4", 104, 700_000_000)], 150_000_000, 3.0)
    finance = bounds.possible(PACS.model_copy(update={"name": "gef", "category": Category.FINANCE}),
                              [hop("10.1.3.9", 1433, 9_000_000)], 150_000_000, 3.0)  # fmt: skip
    seen = bounds.categories([proven, possible, finance])
    assert {c.status for c in seen.values()} == {Status.NONE, Status.PROVEN, Status.POSSIBLE}
    for category, c in seen.items():
        assert c.statement == old_statement(category, c.status, c)
        assert c.stated() == c.statement
        assert c.stated(EN) == c.statement  # no size in a statement: the report's English too
        french = c.stated(FR)
        assert not ENGLISH.search(french), french
    assert seen[Category.PATIENT].stated(FR).startswith("Des données de patients sont sorties")
    assert seen[Category.FINANCE].stated(FR).startswith("Des données financières ont pu sortir")
    assert (
        seen[Category.STAFF]
        .stated(FR)
        .startswith("Aucun élément n'indique que des données du personnel soient sorties")
    )


def test_unknowns_notes_and_timeline_say_what_they_said() -> None:
    site = Inventory(site="chu", datastores=[DPI, PACS.model_copy(update={"host": "10.1.8.10"})])
    out = Egress(0, 0, (), (EgressHost("10.1.8.10", None, 0, 0),), 0, None, None, ())
    possible = bounds.possible(PACS, [hop("10.1.3.4", 104, 700_000_000)], 0, 3.0)
    unknowns = _unknowns(site, out, [possible])
    assert [s.text() for s in unknowns] == [
        "The content of encrypted egress is not visible: that it held the data read is "
        "inferred from volumes and timing.",
        "How much the data was compressed is unknown: the bounds allow from none to "
        "the configured maximum.",
        "Exfiltration by other channels (removable media, printing, personal e-mail, "
        "photographs of screens) is not measured.",
        "pacs: no access log covers the reads, only flows do.",
        "The egress host 10.1.8.10 also holds data store pacs (patient); no read of "
        "it is logged in the window, so it is not counted, but a local copy cannot be ruled out.",
        "No egress to the incident's destinations was found in the flows.",
    ]
    hops = [hop(f"10.1.4.{i}", 445, 1000, followed=False) for i in range(7)]
    notes = _routine([read("public.x", 12, 1200, bulk=False)] * 2) + _busy(hops)
    assert [s.text() for s in notes] == [
        "4 routine read(s) (48 rows) by the same hosts were seen and not counted: each took less "
        "than the bulk share of its table and was made by an account the incident does not name.",
        "7 busy internal host(s) also gave data to the hosts behind the egress (10.1.4.0, "
        "10.1.4.1, 10.1.4.2, 10.1.4.3, 10.1.4.4, ...) but most of what they gave went "
        "elsewhere: not followed.",
    ]
    assert (
        _busy(hops[:2])[0]
        .text()
        .startswith(
            "2 busy internal host(s) also gave data to the "
            "hosts behind the egress (10.1.4.0, 10.1.4.1) "
        )
    )
    for s in unknowns + notes:
        assert not ENGLISH.search(s.text(FR)), s.text(FR)


def test_timeline_events_say_what_they_said() -> None:
    incident: Any = SimpleNamespace(id="INC-1")  # the timeline only names the incident
    out = Egress(1_234_567, 4, (), (), 0, T0, T0 + timedelta(hours=1), ())
    events = _timeline(
        incident,
        out,
        [hop("10.1.2.30", 5432, 987_654_321, store="dpi")],
        [read("public.patients", 90_000, 180_000_000)],
        T0 + timedelta(hours=2),
    )
    assert [e.text for e in events] == [
        "10.1.2.30 gave 987,654,321 bytes to 10.1.8.10 (port 5432)",
        "svc_export read public.patients from 10.1.8.10 (90,000 rows)",
        "egress starts (1,234,567 bytes in all)",
        "egress ends",
        "hemostat opens incident INC-1",
    ]
    assert [e.told() for e in events] == [e.text for e in events]
    french = [e.told(FR) for e in events]
    assert french[0] == f"10.1.2.30 a transmis 987{NBSP}654{NBSP}321 octets à 10.1.8.10 (port 5432)"
    assert french[1] == f"svc_export a lu public.patients depuis 10.1.8.10 (90{NBSP}000 lignes)"


# ---- the mechanism -----------------------------------------------------------------------------


def test_values_are_written_the_way_each_language_writes_them() -> None:
    s = said("proven.low", records=12_345,
             how=said("proven.low_scaled", share=0.4567, size=Size(590_000_000)))  # fmt: skip
    assert s.text() == ("Low bound 12,345 records: the rows read, scaled to the 46% of them "
                        "that 590 MB can hold uncompressed.")  # fmt: skip
    assert s.text(FR) == (f"Borne basse de 12{NBSP}345 enregistrements : les lignes lues, "
                          f"ramenées aux 46{NBSP}% que 590{NBSP}Mo peuvent contenir sans "
                          "compression.")  # fmt: skip
    high = said("proven.high_all", ratio=2.5)
    assert "2.5 times" in high.text() and "2,5 fois" in high.text(FR)
    assert (
        said("statement.none", c=Term("category", "research"))
        .text()
        .startswith("No evidence that research data left")
    )


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def flat(node: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in node.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_every_scope_text_has_a_french_twin_with_the_same_values() -> None:
    en, fr = flat(table(EN.code)["scope"]), flat(table(FR.code)["scope"])
    assert set(en) == set(fr)
    for key, text in en.items():
        assert fields(text) == fields(fr[key]), key
