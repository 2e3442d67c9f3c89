"""The overview (/): its chart against the flows, its incidents against the store, the
containment page's agents and containment panels (silent agents, actions in force, a broken
audit chain), the refresh fragments, and a store detected before the egress rollups."""

from __future__ import annotations

import ipaddress
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from hemostat import config, inventory
from hemostat.audit import AuditLog
from hemostat.server.app import create_app
from hemostat.server.auth import Role, Tokens
from hemostat.server.collector import Collector
from hemostat.server.metrics import Seen
from hemostat.store import Store
from tests.dashboard.conftest import QUIET, Site, TestClient, login
from tests.dashboard.test_containment import a_host, answer_all, isolate, rows

pytestmark = pytest.mark.slow  # the hospital is simulated and detected once per session

NOT_EGRESS = [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16",
              "224.0.0.0/4", "240.0.0.0/4")]  # fmt: skip


def spec_of(html: str, ident: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>', html, re.S)
    assert found, f"no chart data {ident} in the page"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def collector_of(client: TestClient) -> Collector:
    found: Collector = client.app.state.collector  # type: ignore[attr-defined]
    return found


def egress_flows(
    client: TestClient,
    site: Site,
    lo: datetime,
    hi: datetime,
    unit: str,
    where: str = "TRUE",
    by: str = "src_ip",
) -> dict[tuple[datetime, str], int]:
    """Bytes out per (``unit`` bucket, source or ``by``) of the flows from an inventory-internal
    address to an outside one in ``[lo, hi)`` (and ``where``), the addresses classified here
    with ``ipaddress``."""
    inv = inventory.load(site.home / "inventory.yaml")
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        con, span = store.con, [lo, hi]
        seen = con.execute(f"SELECT list(DISTINCT src_ip), list(DISTINCT dst_ip) FROM flows "
                           f"WHERE ts >= ? AND ts < ? AND {where}", span).fetchall()[0]  # fmt: skip
        inside = [src for src in seen[0] or () if inv.is_internal(src)]
        outside = [dst for dst in seen[1] or () if _outside(inv, dst)]
        rows = con.execute(
            f"""SELECT date_trunc('{unit}', ts), {by}, sum(bytes_out) FROM flows
                WHERE ts >= ? AND ts < ? AND {where} AND src_ip IN (SELECT unnest(?))
                AND dst_ip IN (SELECT unnest(?)) GROUP BY ALL""",
            [*span, inside, outside],
        ).fetchall()
    return {(bucket.astimezone(UTC), key): int(sent or 0) for bucket, key, sent in rows}


def _outside(inv: inventory.Inventory, dst: str) -> bool:
    d = ipaddress.ip_address(dst)
    return (not inv.is_internal(dst) and str(d) != "255.255.255.255"
            and not any(d in n for n in NOT_EGRESS))  # fmt: skip


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def test_chart_is_the_last_day_of_data_and_sums_the_flows(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    spec = spec_of(client.get("/").text, "egress-data")
    xs = [_ms(x) for x in spec["x"]]
    lo, hi = xs[0], xs[-1] + timedelta(minutes=1)
    assert len(xs) == 24 * 60 and hi - lo == timedelta(hours=24)
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        newest = store.con.execute("SELECT max(ts) FROM flows").fetchall()[0][0]
    assert xs[-1] == newest.astimezone(UTC).replace(second=0, microsecond=0)
    per_minute = egress_flows(client, site, lo, hi, "minute")
    named = [s for s in spec["series"] if s["ip"]]
    assert 1 <= len(named) <= 8
    for series in named:  # each top host: minute by minute
        expected = [per_minute.get((x, series["ip"]), 0) for x in xs]
        assert series["values"] == expected, series["name"]
    others = next(s for s in spec["series"] if s["ip"] is None)
    total = sum(per_minute.values())
    assert sum(others["values"]) == total - sum(sum(s["values"]) for s in named)
    assert sum(others["values"]) > 0
    sent = Counter[str]()
    for (_, src), value in per_minute.items():
        sent[src] += value
    top = [ip for ip, _ in sent.most_common(3)]
    assert [s["ip"] for s in named[:3]] == top  # the largest senders of the day


def test_headline_figures_and_incidents_are_the_stores(client: TestClient, site: Site) -> None:
    login(client, site.analyst)
    page = client.get("/").text
    with collector_of(client).store.reading() as store:  # type: ignore[union-attr]
        rows = store.con.execute("SELECT id, severity, status FROM incidents").fetchall()
        newest = store.con.execute("SELECT max(ts) FROM flows").fetchall()[0][0]
    listed = re.findall(r'<tr data-incident="([^"]+)">', page)
    assert sorted(listed) == sorted(r[0] for r in rows) and listed
    assert listed[0] == site.top_incident
    assert f'href="/incidents/{site.top_incident}"' in page
    fragment = client.get("/fragments/overview/incidents").text
    assert re.findall(r'<tr data-incident="([^"]+)">', fragment) == listed
    assert page.count('class="sev sev-') >= len(rows)
    opened = sum(1 for r in rows if r[2] == "open")
    assert re.search(rf'data-figure="open">{opened}<', page)
    hi = newest.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    last_hour = sum(egress_flows(client, site, hi - timedelta(hours=1), hi, "minute").values())
    en = client.get("/lang/en?next=/fragments/overview/figures").text
    shown = re.search(r'data-figure="last-hour">([^<]+)<', en)
    assert shown and shown.group(1) == _size(last_hour)


def _size(n: float) -> str:
    """Decimal units as the report writes them (English), to compare a headline figure."""
    step, units = 0, ("B", "kB", "MB", "GB", "TB")
    while abs(n) >= 1000 and step < len(units) - 1:
        n, step = n / 1000, step + 1
    return (f"{n:.0f}" if step == 0 or abs(n) >= 10 else f"{n:.1f}") + "\u00a0" + units[step]


def test_agents_and_containment_are_the_containment_pages_panels(
    client: TestClient, site: Site
) -> None:
    host = a_host(site)
    agent, agent_token = Tokens(site.home).create("srv-agent", Role.AGENT, host)
    active = isolate(client, site, host)
    answer_all(client, agent_token)
    pending = isolate(client, site, host)  # not answered yet: waiting, in force all the same
    login(client, site.analyst)
    client.get("/lang/en")
    page = client.get("/").text
    for part in ("agents", "containment"):  # drawn and refreshed from the containment page's
        assert f'<div data-refresh="/fragments/{part}" data-every="10">' in page
        assert f"/fragments/overview/{part}" not in page
    assert _stale(page) == {"test-agent": "1", "srv-agent": "1"}  # enrolled, never seen
    assert re.search(r'data-figure="agents">0 / 2<', page)

    found = collector_of(client)
    nat = "192.0.2.7"  # where its batch came from: not the host it protects
    found.metrics.seen(agent.id, Seen("srv-agent", nat, datetime.now(UTC), 2.5, 4096))
    page = client.get("/").text
    assert _stale(page) == {"test-agent": "1", "srv-agent": "0"}  # the silent one flagged
    [seen] = [cells for a, cells in rows(page, "agents-table") if a["data-agent"] == "srv-agent"]
    assert seen[1] == host and seen[4] == "4.1 kB" and f'href="/hosts/{host}"' in page
    assert re.search(r'data-figure="agents">1 / 2<', page)

    figures = dict(_glance(page))
    assert (figures["host"], figures["waiting"], figures["failed"]) == ("1", "1", "0")
    assert f"isolation of host</strong> {host} " in page  # the action in force, by its target
    assert re.search(r'data-figure="contained">2<', page)  # active + pending
    assert re.search(r'data-figure="contained">2<', client.get("/fragments/overview/figures").text)
    assert 'data-audit-ok="1"' in page
    assert {active, pending} == {a["id"] for a in found.responder.listing()}


def test_the_overview_shows_a_broken_audit_chain(client: TestClient, site: Site) -> None:
    host = a_host(site)
    Tokens(site.home).create("srv-agent", Role.AGENT, host)
    isolate(client, site, host)  # planned and sent: two audit entries
    login(client, site.analyst)
    client.get("/lang/en")
    assert 'data-audit-ok="1"' in client.get("/").text
    log = AuditLog(site.home).path
    lines = log.read_text().splitlines()
    first = json.loads(lines[0])
    first["reason"] = "nothing to see"
    log.write_text("\n".join([json.dumps(first, sort_keys=True), *lines[1:]]) + "\n")
    assert not AuditLog(site.home).verify().ok
    page = client.get("/").text
    assert 'data-audit-ok="0"' in page and "Audit log verification FAILED" in page


def _stale(html: str) -> dict[str, str]:
    return {a["data-agent"]: a["data-stale"] for a, _ in rows(html, "agents-table")}


def _glance(html: str) -> list[tuple[str, str]]:
    """The containment glance's figures: (name, value) in the page."""
    glance = html[html.index('id="containment-glance"') :]
    return re.findall(r'<li data-figure="(\w+)"><span class="value[^"]*">([^<]*)<', glance)


def test_fragments_without_a_session_answer_401_json(client: TestClient, site: Site) -> None:
    for part in ("egress", "figures", "incidents"):
        answer = client.get(f"/fragments/overview/{part}", follow_redirects=False)
        assert answer.status_code == 401, part
        assert answer.json()["field"] == "session"
    login(client, site.analyst)
    for part in ("agents", "containment"):  # the containment page's fragments serve them now
        assert client.get(f"/fragments/overview/{part}").status_code == 404, part


@pytest.fixture
def unrolled(site: Site) -> Iterator[TestClient]:
    """The app over a store detected before the egress rollups existed."""
    with Store(site.home) as store:
        for table in ("egress_hours", "egress_minutes", "egress_sources", "egress_targets",
                      "egress_rolls"):  # fmt: skip
            store.con.execute(f"DELETE FROM {table}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        app = create_app(site.home, config.Settings(values=QUIET))
        with TestClient(app, base_url="http://testserver") as tc:
            yield tc


def test_a_store_without_rollups_says_so_and_shows_no_figures(
    unrolled: TestClient, site: Site
) -> None:
    login(unrolled, site.analyst)
    page = unrolled.get("/").text
    assert 'id="egress-data"' not in page and 'data-missing="1"' in page
    assert re.search('data-figure="last-hour">\u2013<', page)
    hosts = unrolled.get("/hosts").text
    assert 'data-missing="1"' in hosts and 'data-ip="' not in hosts
