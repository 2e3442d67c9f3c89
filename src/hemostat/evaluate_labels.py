"""Scores detection against per-row labels of real Zeek logs (Stratosphere's labelled sets,
whose ``conn`` rows carry ``label`` and ``detailedlabel`` columns).

The logs are ingested and examined like any other input (detectors never see the labels);
the labels are read afterwards, straight from the files, to count, per label, how many rows
the incidents cover. A row is **flagged** when it belongs to a finding of an incident: its
endpoints are the finding's host and destination (either direction; any destination when the
finding names none) and it starts within the finding's time range.

Which addresses are "internal" comes from the logs themselves: Zeek's ``local_orig`` /
``local_resp`` columns (its ``Site::local_nets``), on top of the RFC 1918 ranges. That is
site configuration, not ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from hemostat import config
from hemostat.detect.runner import examine, pending
from hemostat.errors import ConfigError
from hemostat.incidents import listing
from hemostat.ingest import expand, ingest
from hemostat.inventory import DEFAULT_INTERNAL, Inventory
from hemostat.store import Store


@dataclass(frozen=True, slots=True)
class Label:
    label: str  # "Malicious" or "Malicious/CC" (label / detailed label)
    rows: int
    flagged: int

    @property
    def recall(self) -> float:
        return self.flagged / self.rows if self.rows else 0.0


@dataclass(frozen=True)
class LabelScore:
    paths: list[Path]
    rows: int
    flagged: int
    labels: list[Label]
    incidents: int
    internal: list[str]

    @property
    def malicious(self) -> Label:
        rows = sum(x.rows for x in self.labels if "/" not in x.label and _bad(x.label))
        hit = sum(x.flagged for x in self.labels if "/" not in x.label and _bad(x.label))
        return Label("Malicious", rows, hit)

    @property
    def precision(self) -> float | None:
        """Share of flagged rows that are labelled malicious (None when nothing is flagged)."""
        return self.malicious.flagged / self.flagged if self.flagged else None

    def as_json(self) -> dict[str, Any]:
        return {
            "paths": [str(p) for p in self.paths], "rows": self.rows, "flagged": self.flagged,
            "precision": self.precision, "recall": self.malicious.recall,
            "incidents": self.incidents, "internal": self.internal,
            "labels": [{"label": x.label, "rows": x.rows, "flagged": x.flagged,
                        "recall": round(x.recall, 4)} for x in self.labels],
        }  # fmt: skip


def _bad(label: str) -> bool:
    return label.lower().startswith("malicious")


def run(paths: list[Path], home: Path, settings: config.Settings | None = None) -> LabelScore:
    """Ingest labelled Zeek logs into a fresh store under ``home``, detect, score per label."""
    files = [p for p, _ in expand(paths)]
    labelled = [p for p in files if _fields(p) and "label" in _fields(p)]
    if not labelled:
        raise ConfigError(f"{', '.join(map(str, paths))}: no Zeek conn log with a label column")
    con = duckdb.connect()
    _load_labels(con, labelled)
    internal = [
        f"{ip}/32" if ":" not in ip else f"{ip}/128"
        for (ip,) in con.execute("SELECT DISTINCT ip FROM locals ORDER BY ip").fetchall()
    ]
    site = Inventory(site="labelled", internal=[*DEFAULT_INTERNAL, *internal])
    with Store(home) as store:
        ingest(store, files)
        window = pending(store, None, None)
        if window is not None:
            examine(store, site, settings or config.Settings(), window)
        found = [item.incident for item in listing(store)]
        flagged = _flagged(store, [f for i in found for f in i.findings])
    con.register("flagged_ids", flagged)
    rows = con.execute(
        "SELECT label, detailedlabel, count(*), count(f.conn_id) FROM labels l "
        "LEFT JOIN (SELECT DISTINCT conn_id FROM flagged_ids) f ON f.conn_id = l.uid "
        "GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    return LabelScore(paths, sum(r[2] for r in rows), sum(r[3] for r in rows),
                      _labels(rows), len(found), internal)  # fmt: skip


def _labels(rows: list[tuple[Any, ...]]) -> list[Label]:
    top: dict[str, list[int]] = {}
    out: list[Label] = []
    for label, detail, n, hit in rows:
        top.setdefault(label, [0, 0])
        top[label][0] += n
        top[label][1] += hit
        if detail and detail not in ("-", "(empty)"):
            out.append(Label(f"{label}/{detail}", n, hit))
    return sorted([Label(k, *v) for k, v in top.items()] + out, key=lambda x: x.label)


def _fields(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    return []
                if line.startswith("#fields\t"):
                    return line.rstrip("\n").split("\t")[1:]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return []


def _load_labels(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> None:
    con.execute("CREATE TABLE labels (uid VARCHAR, label VARCHAR, detailedlabel VARCHAR)")
    con.execute("CREATE TABLE locals (ip VARCHAR)")
    for path in paths:
        fields = _fields(path)
        names = ", ".join(f"'{f}'" for f in fields)
        scan = (
            f"read_csv(?, delim='\t', header=false, comment='#', names=[{names}], "
            "all_varchar=true, quote='', escape='')"
        )
        detail = '"detailedlabel"' if "detailedlabel" in fields else "NULL"
        con.execute(f'INSERT INTO labels SELECT "uid", "label", {detail} FROM {scan}', [str(path)])
        if {"local_orig", "local_resp"} <= set(fields):
            con.execute(
                f'INSERT INTO locals SELECT "id.orig_h" FROM {scan} WHERE "local_orig" = \'T\' '
                f'UNION SELECT "id.resp_h" FROM {scan} WHERE "local_resp" = \'T\'',
                [str(path), str(path)],
            )


def _flagged(store: Store, finding_ids: list[str]) -> Any:
    """Arrow table of the ``conn_id`` of every flow covered by one of the findings."""
    return store.con.sql(
        "SELECT DISTINCT fl.conn_id FROM findings f JOIN flows fl ON fl.ts >= f.ts - INTERVAL 1 "
        "SECOND AND fl.ts <= f.end_ts AND ((fl.src_ip = f.host AND (f.destination IS NULL OR "
        "fl.dst_ip = f.destination)) OR (fl.dst_ip = f.host AND fl.src_ip = f.destination)) "
        "WHERE list_contains(?, f.id)",
        params=[finding_ids],
    ).to_arrow_table()
