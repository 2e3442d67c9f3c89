"""Operations shared by the simulator's columnar batches (flows, DNS queries, access events):
dataclasses whose fields are numpy arrays or Arrow arrays of one length, with a ``ts`` column.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa


class Batch(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def ts(self) -> npt.NDArray[np.int64]: ...


B = TypeVar("B", bound=Batch)


def size(batch: Batch) -> int:
    return len(batch.ts)


def take(batch: B, index: Any) -> B:
    """Rows ``index`` (an integer array, a boolean mask or a slice) of ``batch``."""
    return type(batch)(*(_take(getattr(batch, f.name), index) for f in fields(batch)))


def _take(column: Any, index: Any) -> Any:
    if not isinstance(column, pa.Array):
        return column[index]
    if isinstance(index, slice):
        start, stop, _ = index.indices(len(column))
        return column.slice(start, max(0, stop - start))
    index = np.asarray(index)
    if index.dtype == bool:
        return column.filter(pa.array(index))
    return column.take(pa.array(index))


def concat(parts: list[B]) -> B:
    """One batch of every row of ``parts`` (at least one part, possibly empty)."""
    kept = [p for p in parts if size(p)] or parts[:1]
    out = []
    for f in fields(kept[0]):
        cols = [getattr(p, f.name) for p in kept]
        if isinstance(cols[0], pa.Array):
            out.append(pa.concat_arrays(cols) if len(cols) > 1 else cols[0])
        else:
            out.append(np.concatenate(cols))
    return type(kept[0])(*out)


def by_time(batch: B) -> B:
    """The batch sorted by ``ts`` (stable: equal times keep their order)."""
    return take(batch, np.argsort(batch.ts, kind="stable"))


def between(batch: B, lo: int, hi: int) -> B:
    """Rows of a time-sorted batch with ``ts`` in ``[lo, hi)``."""
    a, b = np.searchsorted(batch.ts, [lo, hi])
    return take(batch, slice(int(a), int(b)))
