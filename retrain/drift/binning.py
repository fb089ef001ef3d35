"""Binning: numeric values counted against the reference edges, category values counted
against the reference categories, chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from retrain.drift._types import FloatArray, IntArray
from retrain.drift.sources import _to_arrow

#: Rows sorted at a time when binning a numeric column (fits in L2 cache; bounds scratch memory).
BLOCK = 65_536
_FMAX = float(np.finfo(np.float64).max)


def _canonical_strings(array: Any) -> Any:
    """Category values as strings; NaN becomes missing; ``1`` and ``1.0`` both become ``"1"``."""
    typ = array.type
    if pa.types.is_null(typ):
        return pa.nulls(len(array), pa.large_string())
    if pa.types.is_floating(typ):
        nan = pc.is_nan(array)
        if pc.any(nan).as_py():
            array = pc.if_else(nan, pa.scalar(None, typ), array)
    if not (pa.types.is_large_string(typ) or pa.types.is_string(typ)):
        array = pc.cast(array, pa.large_string())
    return array


class _CategoryCounts:
    """Counts of category values (as strings) and of missing values over one or more chunks.

    With ``known`` categories (the reference's), values are first matched against them
    (``index_in`` + ``bincount``) and only the remaining, unknown values are hashed and counted.
    """

    def __init__(self, known: Sequence[str] = ()) -> None:
        self.known = pa.array(list(known), pa.large_string()) if known else None
        self.known_counts = np.zeros(len(known), np.int64)
        self.values: list[Any] = []  # pyarrow string arrays of values outside `known`
        self.counts: list[IntArray] = []
        self.n = 0
        self.n_missing = 0

    def update(self, column: Any) -> None:
        array = _to_arrow(column)
        self.n += len(array)
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        for chunk in chunks:
            if pa.types.is_dictionary(chunk.type):
                self._update_dictionary(chunk)
            else:
                self._add(_canonical_strings(chunk))

    def _add(self, strings: Any) -> None:
        self.n_missing += strings.null_count
        if self.known is not None:
            index = pc.index_in(strings, value_set=self.known)
            unknown = index.null_count - strings.null_count
            found = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
            self.known_counts += np.bincount(found, minlength=len(self.known) + 1)[1:]
            if unknown == 0:
                return
            strings = pc.filter(strings, pc.and_(pc.is_null(index), pc.is_valid(strings)))
        result = pc.value_counts(pc.drop_null(strings))
        self.values.append(result.field("values"))
        self.counts.append(result.field("counts").to_numpy(zero_copy_only=False).astype(np.int64))

    def _update_dictionary(self, chunk: Any) -> None:
        dictionary = _canonical_strings(chunk.dictionary)
        indices = pc.drop_null(chunk.indices).to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(dictionary)).astype(np.int64)
        self.n_missing += chunk.indices.null_count
        is_null = pc.is_null(dictionary).to_numpy(zero_copy_only=False)
        self.n_missing += int(counts[is_null].sum())
        keep = ~is_null & (counts > 0)
        values, counts = pc.filter(dictionary, pa.array(keep)), counts[keep]
        if self.known is not None:
            index = pc.fill_null(pc.index_in(values, value_set=self.known), -1)
            position = index.to_numpy(zero_copy_only=False).astype(np.int64)
            matched = position >= 0
            np.add.at(self.known_counts, position[matched], counts[matched])
            values, counts = pc.filter(values, pa.array(~matched)), counts[~matched]
        if len(counts):
            self.values.append(values)
            self.counts.append(counts)

    def others(self) -> tuple[Any, IntArray]:
        """Distinct values outside ``known`` (a large_string array) and their counts."""
        if not self.values:
            return pa.array([], pa.large_string()), np.zeros(0, np.int64)
        values = [pc.cast(v, pa.large_string()) for v in self.values]
        if len(values) == 1:
            return values[0], self.counts[0]
        table = pa.table({"v": pa.concat_arrays(values), "c": np.concatenate(self.counts)})
        grouped = table.group_by("v").aggregate([("c", "sum")])
        return grouped.column("v").combine_chunks(), grouped.column("c_sum").to_numpy()


class _NumericCounter:
    """Counts non-missing values at or below each edge, block by block (sorted in cache).

    Also counts missing and infinite values, sums the distance of values beyond the reference
    range (for the Wasserstein tails) and accumulates shifted moments for the summary.
    """

    def __init__(
        self, edges: FloatArray, *, lo: float | None, hi: float | None, shift: float
    ) -> None:
        self.edges = edges
        self.query = np.concatenate(([-np.inf], edges, [_FMAX, np.inf]))
        self.cum = np.zeros(len(edges), np.int64)
        self.lo, self.hi, self.shift = lo, hi, shift
        self.n = self.n_missing = self.n_neg_inf = self.n_pos_inf = 0
        self.below = self.above = self.s1 = self.s2 = 0.0
        self.min, self.max = math.inf, -math.inf

    @property
    def n_finite(self) -> int:
        return self.n - self.n_missing - self.n_neg_inf - self.n_pos_inf

    def update(self, values: npt.NDArray[Any]) -> None:
        n = len(values)
        self.n += n
        if n == 0:
            return
        buffer = np.empty(min(BLOCK, n), dtype=np.float64)
        for start in range(0, n, BLOCK):
            block = buffer[: min(BLOCK, n - start)]
            block[...] = values[start : start + BLOCK]
            block.sort()
            self._count(block)

    def _count(self, block: FloatArray) -> None:
        m = len(self.edges)
        pos = np.searchsorted(block, self.query, side="right")
        neg, fin_end, nonmissing = int(pos[0]), int(pos[m + 1]), int(pos[m + 2])
        self.n_missing += len(block) - nonmissing
        self.n_neg_inf += neg
        self.n_pos_inf += nonmissing - fin_end
        finite = block[neg:fin_end]
        if finite.size == 0:
            return
        self.min = min(self.min, float(finite[0]))
        self.max = max(self.max, float(finite[-1]))
        centred = finite - self.shift
        self.s1 += float(centred.sum())
        # einsum, not `@`: a BLAS dot wakes OpenBLAS threads (milliseconds on a busy machine)
        self.s2 += float(np.einsum("i,i->", centred, centred))
        if m == 0 or self.lo is None or self.hi is None:
            return
        self.cum += pos[1 : m + 1]
        below = block[neg : int(pos[1])]
        above = block[int(pos[m]) : fin_end]
        self.below += self.lo * below.size - float(below.sum())
        self.above += float(above.sum()) - self.hi * above.size
