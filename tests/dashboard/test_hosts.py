"""Hosts and destinations pages: rankings, a host's hours and baseline, a destination's
talkers, all against the flows; unknown addresses answer a 404 page."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from datetime import datetime, timedelta

import pytest

from hemostat import inventory
from tests.dashboard.conftest import Site, TestClient, login
from tests.dashboard.test_overview import _ms, collector_of, egress_flows, spec_of

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session

ROW = r'<tr data-ip="([^"]+)" data-bytes="(\d+)"'


def _period(html: str, table: str) -> tuple[datetime, datetime]:
    found = re.search(rf'<table id="{table}" data-start="([^"]+)" data-end="([^"]+)">', html)
    assert found, f"no {table} in the page"
    return datetime.fromisoformat(found.group(1)), datetime.fromisoformat(found.group(2))


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """Largest first, ties by address (as the pages rank)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _incident(client: TestClient, ident: str) -> tuple[list[str], list[str]]:
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        row = store.con.execute(
            "SELECT hosts, destinations FROM incidents WHERE id = ?", [ident]
        ).fetchall()[0]
    return list(row[0]), list(row[1])


def test_lists_rank_hosts_and_destinations_by_the_bytes_of_the_flows(
    client: TestClient, site: Site
) -> None:
    login(client, site.analyst)
    page = client.get("/hosts").text
    lo, hi = _period(page, "hosts-table")
    assert hi - lo == timedelta(hours=24) and 'data-filter="hosts-table"' in page
    rows = [(ip, int(b)) for ip, b in re.findall(ROW, page)]
    sent = Counter[str]()
    for (_, src), value in egress_flows(client, site, lo, hi, "hour").items():
        sent[src] += value
    assert len(rows) == len(sent)
    assert rows[:10] == _ranked(sent)[:10]
    page = client.get("/destinations").text
    lo, hi = _period(page, "destinations-table")
    shown = [(ip, int(b)) for ip, b in re.findall(ROW, page)]
    received = Counter[str]()
    for (_, dst), value in egress_flows(client, site, lo, hi, "day", by="dst_ip").items():
        received[dst] += value
    assert len(shown) == min(len(received), 500)
    assert shown[:10] == _ranked(received)[:10]


def test_host_page_hours_destinations_and_baseline_match_the_flows(
    client: TestClient, site: Site
) -> None:
    login(client, site.analyst)
    inv = inventory.load(site.home / "inventory.yaml")
    roles = Counter(h.role for h in inv.hosts)
    hosts, _ = _incident(client, site.top_incident)
    by_ip = {h.ip: h for h in inv.hosts}
    ip = max((h for h in hosts if h in by_ip), key=lambda h: roles[by_ip[h].role])
    page = client.get(f"/hosts/{ip}").text
    assert f'<tr data-incident="{site.top_incident}">' in page
    assert by_ip[ip].name in page
    spec = spec_of(page, "host-data")
    hours = [_ms(x) for x in spec["x"]]
    mine = egress_flows(client, site, hours[0], hours[-1] + timedelta(hours=1), "hour",
                        f"src_ip = '{ip}'")  # fmt: skip
    assert spec["series"][0]["values"] == [mine.get((h, ip), 0) for h in hours]
    assert sum(mine.values()) > 0
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        per_dst = dict(store.con.execute(
            "SELECT dst_ip, sum(bytes_out) FROM flows WHERE src_ip = ? GROUP BY dst_ip", [ip]
        ).fetchall())  # fmt: skip
    table = page.split('id="partners-table"')[1]
    for dst, value in re.findall(ROW, table):
        assert int(value) == per_dst[dst], dst
    peers = [h.ip for h in inv.hosts if h.role == by_ip[ip].role and h.ip != ip]
    assert len(peers) >= 2, "the simulated hospital should have role peers for this host"
    assert 'data-basis="peers"' in page
    among = f"src_ip IN (SELECT unnest({peers!r}))"
    theirs = egress_flows(client, site, hours[0], hours[-1] + timedelta(hours=1), "hour", among)
    expected = [statistics.median([theirs.get((h, p), 0) for p in peers]) for h in hours]
    assert spec["series"][1]["values"] == expected


def test_destination_page_lists_who_talked_to_it(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    inv = inventory.load(site.home / "inventory.yaml")
    _, destinations = _incident(client, site.top_incident)
    addr = next(d for d in destinations if re.fullmatch(r"[\d.]+", d) and not inv.is_internal(d))
    page = client.get(f"/destinations/{addr}").text
    assert f'<tr data-incident="{site.top_incident}">' in page
    talkers = re.findall(r'<tr data-ip="([^"]+)" data-bytes="(\d+)" data-flows="(\d+)"', page)
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        rows = store.con.execute(
            "SELECT src_ip, sum(bytes_out), count(*) FROM flows WHERE dst_ip = ? GROUP BY src_ip "
            "ORDER BY 2 DESC", [addr],
        ).fetchall()  # fmt: skip
    expected = [(src, str(b), str(n)) for src, b, n in rows if inv.is_internal(src)]
    assert talkers == expected and talkers
    spec = spec_of(page, "destination-data")
    assert sum(spec["series"][0]["values"]) == sum(int(b) for _, b, _ in talkers)


def test_unknown_addresses_answer_a_404_page(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    for path in ("/hosts/10.250.250.250", "/hosts/not-an-address", "/hosts/8.8.8.8",
                 "/destinations/203.0.113.254", "/destinations/no.such.example"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in answer.text and "Traceback" not in answer.text
        assert '<a href="/hosts"' in answer.text or '<a href="/destinations"' in answer.text
    assert '<a href="/destinations/8.8.8.8">' in client.get("/hosts/8.8.8.8").text
