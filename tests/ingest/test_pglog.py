"""PostgreSQL logs (``pglog``): hand-written logs in the formats PostgreSQL and pgaudit write
(pgaudit lines as in pgaudit's own regression output ``expected/pgaudit.out``: CSV fields,
statements quoted when they hold commas, quotes or newlines, ``<previously logged>``, a
trailing rows field with ``pgaudit.log_rows``), and a real PostgreSQL 15 server's log.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from hemostat.ingest import READERS, detect, ingest_file
from hemostat.ingest.pglog import Pglog
from hemostat.ingest.pgsql import reads
from hemostat.ingest.reader import sample
from hemostat.schema import Action, Sample
from hemostat.store import Store
from tests.postgres import cluster

DATA = Path(__file__).parents[1] / "data"

#: Debian's log_line_prefix '%m [%p] %q%u@%d ', pgaudit with log_relation and log_rows on
PGAUDIT = """\
2026-11-23 10:00:00.120 UTC [4242] LOG:  checkpoint starting: time
2026-11-23 10:00:01.250 UTC [5001] etl@dpi LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.patients,"SELECT p.nom, s.motif
\t  FROM patients p
\t  JOIN sejours s ON s.ipp = p.ipp;",<none>,120000
2026-11-23 10:00:01.250 UTC [5001] etl@dpi LOG:  AUDIT: OBJECT,1,1,READ,SELECT,TABLE,public.patients,<previously logged>,<previously logged>,120000
2026-11-23 10:00:01.250 UTC [5001] etl@dpi LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.sejours,<previously logged>,<previously logged>,120000
2026-11-23 10:00:02.000 UTC [5001] etl@dpi LOG:  AUDIT: SESSION,2,1,WRITE,INSERT,TABLE,public.journal,"INSERT INTO journal VALUES (1, 'a, b');",<none>,1
2026-11-23 10:00:03.500 UTC [5002] mallory@dpi LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.patients,COPY patients TO STDOUT;,<none>,250000
2026-11-23 10:00:04.000 UTC [5002] mallory@dpi LOG:  AUDIT: SESSION,2,1,READ,SELECT,,,SELECT 1;,<none>,1
2026-11-23 10:00:05.000 UTC [5002] mallory@dpi ERROR:  relation "nope" does not exist at character 15
"""

#: log_statement = 'all' and log_min_duration_statement, RDS-like prefix '%t:%r:%u@%d:[%p]:'
STATEMENTS = """\
2026-11-23 11:00:00 CET:10.1.20.7(51234):report@dpi:[6100]:LOG:  statement: SELECT count(*) FROM dpi.sejours WHERE extract(year FROM entree) = 2026
2026-11-23 11:00:01 CET:10.1.20.7(51234):report@dpi:[6100]:LOG:  duration: 2.345 ms
2026-11-23 11:00:02 CET:10.1.20.8(40000):app@dpi:[6101]:LOG:  execute <unnamed>: SELECT * FROM patients WHERE ipp = $1
2026-11-23 11:00:02 CET:10.1.20.8(40000):app@dpi:[6101]:DETAIL:  parameters: $1 = '42'
2026-11-23 11:00:03 CET:10.1.20.8(40000):app@dpi:[6101]:LOG:  duration: 1500.100 ms  statement: COPY (SELECT nom, nir
\tFROM patients) TO '/tmp/out.csv' WITH (FORMAT csv)
2026-11-23 11:00:04 CET:10.1.20.8(40000):app@dpi:[6101]:LOG:  statement: UPDATE patients SET nom = 'x' WHERE ipp = 1
2026-11-23 11:00:05 CET:[local]:postgres@dpi:[6102]:LOG:  statement: SELECT * FROM pg_catalog.pg_class
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(store: Store) -> list[tuple[object, ...]]:
    return store.con.execute(
        'SELECT ts, "user", process, action, object, "rows", client_ip, pid, source, host '
        "FROM access ORDER BY ts, object"
    ).fetchall()


def test_pgaudit_reads_one_row_per_relation(tmp_path: Path, store: Store) -> None:
    path = _write(tmp_path, "postgresql-15-main.log", PGAUDIT)
    assert detect(path).id == "pglog"
    report = ingest_file(store, path)
    t = datetime(2026, 11, 23, 10, 0, 1, 250000, tzinfo=UTC)
    t3 = datetime(2026, 11, 23, 10, 0, 3, 500000, tzinfo=UTC)
    assert _rows(store) == [
        # SESSION and OBJECT lines of public.patients: one row; the multi-line statement
        # (tab-continued lines) is one record
        (t, "etl", "postgres", "query", "postgresql://dpi/public.patients", 120000, None, 5001,
         "pglog", None),
        (t, "etl", "postgres", "query", "postgresql://dpi/public.sejours", 120000, None, 5001,
         "pglog", None),
        (t3, "mallory", "postgres", "export", "postgresql://dpi/public.patients", 250000, None,
         5002, "pglog", None),
    ]  # fmt: skip
    assert report.bad_count == 0
    assert report.skipped == {"pgaudit WRITE": 1, "postgresql LOG (not a statement)": 1,
                              "pgaudit READ (no new table)": 2,
                              "postgresql ERROR (not a statement)": 1}  # fmt: skip


