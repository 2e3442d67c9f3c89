"""The main job, end to end: simulate → ingest → detect → (scope → report, as those land).

Stages not built yet are named as such; no result is faked. ``write_sample`` is a tiny,
fast alternative input (one Zeek conn.log and an inventory) for quick checks.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from hemostat import config, inventory
from hemostat.detect.runner import Pass, examine, pending
from hemostat.ingest import Report, ingest
from hemostat.report import Bundle, language, render, write_bundle
from hemostat.schema import Incident
from hemostat.scope import Scope, scope
from hemostat.store import Counts, Store

#: stages of the main job that later work will fill in, in pipeline order
NOT_BUILT: tuple[str, ...] = ()  # every stage of the main job is built

_ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n"
    "#fields\t{fields}\n#types\t{types}\n"
)
_CONN = {
    "ts": "time", "uid": "string", "id.orig_h": "addr", "id.orig_p": "port",
    "id.resp_h": "addr", "id.resp_p": "port", "proto": "enum", "service": "string",
    "duration": "interval", "orig_bytes": "count", "resp_bytes": "count",
    "conn_state": "string", "orig_pkts": "count", "resp_pkts": "count",
}  # fmt: skip
# a day of a small site: workstations busy in office hours, servers all day
_CONN_SQL = """
SELECT printf('%.6f', 1763856000 + (i * 86400.0 / {n}) ) AS ts, 'C' || md5(i::VARCHAR)[:17],
       '10.1.' || (i % 3 + 4) || '.' || (i % {hosts} % 250 + 1), 49152 + i % 16000,
       CASE WHEN i % 4 = 0 THEN '203.0.113.' || (i % 50 + 1) ELSE '10.1.2.' || (i % 20 + 10) END,
       [443, 445, 5432, 53][i % 4 + 1], CASE WHEN i % 4 = 3 THEN 'udp' ELSE 'tcp' END,
       ['ssl', 'smb', '-', 'dns'][i % 4 + 1], printf('%.3f', (i % 600) / 7.0),
       (i * 37) % 20000 + 200, (i * 91) % 400000 + 500, 'SF', i % 40 + 2, i % 90 + 2
FROM range({n}) t(i)
WHERE hour(to_timestamp(1763856000 + (i * 86400.0 / {n}))) BETWEEN 7 AND 19 OR i % 5 = 0
"""

_INVENTORY = """site: CHU Demo
timezone: Europe/Paris
datastores:
  - {name: dpi, host: 10.1.2.10, ports: [5432], objects: ["postgresql://dpi/"],
     category: patient, records: 1200000, subjects: 850000, bytes: 48000000000}
"""


@dataclass(frozen=True)
class Result:
    out: Path
    site: str
    counts: Counts
    ingested: list[Report]
    incidents: list[Incident] = field(default_factory=list)
    detection: Pass | None = None
    scope: Scope | None = None
    reports: tuple[Path, ...] = ()
    bundle: Bundle | None = None
    not_built: tuple[str, ...] = field(default=NOT_BUILT)

    @property
    def bad_lines(self) -> int:
        return sum(r.bad_count for r in self.ingested)


def write_sample(out: Path, hosts: int = 300) -> None:
    """A day of flows of a ``hosts``-host site as a Zeek conn.log, plus an inventory."""
    out.mkdir(parents=True, exist_ok=True)
    header = _ZEEK_HEADER.format(
        path="conn", fields="\t".join(_CONN), types="\t".join(_CONN.values())
    )
    body = out / "conn.body"
    con = duckdb.connect()
    con.execute(
        f"COPY ({_CONN_SQL.format(n=hosts * 100, hosts=hosts)}) TO '{body}' "
        "(DELIMITER '\t', HEADER false, QUOTE '')"
    )
    (out / "conn.log").write_text(header + body.read_text() + "#close\t2025-11-24-00-00-00\n")
    body.unlink()
    (out / "inventory.yaml").write_text(_INVENTORY)


#: the scenario the demo plays: the case of DESIGN §1 (a supplier's access, a bulk dump)
SCENARIOS = ("provider_bulk",)


def run(
    home: Path,
    out: Path,
    hosts: int = 300,
    on_stage: Callable[[str], None] | None = None,
    seed: int = 7,
) -> Result:
    """Simulate a day of a ``hosts``-host hospital under attack into ``out``, then ingest it."""
    from hemostat.simulate import generate

    say = on_stage or (lambda _: None)
    if out.exists():
        shutil.rmtree(out)
    say(f"simulating one day of a {hosts}-host hospital with scenario {', '.join(SCENARIOS)}")
    generate(out, hosts=hosts, days=1, scenarios=SCENARIOS, seed=seed)
    site = inventory.load(out / "inventory.yaml")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "inventory.yaml", home / "inventory.yaml")
    say("ingesting the sensor logs and access events (ground truth stays in truth.json)")
    with Store(home) as store:
        reports = ingest(store, [out])
        counts = store.counts()
        say("detecting: every detector over the day, findings grouped into incidents")
        window = pending(store, None, None)
        settings = config.load(home)
        done = examine(store, site, settings, window) if window else None
        found = done.incidents if done else []
        if not found:
            return Result(out, site.site, counts, reports, found, done)
        top = max(found, key=lambda i: (i.score, i.bytes_out))
        say(f"scoping {top.id}: what left, how much, whose")
        scoped = scope(store, site, top.id, settings)
        say("writing the notification report (HTML, PDF) and the evidence bundle")
        folder = home / "reports"
        folder.mkdir(exist_ok=True)
        bundle = write_bundle(store, scoped, folder / f"{top.id}-evidence.zip")
    written = tuple(
        render(scoped, folder / f"{top.id}.{suffix}", language(site.timezone), bundle=bundle)
        for suffix in ("html", "pdf")
    )  # fmt: skip
    return Result(out, site.site, counts, reports, found, done, scoped, written, bundle)
