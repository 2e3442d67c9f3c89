"""The foundation readers take the simulator's output without a single bad line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hemostat.ingest import ingest
from hemostat.schema import Table
from hemostat.simulate import generate
from hemostat.store import Store


@pytest.mark.slow
def test_ingest_reads_every_row(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    summary = generate(out, hosts=40, scenarios=["dns_tunnel", "provider_bulk"], seed=3)
    with Store(tmp_path / "home") as store:
        store.con.execute("SET enable_progress_bar = false")
        reports = ingest(store, [out])
        assert [r.path.name for r in reports if r.bad_count or r.error] == []
        read = {t: sum(r.rows.get(t, 0) for r in reports) for t in Table}
        assert read == {
            Table.FLOWS: summary.flows,
            Table.DNS: summary.dns,
            Table.ACCESS: summary.access,
        }
        counts = store.counts()
        assert (counts.flows, counts.dns, counts.access) == (
            summary.flows,
            summary.dns,
            summary.access,
        )
