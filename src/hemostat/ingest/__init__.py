"""Ingest: every input format in one table, content-based detection, and the runner that
appends each file to the store in one transaction (all of it, or none of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from hemostat.errors import IngestError
from hemostat.ingest import (
    access_jsonl,
    auditd,
    cicflowmeter,
    netflow,
    nfdump,
    pcap,
    pglog,
    suricata,
    zeek,
)
from hemostat.ingest.reader import Log, Reader, read_error, sample
from hemostat.schema import Table
from hemostat.store import Store, fingerprint

#: every input format, one line each; detection tries them in this order
READERS: dict[str, type[Reader]] = {
    r.id: r
    for r in (
        zeek.ZeekTsv,
        zeek.ZeekJson,
        suricata.SuricataEve,
        cicflowmeter.CicFlowMeter,
        access_jsonl.AccessJsonl,
        auditd.Auditd,
        pglog.Pglog,
        nfdump.NfdumpCsv,
        nfdump.Nfcapd,
        netflow.NetflowCapture,
        netflow.NetflowPcap,  # before pcap.Pcap: claims only pcaps of export traffic
        pcap.Pcap,
    )
}


@dataclass
class Report:
    """The outcome of one input file."""

    path: Path
    format: str | None = None
    rows: dict[Table, int] = field(default_factory=dict)
    bad_count: int = 0
    bad: list[IngestError] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    duplicate: bool = False  # same content already ingested: nothing added
    error: IngestError | None = None  # the file was refused; nothing from it is stored

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def detect(path: Path) -> Reader:
    """The reader for ``path``, chosen from its content (not its name alone)."""
    head = sample(path)
    for cls in READERS.values():
        reader = cls()
        if reader.sniff(head):
            return reader
    raise IngestError(
        path, None, f"not a recognised format (known: {', '.join(READERS)}); use --format"
    )


def expand(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """Files to ingest, with whether each was named explicitly (vs. found in a directory)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in child.parts):
                    yield child, False
        elif path.exists():
            yield path, True
        else:
            raise IngestError(path, None, "no such file or directory")


def ingest_file(store: Store, path: Path, fmt: str | None = None, strict: bool = False) -> Report:
    """Append one file to the store; raises ``IngestError`` when the file is refused."""
    reader = _reader(fmt) if fmt else detect(path)
    report = Report(path, reader.id)
    fp = fingerprint(path)
    if store.already_ingested(fp, reader.id) is not None:
        report.duplicate = True
        return report
    log = Log(path)
    try:
        with store.transaction():
            ingest_id = store.begin_ingest(path, fp, reader.id)
            for table, data in reader.read(path, store.con, log):
                added = store.append(table, data, ingest_id)
                report.rows[table] = report.rows.get(table, 0) + added
            if strict and log.bad_count:
                first = log.bad[0]
                raise IngestError(first.path, first.line, f"{first.message} (--strict: file "
                                  f"refused, {log.bad_count} bad line(s))")  # fmt: skip
            store.finish_ingest(ingest_id, report.rows, log.bad_count, sum(log.skipped.values()))
    except duckdb.Error as exc:  # rolled back: nothing of the file is stored
        raise read_error(path, exc) from exc
    report.bad_count, report.bad, report.skipped = log.bad_count, log.bad, dict(log.skipped)
    return report


def ingest(
    store: Store,
    paths: Iterable[Path],
    fmt: str | None = None,
    strict: bool = False,
    on_file: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Ingest files and directories; one report per file, refused files included."""
    reports = []
    for path, explicit in expand(paths):
        try:
            report = ingest_file(store, path, fmt, strict)
        except IngestError as exc:
            if not explicit and fmt is None and exc.line is None and "not a recognised" in str(exc):
                report = Report(path, skipped={"unrecognised format": 1})
            else:
                report = Report(path, fmt, error=exc)
        reports.append(report)
        if on_file:
            on_file(report)
    return reports


def _reader(fmt: str) -> Reader:
    try:
        return READERS[fmt]()
    except KeyError:
        raise IngestError(
            Path(fmt), None, f"unknown format {fmt!r}; known: {', '.join(READERS)}"
        ) from None
