"""Dashboard speed: every page over one simulated day of a HOSTS-host hospital, warm.

Takes the store `bench/detect.py` leaves (simulated, ingested and detected; it runs that
preparation itself when WORK is empty, and a detection pass when the store holds no
incident), makes sure the egress rollups exist (a detection pass writes them; a store
detected before they existed is rolled up here; either time is printed), then serves the
collector's app in this process (Starlette's TestClient, logged in with an admin token made
for the run and revoked after) and times every page, warm (second of two requests): /, its
fragments, /hosts, /hosts/IP (the top sender), /destinations, /destinations/ADDR (the top
destination), /incidents/ID (the top incident), /containment. The baseline is `/healthz`
timed the same way (the cost of a request that reads nothing).

Goal (issue 9): every page in <= 1 s with one simulated day of the 8,000-host hospital.

    .venv/bin/python bench/web.py [HOSTS] [WORK]    # default 8000 /tmp/hemostat-bench-detect
"""

from __future__ import annotations

import re
import shutil
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from detect import prepare
from hemostat import config, inventory
from hemostat.detect.runner import examine, pending
from hemostat.incidents import listing
from hemostat.scope import backfill
from hemostat.server.app import create_app
from hemostat.server.auth import Role, Tokens
from hemostat.store import Store

with warnings.catch_warnings():  # Starlette would rather have httpx2 (not installed)
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GOAL = 1.0  # seconds per page


def ready(hosts: int, work: Path) -> tuple[Path, str | None]:
    """The home, detected and rolled up; the top incident's id (None: no incident)."""
    sim, home = prepare(hosts, work)
    site = inventory.load(sim / "inventory.yaml")
    if not (home / "inventory.yaml").exists():
        shutil.copy(sim / "inventory.yaml", home / "inventory.yaml")
    with Store(home) as store:
        if not listing(store):
            window = pending(store, None, None)
            assert window is not None, "the store is empty"
            done = examine(store, site, config.Settings(), window)
            rolled = store.con.execute(
                "SELECT seconds FROM egress_rolls ORDER BY rolled_at DESC LIMIT 1"
            ).fetchall()[0][0]
            print(f"detection pass (the store had no incident): {done.seconds:.1f} s, of which "
                  f"the egress rollup {rolled:.1f} s")  # fmt: skip
        filled = backfill.fill(store, site.internal)
        if filled.periods:
            print(f"rollups of stretches never rolled up (part of detection since): "
                  f"{filled.seconds:.1f} s")  # fmt: skip
        flows = store.con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        rolled = [store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                  for t in ("egress_hours", "egress_minutes")]  # fmt: skip
        found = listing(store)
    print(f"{hosts} hosts: {flows:,} flows; egress_hours {rolled[0]:,} rows, "
          f"egress_minutes {rolled[1]:,} rows")  # fmt: skip
    return home, found[0].incident.id if found else None


def login(client: TestClient, token: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, "no CSRF field on the login page"
    done = client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text


def warm(client: TestClient, path: str) -> tuple[float, int, int]:
    """Seconds of the second of two requests, its status and size."""
    for _ in range(2):
        started = time.perf_counter()
        answer = client.get(path, follow_redirects=False)
        seconds = time.perf_counter() - started
    return seconds, answer.status_code, len(answer.content)


def first(client: TestClient, path: str, pattern: str) -> str | None:
    found = re.search(pattern, client.get(path).text)
    return found.group(1) if found else None


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    work = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/hemostat-bench-detect")
    home, incident = ready(hosts, work)
    tokens = Tokens(home)
    token, text = tokens.create("bench-web", Role.ADMIN)
    settings = config.Settings(values={"server": {"detect_interval": 0}})
    try:
        with TestClient(create_app(home, settings), base_url="http://testserver") as client:
            login(client, text)
            top_host = first(client, "/hosts", r'<tr data-ip="([^"]+)"')
            top_dest = first(client, "/destinations", r'<tr data-ip="([^"]+)"')
            pages = ["/", "/fragments/overview/egress", "/fragments/overview/figures",
                     "/fragments/overview/incidents", "/fragments/agents",
                     "/fragments/containment", "/hosts", "/hosts?hours=all",
                     f"/hosts/{top_host}", "/destinations", f"/destinations/{top_dest}",
                     f"/incidents/{incident}", "/containment"]  # fmt: skip
            floor, _, _ = warm(client, "/healthz")
            print(f"baseline /healthz: {floor * 1000:.1f} ms")
            worst = 0.0
            for path in pages:
                seconds, status, size = warm(client, path)
                worst = max(worst, seconds) if status == 200 else worst
                print(f"  {path:<44} {status}  {seconds:6.3f} s  {size / 1000:7.1f} kB  "
                      f"ratio {seconds / floor:6.0f}x")  # fmt: skip
            print(f"slowest page answering 200: {worst:.3f} s (goal <= {GOAL:.0f} s)")
    finally:
        tokens.revoke(token.id)


if __name__ == "__main__":
    main()
