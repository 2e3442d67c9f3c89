"""Data-access events (``access.jsonl``): database queries with the rows they read, file
reads with their bytes, exports, copies and logins, as the agents on the servers report them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from hemostat.schema import Action
from hemostat.simulate.datastores import Part

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

ACTIONS = tuple(Action)
ACTION = {a: i for i, a in enumerate(ACTIONS)}
NONE = -1  # no value (written as JSON null)


@dataclass(frozen=True, slots=True)
class Events:
    ts: I64  # µs since the epoch
    host: I32  # address index of the host whose agent reports it
    user: pa.Array
    process: pa.Array
    action: npt.NDArray[np.uint8]  # index into ACTIONS
    object: pa.Array
    rows: I64  # NONE when unknown
    bytes: I64  # NONE when unknown
    client: I32  # address index of the client, NONE when local

    def __len__(self) -> int:
        return len(self.ts)


def events(
    ts: I64 | int,
    host: I32 | int,
    user: pa.Array | str,
    process: pa.Array | str,
    action: Action,
    obj: pa.Array | str,
    rows: I64 | int,
    size: I64 | int,
    client: I32 | int,
    n: int | None = None,
) -> Events:
    """A batch of events; scalars are repeated to the length of the array arguments."""
    arrays = [
        a
        for a in (ts, host, user, process, obj, rows, size, client)
        if isinstance(a, np.ndarray | pa.Array)
    ]
    count = n if n is not None else len(arrays[0]) if arrays else 1
    return Events(
        _numbers(ts, count, np.int64),
        _numbers(host, count, np.int32),
        _text(user, count),
        _text(process, count),
        np.full(count, ACTION[action], np.uint8),
        _text(obj, count),
        _numbers(rows, count, np.int64),
        _numbers(size, count, np.int64),
        _numbers(client, count, np.int32),
    )


def _numbers(value: npt.NDArray[Any] | int, count: int, dtype: type[Any]) -> npt.NDArray[Any]:
    return np.broadcast_to(np.asarray(value), (count,)).astype(dtype, copy=True)


def _text(value: pa.Array | str, count: int) -> pa.Array:
    if isinstance(value, pa.Array):
        return value
    return pa.array([value], pa.string()).take(pa.array(np.zeros(count, np.int32)))


def empty() -> Events:
    return events(0, 0, "", "", Action.READ, "", 0, 0, 0, n=0)


def exports(
    ts: int, host: int, user: str, process: str, parts: Sequence[Part], client: int
) -> Events:
    """A dump: one ``export`` event per part (table or file), a second apart."""
    return events(
        ts + np.arange(len(parts), dtype=np.int64) * 1_000_000,
        host,
        user,
        process,
        Action.EXPORT,
        pa.array([p.object for p in parts], pa.string()),
        np.array([p.rows for p in parts], np.int64),
        np.array([p.bytes for p in parts], np.int64),
        client,
    )
