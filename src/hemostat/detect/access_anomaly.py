"""Data-access anomalies, on the ``access`` table (database queries, file reads, exports):

* **volume** — an account reads, in one hour, far more rows (or bytes) of one table or share
  than it usually does (median and MAD of its hours), or one read returns far more rows than
  its largest usual ones (a partial dump through an application account);
* **bulk export** — an export (``action`` export, ``pg_dump``-like process, ``COPY … TO``)
  by an account that never exported that store before, judged by the store's history; the
  nightly backup's exports recur every night and stay low;
* **whole share** — one account reads, in one burst, most of the files known under a share
  or most of the bytes of an inventory data store (a staff share read end to end).

Off-hours (local time) and a first access of the account to that share or table weigh in.
``host`` is the client (``client_ip``, else the reporting host); ``hosts`` adds the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import ibis
import ibis.expr.types as ir

from hemostat.detect.context import Context, stamp
from hemostat.detect.words import PLAIN, Words, say
from hemostat.schema import Kind

#: what a dump looks like in the process name of an export
DUMP_PROCESSES = ("pg_dump", "pg_dumpall", "mysqldump", "mongodump", "expdp", "exp", "bcp")
#: object (or statement) text of a server-side copy out
COPY_OUT = r"(?i)\bCOPY\b.*\bTO\b"


@dataclass(frozen=True)
class AccessAnomaly:
    id: ClassVar[str] = "access_anomaly"
    kind: ClassVar[Kind] = Kind.DATA_ACCESS
    attack: ClassVar[tuple[str, ...]] = ("T1213", "T1005", "T1039", "T1530")

    min_hours: int = field(
        default=6, metadata={"help": "Hours of an account's activity needed for a baseline."}
    )
    z_min: float = field(
        default=10.0,
        metadata={"help": "Robust z-score (MAD) an hour's volume must reach to count."},
    )
    ratio_min: float = field(
        default=5.0, metadata={"help": "An hour's volume must also be this many x its median."}
    )
    min_rows: int = field(
        default=1_000, metadata={"help": "Fewest rows an hour (with rows) must read to count."}
    )
    min_bytes: int = field(
        default=2_000_000_000,
        metadata={"help": "Fewest bytes an hour without row counts (file reads) must read."},
    )
    min_export_bytes: int = field(
        default=10_000_000,
        metadata={"help": "An export counts from min_rows rows or this many bytes."},
    )
    read_factor: float = field(
        default=20.0,
        metadata={"help": "One read this many x the account's largest usual read (99th "
                          "percentile of its reads of that table) is a dump."},
    )  # fmt: skip
    min_files: int = field(
        default=20,
        metadata={"help": "Fewest files a burst must read for a whole-share finding (a data "
                          "store whose size the inventory gives needs only min_store_files)."},
    )  # fmt: skip
    min_store_files: int = field(
        default=3,
        metadata={"help": "Fewest files of a data store of known size a burst must read."},
    )
    coverage: float = field(
        default=0.8,
        metadata={"help": "Share of a data store's bytes (inventory ``bytes``), else of the "
                          "files known under the share, a burst must read: a whole share."},
    )  # fmt: skip
    burst_gap_minutes: float = field(
        default=30.0, metadata={"help": "A pause longer than this ends a burst of reads."}
    )
    burst_max_minutes: float = field(
        default=120.0,
        metadata={"help": "Only the first minutes of a burst are judged for a whole-share read."},
    )
    office_hours: tuple[int, int] = field(
        default=(7, 20), metadata={"help": "Local working hours [start, end) on weekdays."}
    )
    min_score: float = field(
        default=30.0, metadata={"help": "Findings scoring below this are not reported."}
    )

    # ---- the expression -------------------------------------------------------------------

    def run(self, ctx: Context) -> ir.Table:
        span = timedelta(minutes=self.burst_gap_minutes + self.burst_max_minutes)
        events = self._events(ctx, span)
        found = [self._volume(events), self._exports(events), self._shares(ctx, events)]
        out = found[0].union(found[1]).union(found[2])
        return out.filter(out.score >= self.min_score)

    def _events(self, ctx: Context, span: timedelta) -> ir.Table:
        """Reads, queries, exports and copies of history and window, with their client,
        table or share (``part``), data store and local time."""
        start = ctx.window.start - span
        a = ctx.access
        a = a.filter(
            (a.ts >= start - ctx.window.history) & (a.ts < ctx.window.end) & (a.action != "login")
        )
        stores = sorted(
            ((p, d) for d in ctx.inventory.datastores for p in d.objects), key=lambda x: -len(x[0])
        )
        store = ibis.cases(
            *((a.object.startswith(p), d.name) for p, d in stores), else_=ibis.null("string")
        ) if stores else ibis.null("string")  # fmt: skip
        size = ibis.cases(
            *((a.object.startswith(p), d.bytes or 0) for p, d in stores), else_=0
        ) if stores else ibis.literal(0)  # fmt: skip
        local = ctx.local(a.ts)
        first, last = self.office_hours
        off = (local.hour() < first) | (local.hour() >= last) | (local.day_of_week.index() >= 5)
        dump = (
            (a.action == "export") | a.process.isin(DUMP_PROCESSES)
            | a.object.re_search(COPY_OUT)
        )  # fmt: skip
        return a.mutate(
            client=a.client_ip.fill_null(a.host),
            part=a.object.re_extract(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/]*/[^/]*)", 1),
            store=store, store_bytes=size.cast("int64"), off=off, dump=dump.fill_null(False),
            cur=a.ts >= start, day=local.truncate("D"),
            remote=a.client_ip.notnull() & (a.client_ip != a.host),
        )  # fmt: skip

    # volume ------------------------------------------------------------------------------

    def _volume(self, e: ir.Table) -> ir.Table:
        e = e.filter(~e.dump & (e.action != "copy"))
        e = e.mutate(amount=e.rows.fill_null(e.bytes).fill_null(0), counted=e.rows.notnull())
        sizes = e.group_by("user", "part").aggregate(
            largest=e.amount.cast("float64").quantile(0.99), first=e.ts.min()
        )
        h = e.group_by("user", "client", "part", hour=_hour(e.ts)).aggregate(
            amount=e.amount.sum(), rows=e.rows.sum(), bytes=e.bytes.sum(), events=e.count(),
            files=e.object.nunique(), biggest=e.amount.max(), counted=e.counted.any(),
            ts=e.ts.min(), end_ts=e.ts.max(), cur=e.cur.any(), off=e.off.all(),
            server=e.host.max(), store=e.store.max(), objects=e.object.collect(distinct=True),
        )  # fmt: skip
        med = h.group_by("user", "part").aggregate(
            median=h.amount.cast("float64").median(), hours=h.count()
        )
        h = h.join(med, ["user", "part"])
        dev = h.group_by("user", "part").aggregate(
            mad=(h.amount.cast("float64") - h.median).abs().median()
        )
        h = h.join(dev, ["user", "part"]).join(sizes, ["user", "part"])
        h = h.filter(h.cur & (h.hours >= self.min_hours))
        spread = ibis.greatest(1.4826 * h.mad, 0.1 * h.median, 1.0)
        z = (h.amount - h.median) / spread
        ratio = h.amount / ibis.greatest(h.median, 1.0)
        enough = ibis.ifelse(h.counted, h.amount >= self.min_rows, h.amount >= self.min_bytes)
        read_ratio = h.biggest / ibis.greatest(h.largest, 1.0)
        dumpish = enough & (read_ratio >= self.read_factor)
        surge = enough & (z >= self.z_min) & (ratio >= self.ratio_min)
        h = h.mutate(z=z, ratio=ratio, read_ratio=read_ratio, surge=surge, dumpish=dumpish)
        h = h.filter(h.surge | h.dumpish)
        score = (
            40.0
            + 15.0 * _part(h.ratio / self.ratio_min, 2.0)
            + ibis.ifelse(h.dumpish, 20.0 * _part(h.read_ratio / self.read_factor * 10, 2.0), 0)
            + ibis.ifelse(h.off, 10.0, 0.0)
        )
        reason = ibis.ifelse(h.dumpish, "oversized read", "volume")
        return self._row(
            h, score, reason, usual=h.median, ratio=ibis.greatest(h.ratio, h.read_ratio),
            largest=h.biggest, usual_largest=h.largest, new=h.first >= h.ts,
            known=ibis.null("int64"), fraction=ibis.null("float64"),
            prior=ibis.null("int64"), remote=ibis.literal(False),
        )  # fmt: skip

    # bulk exports ------------------------------------------------------------------------

    def _exports(self, e: ir.Table) -> ir.Table:
        key = e.store.fill_null(e.part)
        d = e.filter(e.dump).mutate(what=key)
        days = d.group_by("user", "what").aggregate(first_day=d.day.min())
        known = e.mutate(what=key).group_by("what").aggregate(since=e.ts.min())
        h = d.group_by("user", "client", "what", hour=_hour(d.ts)).aggregate(
            rows=d.rows.sum(), bytes=d.bytes.sum(), events=d.count(), files=d.object.nunique(),
            ts=d.ts.min(), end_ts=d.ts.max(), cur=d.cur.any(), off=d.off.all(),
            server=d.host.max(), store=d.store.max(), objects=d.object.collect(distinct=True),
            remote=d.remote.any(), day=d.day.min(), part=d.part.min(),
        )  # fmt: skip
        big = (h.rows.fill_null(0) >= self.min_rows) | (
            h.bytes.fill_null(0) >= self.min_export_bytes
        )
        h = h.filter(h.cur & big).join(days, ["user", "what"]).join(known, "what")
        recurring = h.first_day < h.day
        judged = h.since < h.ts - ibis.interval(hours=20)  # the store has a history to judge by
        score = ibis.ifelse(
            recurring,
            20.0,
            35.0
            + ibis.ifelse(judged, 25.0, 0.0)
            + ibis.ifelse(h.remote, 15.0, 0.0)
            + ibis.ifelse(h.off, 10.0, 0.0),
        )
        prior = ibis.ifelse(recurring, 1, 0).cast("int64")
        return self._row(
            h.mutate(part=h.what), score, ibis.literal("bulk export"),
            usual=ibis.null("float64"), ratio=ibis.null("float64"), largest=h.rows,
            usual_largest=ibis.null("float64"), new=~recurring & judged,
            known=ibis.null("int64"), fraction=ibis.null("float64"), prior=prior,
            remote=h.remote,
        )  # fmt: skip

    # whole shares ------------------------------------------------------------------------

    def _shares(self, ctx: Context, e: ir.Table) -> ir.Table:
        e = e.filter(e.action.isin(("read", "copy", "query")))
        known = e.group_by("part").aggregate(known=e.object.nunique())
        first = e.group_by("user", "part").aggregate(first=e.ts.min())
        c = e.filter(e.cur)
        keys = ["user", "client", "part"]
        gap = ibis.interval(seconds=int(self.burst_gap_minutes * 60))
        prev = c.ts.lag().over(group_by=keys, order_by="ts")
        c = c.mutate(opens=(prev.isnull() | (c.ts > prev + gap)).cast("int64"))
        upto = ibis.window(group_by=keys, order_by="ts", rows=(None, 0))
        c = c.mutate(burst=c.opens.sum().over(upto))
        # a burst is judged on its first burst_max_minutes (a reader busy all day is not a
        # whole-share read), and on the distinct files it read (not on re-reads)
        c = c.mutate(began=c.ts.min().over(group_by=[*keys, "burst"]))  # no window in a filter
        c = c.filter(c.ts <= c.began + ibis.interval(seconds=int(self.burst_max_minutes * 60)))
        f = c.group_by(*keys, "burst", "object").aggregate(
            rows=c.rows.max(), bytes=c.bytes.max(), events=c.count(), ts=c.ts.min(),
            end_ts=c.ts.max(), off=c.off.all(), server=c.host.max(), store=c.store.max(),
            store_bytes=c.store_bytes.max(),
        )  # fmt: skip
        b = f.group_by(*keys, "burst").aggregate(
            rows=f.rows.sum(), bytes=f.bytes.sum(), events=f.events.sum(), files=f.count(),
            ts=f.ts.min(), end_ts=f.end_ts.max(), off=f.off.all(), server=f.server.max(),
            store=f.store.max(), store_bytes=f.store_bytes.max(), objects=f.object.collect(),
        )  # fmt: skip
        b = b.join(known, "part").join(first, ["user", "part"])
        fraction = ibis.ifelse(
            b.store_bytes > 0, b.bytes.fill_null(0) / b.store_bytes.cast("float64"), 0.0
        )
        share = b.files / b.known.cast("float64")
        in_store = b.store.notnull()
        # a store of known size: its bytes tell; elsewhere, the files seen under the share
        wide = ibis.ifelse(
            b.store_bytes > 0,
            (b.files >= self.min_store_files) & (fraction >= self.coverage),
            (b.files >= self.min_files) & (share >= self.coverage),
        )
        b = b.mutate(fraction=fraction, share=share).filter(wide)
        new = b.first >= b.ts
        score = (
            30.0
            + ibis.ifelse(in_store, 25.0, 0.0)
            + ibis.ifelse(new, 15.0, 0.0)
            + ibis.ifelse(b.off, 10.0, 0.0)
        )
        return self._row(
            b, score, ibis.literal("whole share"), usual=ibis.null("float64"),
            ratio=ibis.greatest(b.share, b.fraction), largest=ibis.null("int64"),
            usual_largest=ibis.null("float64"), new=new, known=b.known.cast("int64"),
            fraction=b.fraction, prior=ibis.null("int64"), remote=ibis.literal(False),
        )  # fmt: skip

    @staticmethod
    def _row(t: ir.Table, score: Any, reason: Any, **x: Any) -> ir.Table:
        """One finding row in the common shape of the three rules."""
        return t.select(
            host=t.client, ts=t.ts, end_ts=t.end_ts, score=ibis.least(score, 100.0),
            bytes_out=t.bytes.fill_null(0).cast("int64"),
            hosts=ibis.array([t.client, t.server]),
            key=reason + "|" + t.user.fill_null("") + "|" + t.part.fill_null("")
            + "|" + stamp(t.ts.truncate("h")),
            reason=reason, user=t.user, server=t.server, part=t.part, store=t.store,
            rows=t.rows.cast("int64"), bytes=t.bytes.cast("int64"),
            events=t.events.cast("int64"), files=t.files.cast("int64"),
            usual=x["usual"].cast("float64"), ratio=x["ratio"].cast("float64"),
            largest=x["largest"].cast("int64"), usual_largest=x["usual_largest"].cast("float64"),
            new_to_it=x["new"], known_files=x["known"], store_fraction=x["fraction"],
            prior_days=x["prior"], remote=x["remote"], off_hours=t.off,
            objects=t.objects,
        )  # fmt: skip

    # ---- the sentence ---------------------------------------------------------------------

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str:
        said = {
            "who": say(words, "access_anomaly.who", user=row.get("user"), host=row["host"]),
            "what": row.get("part") or row.get("store"),
            "when": say(words, "access_anomaly.off_hours") if row.get("off_hours") else "",
        }
        if row.get("reason") == "bulk export":
            return _export(row, words, said)
        if row.get("reason") == "whole share":
            return _share(row, words, said)
        return _volume(row, words, said)


def _export(row: Mapping[str, Any], words: Words | None, said: dict[str, Any]) -> str:
    why = (
        "first_export" if row.get("new_to_it")
        else "recurring" if row.get("prior_days")
        else "no_history"
    )  # fmt: skip
    return say(
        words, "access_anomaly.export", **said,
        rows=_rows(row.get("rows"), words), size=(words or PLAIN).size(row.get("bytes")),
        remote=say(words, "access_anomaly.remote") if row.get("remote") else "",
        why=say(words, f"access_anomaly.{why}"),
    )  # fmt: skip


def _share(row: Mapping[str, Any], words: Words | None, said: dict[str, Any]) -> str:
    fraction = row.get("store_fraction")
    return say(
        words, "access_anomaly.share", **said, files=row.get("files"), known=row.get("known_files"),
        bytes=say(words, "access_anomaly.share_bytes", fraction=fraction) if fraction else "",
        first=say(words, "access_anomaly.first_read") if row.get("new_to_it") else "",
    )  # fmt: skip


def _volume(row: Mapping[str, Any], words: Words | None, said: dict[str, Any]) -> str:
    rows = row.get("rows")
    biggest = ""
    if row.get("reason") == "oversized read":
        biggest = say(
            words, "access_anomaly.biggest",
            largest=_rows(row.get("largest"), words), usual=_rows(row.get("usual_largest"), words),
        )  # fmt: skip
    return say(
        words, "access_anomaly.volume", **said,
        amount=_rows(rows, words) if rows else (words or PLAIN).size(row.get("bytes")),
        ratio=row.get("ratio") or 0, usual=row.get("usual") or 0, biggest=biggest,
    )  # fmt: skip


def _hour(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Hours since the epoch: an hour bucket without the engine's (time-zone aware, slow)
    timestamp truncation."""
    return (ts.epoch_seconds().cast("float64") / 3600.0).floor().cast("int64")


def _part(ratio: Any, decades: float) -> Any:
    """0 at ``ratio`` 1, 1 at ``ratio`` 10^decades, log-linear between (and clipped)."""
    value = ibis.greatest(ratio.cast("float64"), 1.0).log10() / decades
    return ibis.least(value, 1.0)


def _rows(n: Any, words: Words | None) -> str:
    return say(words, "access_anomaly.rows", n=int(n or 0))