def test_logged_statements_name_the_tables_they_read(tmp_path: Path, store: Store) -> None:
    report = ingest_file(store, _write(tmp_path, "pg.log", STATEMENTS))
    rows = _rows(store)
    # CET is UTC+1: 11:00 local is 10:00 UTC
    assert [(r[0].hour, r[1], r[3], r[4], r[6], r[7]) for r in rows] == [
        (10, "report", "query", "postgresql://dpi/dpi.sejours", "10.1.20.7", 6100),
        (10, "app", "query", "postgresql://dpi/public.patients", "10.1.20.8", 6101),
        (10, "app", "export", "postgresql://dpi/public.patients", "10.1.20.8", 6101),
    ]  # fmt: skip
    assert all(r[5] is None for r in rows)  # log_statement does not count rows
    assert report.skipped["postgresql statement (reads no table)"] == 2  # UPDATE, catalog


def test_pgaudit_wins_over_the_same_backends_statement(tmp_path: Path, store: Store) -> None:
    text = (
        "2026-11-23 10:00:00.000 UTC [7] u@dpi LOG:  statement: SELECT * FROM patients\n"
        "2026-11-23 10:00:00.001 UTC [7] u@dpi LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,"
        "public.patients,SELECT * FROM patients,<none>,3\n"
        "2026-11-23 10:00:00.002 UTC [8] v@dpi LOG:  statement: SELECT * FROM visits\n"
    )
    ingest_file(store, _write(tmp_path, "both.log", text))
    assert [(r[1], r[4], r[5]) for r in _rows(store)] == [
        ("u", "postgresql://dpi/public.patients", 3),
        ("v", "postgresql://dpi/public.visits", None),
    ]


def test_csvlog_with_a_multiline_statement(tmp_path: Path, store: Store) -> None:
    audit = (
        'AUDIT: SESSION,4,1,READ,SELECT,TABLE,public.patients,"SELECT *\n  FROM patients;",<none>'
    )
    text = (
        f'2026-11-23 09:30:00.500 UTC,"dr_x","dpi",3141,"10.1.30.4:50112",656f1a2b.c45,3,'
        f'"SELECT",2026-11-23 09:29:00 UTC,3/17,0,LOG,00000,"{audit.replace(chr(34), 2 * chr(34))}",'
        ',,,,,,,,"psql","client backend",,0\n'
        "2026-11-23 09:30:01.000 UTC,,,3000,,656f1a00.bb8,1,,2026-11-23 09:00:00 UTC,,0,LOG,"
        '00000,"checkpoint complete",,,,,,,,,"","checkpointer",,0\n'
    )
    path = _write(tmp_path, "postgresql.csv", text)
    assert detect(path).id == "pglog"
    report = ingest_file(store, path)
    assert [(r[1], r[2], r[4], r[6], r[7]) for r in _rows(store)] == [
        ("dr_x", "psql", "postgresql://dpi/public.patients", "10.1.30.4", 3141)
    ]
    assert report.bad_count == 0


def test_jsonlog(tmp_path: Path, store: Store) -> None:
    line = ('{"timestamp":"2026-11-23 09:30:00.500 UTC","user":"etl","dbname":"dpi","pid":77,'
            '"remote_host":"10.1.30.9","error_severity":"LOG","message":"statement: TABLE '
            'patients","application_name":"pg_dump","backend_type":"client backend"}\n')  # fmt: skip
    path = _write(tmp_path, "postgresql.json", line)
    assert detect(path).id == "pglog"
    ingest_file(store, path)
    assert [(r[1], r[2], r[4], r[6]) for r in _rows(store)] == [
        ("etl", "pg_dump", "postgresql://dpi/public.patients", "10.1.30.9")
    ]


def test_epoch_prefix_and_numeric_offsets(tmp_path: Path, store: Store) -> None:
    text = ("1763892000.250 [5] u@dpi LOG:  statement: SELECT * FROM a\n"
            "2026-11-23 12:30:00.000 +0230 [5] u@dpi LOG:  statement: SELECT * FROM b\n")  # fmt: skip
    ingest_file(store, _write(tmp_path, "epoch.log", text))
    assert [(r[0], r[4]) for r in _rows(store)] == [
        (datetime(2025, 11, 23, 10, 0, 0, 250000, tzinfo=UTC), "postgresql://dpi/public.a"),
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), "postgresql://dpi/public.b"),
    ]


def test_unknown_time_zone_is_a_bad_line(tmp_path: Path, store: Store) -> None:
    text = "2026-11-23 10:00:00 XYZT [1] u@d LOG:  statement: SELECT * FROM t\n"
    report = ingest_file(store, _write(tmp_path, "tz.log", text))
    assert report.bad_count == 1 and "log_timezone" in report.bad[0].message
    assert report.bad[0].line == 1


