"""``/hosts``, ``/hosts/IP``, ``/destinations``, ``/destinations/ADDR``: who sends what to the
Internet, a host's egress per hour against its baseline, who talked to a destination.

Every figure comes from the egress rollups (``traffic``); an address the store has never
seen answers a 404 page.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hemostat.incidents import Listed, listing
from hemostat.inventory import Inventory
from hemostat.server.dashboard import traffic
from hemostat.server.dashboard.baseline import baseline
from hemostat.server.dashboard.session import Viewer, ViewerDep
from hemostat.server.dashboard.views import collector, lang, page, reader
from hemostat.store import Store

router = APIRouter(include_in_schema=False)
CHOICES = ("1", "6", "24", "168", "all")  # periods a list page offers, in hours
LIMIT = 500  # rows of a list page (the filter works on these)


def _hours(value: str) -> tuple[str, float | None]:
    chosen = value if value in CHOICES else "24"
    return chosen, None if chosen == "all" else float(chosen)


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _unknown(
    request: Request, viewer: Viewer, what: str, addr: str, elsewhere: str | None = None
) -> Response:
    """The 404 page; ``elsewhere`` links the other page of the address (an outside address
    asked for as a host, or the reverse)."""
    return page(request, viewer, "hosts_unknown.html.j2", status=404, what=what, addr=addr,
                elsewhere=elsewhere)  # fmt: skip


def _names(site: Inventory) -> dict[str, tuple[str, str | None]]:
    return {h.ip: (h.name, h.role) for h in site.hosts}


def _by_address(found: list[Listed], field: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in found:
        for addr in getattr(item.incident, field):
            out.setdefault(addr, []).append(item.incident.id)
    return out


# ---- lists ----------------------------------------------------------------------------------


@router.get("/hosts")
def hosts(request: Request, viewer: ViewerDep, hours: str = "24") -> Response:
    names = _names(collector(request).inventory())
    return _ranking(request, viewer, hours, "src_ip", "hosts", names=names)


@router.get("/destinations")
def destinations(request: Request, viewer: ViewerDep, hours: str = "24") -> Response:
    return _ranking(request, viewer, hours, "dst_ip", "destinations")


def _ranking(
    request: Request, viewer: Viewer, hours: str, column: str, field: str, **extra: Any
) -> Response:
    """The page ``<field>.html.j2``: the addresses of ``column`` ranked by egress over the
    chosen hours, with the incidents that name each (``Incident.<field>``)."""
    chosen, span = _hours(hours)
    with reader(request) as store:
        period = traffic.last_hours(store, span)
        rows, total = traffic.ranking(store, period, column, LIMIT) if period else ([], 0)
        flagged = _by_address(listing(store), field)
    return page(request, viewer, f"{field}.html.j2", period=period, rows=rows, total=total,
                chosen=chosen, choices=CHOICES, flagged=flagged, **extra)  # fmt: skip


# ---- one host ---------------------------------------------------------------------------------


def _seen_inside(store: Store, ip: str) -> bool:
    """Whether ``ip`` shows in the internal-pairs rollup (a host with no egress at all)."""
    sql = "SELECT 1 FROM pairs WHERE src_ip = ? OR dst_ip = ? LIMIT 1"
    return bool(store.con.execute(sql, [ip, ip]).fetchall())


def _series(period: traffic.Period | None, hourly: dict[datetime, tuple[int, int, int]]) -> Any:
    if period is None:
        return [], []
    hours = [period.start + i * traffic.HOUR for i in range(int(period.hours))]
    return hours, [hourly.get(h, (0, 0, 0))[0] for h in hours]


@router.get("/hosts/{ip}")
def host(request: Request, viewer: ViewerDep, ip: str) -> Response:
    addr, site = _address(ip), collector(request).inventory()
    if addr is None or not site.is_internal(addr):
        return _unknown(request, viewer, "host", ip, addr and f"/destinations/{addr}")
    entry = next((h for h in site.hosts if h.ip == addr), None)
    with reader(request) as store:
        hourly = traffic.hourly(store, "src_ip", addr)
        if entry is None and not hourly and not _seen_inside(store, addr):
            return _unknown(request, viewer, "host", addr)
        period = traffic.stored(store)
        hours, sent = _series(period, hourly)
        base = baseline(store, site, addr, hours, sent)
        partners = traffic.partners(store, "src_ip", addr)
        incidents = [i for i in listing(store) if addr in i.incident.hosts]
    words = lang(request)
    spec = {"kind": "bar", "unit": "bytes", "x": [int(h.timestamp() * 1000) for h in hours],
            "series": [{"name": words.t("ui.hosts.sent"), "values": sent},
                       {"name": words.t("ui.hosts.baseline." + base.basis), "kind": "line",
                        "dashed": True, "fill": False, "values": base.values,
                        "color": "#6b7c93"}],
            "markers": [{"at": int(i.incident.start.timestamp() * 1000), "label": i.incident.id}
                        for i in incidents]}  # fmt: skip
    networks = [n for n in site.internal if ipaddress.ip_address(addr) in
                ipaddress.ip_network(n, strict=False)]  # fmt: skip
    stores = [d for d in site.datastores if d.host == addr]
    return page(request, viewer, "hosts_detail.html.j2", addr=addr, entry=entry, networks=networks,
                datastores=stores, period=period, hourly=hourly, hours=hours, sent=sent,
                base=base, spec=spec, partners=partners, incidents=incidents)  # fmt: skip


# ---- one destination --------------------------------------------------------------------------


@router.get("/destinations/{addr}")
def destination(request: Request, viewer: ViewerDep, addr: str) -> Response:
    site = collector(request).inventory()
    ip = _address(addr)
    with reader(request) as store:
        naming = [i for i in listing(store) if addr in i.incident.destinations
                  or (ip is not None and ip in i.incident.destinations)]  # fmt: skip
        talkers = traffic.partners(store, "dst_ip", ip) if ip else []
        if not talkers and not naming:
            inside = f"/hosts/{ip}" if ip is not None and site.is_internal(ip) else None
            return _unknown(request, viewer, "destination", addr, inside)
        period = traffic.stored(store)
        hourly = traffic.hourly(store, "dst_ip", ip) if ip else {}
        hours, sent = _series(period, hourly)
        first = min((t.first for t in talkers), default=None)
        last = max((t.last for t in talkers), default=None)
        names = (traffic.names(store, ip, [t.ip for t in talkers[:100]], first, last)
                 if ip and first and last else [])  # fmt: skip
    words = lang(request)
    spec = {"kind": "bar", "unit": "bytes", "x": [int(h.timestamp() * 1000) for h in hours],
            "series": [{"name": words.t("ui.hosts.received_by"), "values": sent}],
            "markers": [{"at": int(i.incident.start.timestamp() * 1000), "label": i.incident.id}
                        for i in naming]}  # fmt: skip
    return page(request, viewer, "destination.html.j2", addr=ip or addr, talkers=talkers,
                period=period, spec=spec, names=names, incidents=naming, first=first,
                last=last, hosts=_names(site), internal=ip is not None and site.is_internal(ip),
                total=sum(t.bytes_out for t in talkers))  # fmt: skip
