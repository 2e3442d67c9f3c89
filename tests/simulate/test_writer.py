"""Text as Zeek writes it, and the columnar building blocks that must never lose a byte."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hemostat.simulate import flows
from hemostat.simulate.flows import SECOND
from hemostat.simulate.plan import split
from hemostat.simulate.writer import stamp, time_text, uid_text


@given(st.lists(st.integers(0, 4_000_000_000 * SECOND), min_size=1, max_size=50))
def test_time_text_is_seconds_dot_six_digits(values: list[int]) -> None:
    text = time_text(np.array(values, np.int64)).to_pylist()
    assert text == [f"{v // SECOND}.{v % SECOND:06d}" for v in values]


def test_uids_are_zeek_like_and_distinct() -> None:
    uids = uid_text(flows.Uids(seed=3, stream=5).take(100_000)).to_pylist()
    assert len(set(uids)) == len(uids)
    assert all(len(u) == 18 and u[0] == "C" and u.isalnum() for u in uids[:1000])


def test_rotation_names_are_zeek_s() -> None:
    assert stamp(1_686_546_000 * SECOND) == "2023-06-12-05-00-00"


@given(
    st.lists(
        st.tuples(st.integers(0, 4 * 3600), st.integers(0, 10**11), st.integers(0, 10**6)),
        min_size=1,
        max_size=20,
    ),
)
def test_slices_keep_every_byte_and_the_uid(conns: list[tuple[int, int, int]]) -> None:
    n = len(conns)
    dur, ob, rb = (np.array(c, np.int64) for c in zip(*conns, strict=True))
    batch = flows.make(
        n,
        ts=10**15,
        dur=dur * SECOND,
        src=1,
        sport=2,
        dst=3,
        dport=4,
        proto=0,
        ob=ob,
        rb=rb,
        uid=np.arange(n, dtype=np.uint64),
    )
    out = flows.sliced(batch)
    assert int(out.ob.sum()) == int(ob.sum()) and int(out.rb.sum()) == int(rb.sum())
    assert (out.dur <= flows.ACTIVE_TIMEOUT).all() and (out.ob >= 0).all()
    for uid in range(n):
        mine = out.uid == uid
        assert int(out.dur[mine].sum()) == int(dur[uid]) * SECOND
        assert (out.state[mine][:-1] == flows.STATE["S1"]).all()


@given(st.integers(1, 10**12), st.integers(1, 500), st.integers(0, 2**32))
def test_split_adds_up(total: int, n: int, seed: int) -> None:
    n = min(n, total)
    parts = split(np.random.default_rng(seed), total, n)
    assert len(parts) == n and int(parts.sum()) == total and (parts > 0).all()
