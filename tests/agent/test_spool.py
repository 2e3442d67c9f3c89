"""The spool: order, bounds, acknowledgement, quarantine, and crash safety (a writer killed
with SIGKILL at random moments leaves only whole batches, a cursor matching the newest
batch, acknowledged batches gone for good and sequence numbers never given twice)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from hemostat.agent.spool import Spool
from hemostat.errors import ConfigError


def _spool(tmp_path: Path, **bounds: int) -> Spool:
    return Spool(tmp_path / "spool", "abc", bounds.get("max_bytes", 1 << 30),
                 bounds.get("max_batches", 1000))  # fmt: skip


def test_batches_keep_order_ids_and_content(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    entries = [spool.put({"n": i, "flows": []}, cursor={"n": i}) for i in range(3)]
    assert [e.batch for e in spool.pending()] == ["abc-000000000001", "abc-000000000002",
                                                  "abc-000000000003"]  # fmt: skip
    body = orjson.loads(gzip.decompress(entries[1].path.read_bytes()))
    assert body == {"n": 1, "flows": [], "agent": "abc", "batch": "abc-000000000002"}
    assert spool.oldest() == entries[0] and spool.cursor() == {"n": 2}
    spool.ack(entries[0])
    assert not entries[0].path.exists() and spool.oldest() == entries[1]
    reopened = _spool(tmp_path)
    assert [e.batch for e in reopened.pending()] == [entries[1].batch, entries[2].batch]
    assert reopened.cursor() == {"n": 2}
    assert reopened.put({}).batch == "abc-000000000004"


def test_numbers_are_never_reused_after_everything_was_acknowledged(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for entry in [spool.put({}) for _ in range(2)]:
        spool.ack(entry)
    assert _spool(tmp_path).put({}).batch == "abc-000000000003"


def test_count_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_batches=3)
    for i in range(5):
        spool.put({"n": i})
    assert [Spool.read(e)["n"] for e in spool.pending()] == [2, 3, 4]
    stats = spool.stats()
    assert (stats.spool_batches, stats.dropped_batches) == (3, 2)
    assert _spool(tmp_path, max_batches=3).stats().dropped_batches == 2  # persisted


def test_byte_bound_drops_the_oldest(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=3 * 1024)
    noise = os.urandom(900).hex()  # ~1 KB compressed
    for i in range(6):
        spool.put({"n": i, "x": noise})
    stats = spool.stats()
    assert stats.spool_bytes <= 3 * 1024 and stats.spool_bytes == sum(
        e.path.stat().st_size for e in spool.pending()
    )
    assert [Spool.read(e)["n"] for e in spool.pending()][-1] == 5
    assert stats.dropped_batches == 6 - stats.spool_batches > 0
    assert stats.oldest_unsent is not None and stats.oldest_unsent.endswith("Z")


def test_reject_sets_the_batch_aside_with_the_reason(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    bad, good = spool.put({"n": 0}), spool.put({"n": 1})
    target = spool.reject(bad, 422, "bad flows[0].dst_port")
    assert target.exists() and spool.oldest() == good
    note = orjson.loads((spool.rejected / f"{bad.batch}.error.json").read_bytes())
    assert note["status"] == 422 and "dst_port" in note["detail"]
    assert _spool(tmp_path).put({}).batch == "abc-000000000003"


def test_half_written_batches_are_published_only_when_committed(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    spool.put({"n": 1}, cursor={"n": 1})
    data = gzip.compress(orjson.dumps({"n": 2}))
    # killed after the state named batch 2 but before the rename: batch 2 is committed
    (spool.batches / ".abc-000000000002.json.gz.tmp").write_bytes(data)
    state = spool.root / "state.json"
    state.write_bytes(orjson.dumps({"seq": 2, "dropped": 0, "cursor": {"n": 2}}))
    # killed before the state named batch 3: batch 3 never happened
    (spool.batches / ".abc-000000000003.json.gz.tmp").write_bytes(b"\x1f\x8b torn")
    reopened = _spool(tmp_path)
    assert [Spool.read(e)["n"] for e in reopened.pending()] == [1, 2]
    assert reopened.cursor() == {"n": 2}
    assert not list(reopened.batches.glob(".*"))
    assert reopened.put({}).batch == "abc-000000000003"


def test_a_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    (spool.root / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"state\.json: corrupt"):
        _spool(tmp_path)


WRITER = """
import os, sys
from pathlib import Path
from hemostat.agent.spool import Spool
spool = Spool(Path(sys.argv[1]), "abc", 1 << 30, 100000)
blob = os.urandom(150_000).hex()
n = 0
while True:
    n += 1
    entry = spool.put({"n": n, "blob": blob}, cursor={"n": n})
    if n % 3 == 0:
        spool.ack(entry)
        print("acked", entry.batch, flush=True)
"""


def test_sigkill_at_any_moment_leaves_a_consistent_spool(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    acked: set[str] = set()
    last_seq = 0
    for delay in (0.03, 0.11, 0.19, 0.27, 0.41):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(root)],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert child.stdout is not None
        first = child.stdout.readline()  # a few batches are in (however slow the start-up)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
        acked |= {line.split()[1] for line in (first + out).splitlines()}
        spool = Spool(root, "abc", 1 << 30, 100000)
        entries = spool.pending()
        names = [e.batch for e in entries]
        seqs = [e.seq for e in entries]
        assert seqs == sorted(set(seqs)) and not acked & set(names)
        for entry in entries:  # whole batches only: each decodes
            assert Spool.read(entry)["batch"] == entry.batch
        state = orjson.loads((root / "state.json").read_bytes())
        newest = [e for e in entries if e.seq == state["seq"]]
        if newest:  # the cursor is the one committed with the newest batch
            assert Spool.read(newest[0])["n"] == state["cursor"]["n"] == spool.cursor()["n"]
        else:  # which was acknowledged (every third is)
            assert state["cursor"]["n"] % 3 == 0
        assert not list(spool.batches.glob(".*.tmp"))
        new = spool.put({"n": -1}, cursor=spool.cursor())
        assert new.seq > max([last_seq, *seqs])
        last_seq = new.seq
    assert len(acked) >= 3
