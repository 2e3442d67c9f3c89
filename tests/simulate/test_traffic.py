"""The simulated hospital looks like a hospital: rhythms, external share, backup window,
look-alikes, supplier envelope, a valid inventory."""

from __future__ import annotations

import ipaddress
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from hemostat import inventory
from hemostat.simulate import Summary
from hemostat.simulate.lookalikes import BACKUP_PORT

from .conftest import truth

PARIS = ZoneInfo("Europe/Paris")
LOCAL = "hour(timezone('Europe/Paris', to_timestamp(ts)))"


def _by_local_hour(logs: duckdb.DuckDBPyConnection, where: str) -> dict[int, int]:
    rows = logs.execute(f"SELECT {LOCAL} AS h, count(*) FROM conn WHERE {where} GROUP BY h")
    return dict(rows.fetchall())


def test_workstations_are_busy_by_day_and_quiet_at_night(logs: duckdb.DuckDBPyConnection) -> None:
    hours = _by_local_hour(logs, "\"id.orig_h\" LIKE '10.20.%'")
    day = sum(hours.get(h, 0) for h in range(9, 17)) / 8
    night = sum(hours.get(h, 0) for h in range(1, 5)) / 4
    assert day > 8 * night > 0


def test_servers_never_sleep(logs: duckdb.DuckDBPyConnection) -> None:
    hours = _by_local_hour(logs, "\"id.orig_h\" LIKE '10.1.%'")
    assert len(hours) == 24 and min(hours.values()) > 0.1 * max(hours.values())


def test_external_share_is_plausible(logs: duckdb.DuckDBPyConnection) -> None:
    flows, out_bytes = logs.execute(
        "SELECT avg((local_resp = 'F')::INT), "
        "sum(orig_bytes) FILTER (local_orig = 'T' AND local_resp = 'F') / sum(orig_bytes) "
        "FROM conn"
    ).fetchone() or (0, 0)
    assert 0.15 < flows < 0.6
    assert 0.01 < out_bytes < 0.9


def test_backups_run_at_night(logs: duckdb.DuckDBPyConnection) -> None:
    internal = _by_local_hour(logs, f'"id.resp_p" = {BACKUP_PORT} AND "id.resp_h" = \'10.1.9.5\'')
    offsite = _by_local_hour(
        logs, "\"id.orig_h\" = '10.1.9.5' AND \"id.resp_h\" LIKE '198.51.100.%'"
    )
    assert internal and set(internal) <= set(range(0, 6))
    assert offsite and set(offsite) <= set(range(2, 6))


def test_lookalikes_are_in_truth_and_logs(
    sim: tuple[Path, Summary], logs: duckdb.DuckDBPyConnection
) -> None:
    kinds = {e["kind"] for e in truth(sim[0])["benign"]}
    assert {
        "backup",
        "imaging",
        "polling",
        "cloud_sync",
        "update",
        "dns",
        "third_party_access",
    } <= kinds
    booking = next(e for e in truth(sim[0])["benign"] if e["id"] == "booking-api-poll")
    polls = logs.execute(
        "SELECT count(*), stddev(gap) FROM (SELECT ts - lag(ts) OVER (ORDER BY ts) AS gap "
        f"FROM conn WHERE \"id.orig_h\" = '{booking['hosts'][0]}' "
        f"AND \"id.resp_h\" = '{booking['destinations'][0]}') WHERE gap IS NOT NULL"
    ).fetchone() or (0, 0)
    assert polls[0] > 1000 and polls[1] < 2  # every 60 s, like a beacon
    cdn = logs.execute("SELECT count(*) FROM dns WHERE query LIKE '%.cloudfront.net'").fetchone()
    assert cdn and cdn[0] > 0


def test_inventory_loads_and_describes_the_site(sim: tuple[Path, Summary]) -> None:
    inv = inventory.load(sim[0] / "inventory.yaml")
    assert inv.timezone == "Europe/Paris"
    assert len(inv.hosts) == 100
    assert {d.category for d in inv.datastores} >= {"patient", "staff", "research", "finance"}
    assert all(d.records and d.subjects and d.bytes for d in inv.datastores)
    assert {t.name for t in inv.expected_transfers} >= {"offsite-backup", "pacs-partner"}
    assert inv.providers and inv.continuity and inv.management


def test_provider_normal_stays_inside_its_envelope(
    sim: tuple[Path, Summary], logs: duckdb.DuckDBPyConnection
) -> None:
    inv = inventory.load(sim[0] / "inventory.yaml")
    providers = {p.name: p for p in inv.providers}
    vpn = next(h.ip for h in inv.hosts if h.role == "vpn")
    sessions = [e for e in truth(sim[0])["benign"] if e["scenario"] == "provider_normal"]
    assert len(sessions) >= 2
    for e in sessions:
        p = providers[e["provider"]]
        assert e["account"] in p.accounts
        assert all(_inside(ip, p.sources) for ip in e["hosts"])
        assert all(ip == vpn or _inside(ip, p.hosts) for ip in e["destinations"])
        first, last = (time.fromisoformat(t) for t in str(p.hours).split("-"))  # "08:00-19:00"
        start, end = (datetime.fromisoformat(e[k]).astimezone(PARIS) for k in ("start", "end"))
        assert start.weekday() < 5 and first <= start.time() and end.time() <= last
    logins = logs.execute("SELECT DISTINCT \"user\" FROM access WHERE action = 'login'").fetchall()
    accounts = {a for p in inv.providers for a in p.accounts}
    assert {u for (u,) in logins} <= accounts


def _inside(ip: str, networks: list[str]) -> bool:
    return any(ipaddress.ip_address(ip) in ipaddress.ip_network(n) for n in networks)