@pytest.mark.parametrize(
    ("sql", "action", "tables"),
    [
        ("SELECT * FROM patients p JOIN public.visits v ON v.ipp = p.ipp", Action.QUERY,
         ["public.patients", "public.visits"]),
        ("select substring(nom from 2 for 3), extract(year from d) from dpi.x, \"Y\".\"Z\" z",
         Action.QUERY, ["dpi.x", "Y.Z"]),
        ("WITH r AS (SELECT * FROM patients) SELECT count(*) FROM r", Action.QUERY,
         ["public.patients"]),
        ("COPY patients TO STDOUT", Action.EXPORT, ["public.patients"]),
        ("COPY (SELECT nom FROM patients WHERE x IN (SELECT y FROM z)) TO '/tmp/a'",
         Action.EXPORT, ["public.patients", "public.z"]),
        ("COPY patients (a, b) FROM STDIN", None, []),
        ("INSERT INTO staging SELECT * FROM patients", Action.COPY, ["public.patients"]),
        ("CREATE TABLE dump AS SELECT * FROM patients", Action.COPY, ["public.patients"]),
        ("SELECT * INTO backup FROM patients", Action.COPY, ["public.patients"]),
        ("CREATE VIEW v AS SELECT * FROM patients", None, []),
        ("DELETE FROM patients WHERE ipp = 1", None, []),
        ("SELECT * FROM generate_series(1, 3) g", Action.QUERY, []),
        ("SELECT * FROM pg_catalog.pg_class, information_schema.tables, pg_stat_activity",
         Action.QUERY, []),
        ("SELECT 'FROM nope' AS s, $$ JOIN nope2 $$ FROM t -- FROM nope3", Action.QUERY,
         ["public.t"]),
        ("TABLE patients", Action.QUERY, ["public.patients"]),
    ],
)  # fmt: skip
def test_tables_read_by_a_statement(sql: str, action: Action | None, tables: list[str]) -> None:
    assert reads(sql) == (action, tables)


def test_sniff_claims_no_other_format(shared: Path) -> None:
    """No sample of another format looks like a PostgreSQL log (and pglog is registered)."""
    assert READERS["pglog"] is Pglog
    reader = Pglog()
    files = [p for root in (DATA, shared) for p in root.rglob("*") if p.is_file()
             and p.stat().st_size and ".git" not in p.parts]  # fmt: skip
    assert len(files) > 50
    claimed = []
    for path in files:
        try:
            head = sample(path)
        except Exception:  # noqa: S112 (unreadable samples are no concern of this test)
            continue
        if reader.sniff(head):
            claimed.append(path)
    assert claimed == []


@pytest.mark.parametrize(
    "head",
    [
        # nfdump CSV without header (nfdump -q -o csv)
        "2022-05-11 18:10:00,2022-05-11 18:10:01,1.000,10.0.0.1,10.0.0.2,51000,443,TCP,"
        "......A.,0,0,3,180,0,0,0,0\n",
        # syslog-like text with a time, but no PostgreSQL severity
        "2026-11-23 10:00:00 host sshd[12]: Accepted publickey for root\n",
        # Zeek TSV, headerless
        "1700000000.1\tCabc\t10.0.0.1\t5100\t10.0.0.2\t443\ttcp\t-\t1\t2\t3\tSF\n",
        '{"ts": "2026-11-23T10:00:00Z", "action": "read", "object": "file:///x"}\n',
    ],
)
def test_sniff_refuses_look_alikes(head: str) -> None:
    assert not Pglog().sniff(Sample("x.log", head.encode(), gzip=False))


# -- a real PostgreSQL 15 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[str, Path]]:
    """A throwaway cluster logging every statement to ``log`` (stderr format)."""
    with cluster("hs-pglog-", "-c log_statement=all -c log_line_prefix='%m [%p] %q%u@%d ' "
                 "-c log_timezone=UTC") as server:  # fmt: skip
        yield server


@pytest.mark.slow
def test_a_real_postgresql_log(postgres: tuple[str, Path], tmp_path: Path, store: Store) -> None:
    url, log = postgres
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE patients (ipp int, nom text)")
        cur.execute("INSERT INTO patients SELECT g, 'n' || g FROM generate_series(1, 50) g")
        cur.execute("SELECT nom\n  FROM patients\n WHERE ipp < %s", (10,))
        with cur.copy("COPY patients TO STDOUT") as copy:
            assert sum(len(block) for block in copy) > 0
    snapshot = tmp_path / "postgresql.log"
    shutil.copy(log, snapshot)  # the server keeps writing its own
    assert detect(snapshot).id == "pglog"
    report = ingest_file(store, snapshot)
    got = [(r[1], r[2], r[3], r[4], r[7] is not None) for r in _rows(store)]
    # the INSERT ... SELECT reads generate_series(), a function, not a table
    assert got == [
        ("postgres", "postgres", "query", "postgresql://postgres/public.patients", True),
        ("postgres", "postgres", "export", "postgresql://postgres/public.patients", True),
    ]
    assert report.bad_count == 0
    assert report.skipped["postgresql statement (reads no table)"] >= 2  # CREATE, INSERT
