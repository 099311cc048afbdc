"""The results of a sweep on disk: a directory of Parquet part files plus a manifest.

Layout of ``DIR``::

    _manifest.json          the spec, every point key in order, column names and types
    part-<run>-<seq>.parquet   rows, one per finished point, all with the same schema

Why this shape: part files are written whole to a temporary name and renamed, so a killed
process leaves either a complete part or none, never a torn one; nothing is ever rewritten,
so finished work cannot be lost by a later crash. Files starting with ``_`` or ``.`` are ignored
by pyarrow's dataset discovery, so ``pandas.read_parquet(DIR)`` reads exactly the rows (every
part shares one schema, which is what makes that read work).

A key can appear in more than one row (a failed point retried with ``retry_failed``; two runs on
one directory are prevented by :mod:`accelsim.sweep.lock`, except on file systems without
locks); :meth:`ResultStore.table` keeps one row per key, preferring a successful one, then the
newest. A value its column type cannot hold is handled per row (:meth:`ResultStore.append`).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from accelsim.errors import AccelsimError

MANIFEST = "_manifest.json"
FORMAT_VERSION = 1
ARROW_TYPES: dict[str, pa.DataType] = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(),
                                       "bool": pa.bool_()}
OK, ERROR, INFEASIBLE = "ok", "error", "infeasible"
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
_KIND_OF = {str(t): k for k, t in ARROW_TYPES.items()}


class CellError(ValueError):
    """A value that its column's type cannot hold."""


def cell(value: Any, kind: str, name: str) -> Any:
    """``value`` as a cell of a column of type ``kind``, or :class:`CellError`. What the column
    types hold: ``int64`` integers in [-2**63, 2**63) exactly (a float only if it is integral);
    ``float64`` any number up to about 1.8e308 (as a float column does, integers above 2**53 are
    rounded to the nearest double); ``string`` the text of any value; ``bool``."""
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if kind == "int64":
        if isinstance(value, float):
            if not value.is_integer():
                raise CellError(f"{name} = {value} is not an integer")
            value = int(value)
        if not isinstance(value, int):
            raise CellError(f"{name} = {value!r} is not an integer")
        if not INT64_MIN <= value <= INT64_MAX:
            raise CellError(f"{name} = {value} does not fit its int64 column (beyond 2**63)")
        return int(value)
    if kind == "float64":
        try:
            return float(value)
        except (OverflowError, TypeError, ValueError):
            raise CellError(f"{name} = {str(value)[:40]} does not fit its float64 column") from None
    if kind == "bool":
        return bool(value)
    return str(value)


def arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in columns])


class ResultStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._run = f"{time.time_ns():x}-{os.getpid()}"
        self._seq = 0

    # --- manifest -------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise AccelsimError(f"corrupt manifest: {err}", source=str(self.manifest_path)) from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"format": FORMAT_VERSION, **manifest}, indent=1, default=str))
        os.replace(tmp, self.manifest_path)

    # --- rows ---------------------------------------------------------------------------
    def parts(self) -> list[Path]:
        return sorted(self.root.glob("part-*.parquet")) if self.root.is_dir() else []

    def append(self, rows: list[dict[str, Any]], schema: pa.Schema,
               on_unfit: Callable[[dict[str, Any], str], dict[str, Any]] | None = None) -> Path | None:
        """Write ``rows`` as one new part file, atomically (temporary name, then rename).

        A row with a value its column cannot hold (an integer beyond int64, say) must not cost the
        other rows: ``on_unfit(row, why)`` replaces it (the driver makes it an error row), and any
        value of the replacement that still does not fit is stored as null. Without ``on_unfit``
        such a row is one AccelsimError and nothing is written.
        """
        if not rows:
            return None
        return self.write_table(rows_table(rows, schema, on_unfit))

    def _next_part(self) -> str:
        name = f"part-{self._run}-{self._seq:06d}.parquet"
        self._seq += 1
        return name

    def write_table(self, table: pa.Table) -> Path:
        """``table`` as one new part file, atomically (temporary name, then rename)."""
        return self._atomic(lambda tmp: pq.write_table(table, tmp))

    def write_bytes(self, data: bytes) -> Path:
        """A part file a remote worker already encoded, written as is, atomically."""
        return self._atomic(lambda tmp: tmp.write_bytes(data))

    def _atomic(self, write: Callable[[Path], Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        name = self._next_part()
        tmp = self.root / f".{name}.tmp"
        try:
            write(tmp)
            os.replace(tmp, self.root / name)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a torn temporary (disk full) must not eat more space
            raise
        return self.root / name

    def statuses(self) -> dict[str, str]:
        """key -> status of every point on disk, a success winning over an earlier or later failure."""
        out: dict[str, str] = {}
        for part in self.parts():
            cols = pq.read_table(part, columns=["key", "status"]).to_pydict()
            for key, status in zip(cols["key"], cols["status"]):
                if out.get(key) != OK:
                    out[key] = status
        return out

    def raw(self) -> pd.DataFrame:
        """Every row of every part, in write order (duplicates included)."""
        parts = self.parts()
        if not parts:
            manifest = self.read_manifest()
            columns = [c[0] for c in manifest["columns"]] if manifest and manifest.get("columns") else []
            return pd.DataFrame(columns=columns)
        return pq.read_table(parts).to_pandas()

    def table(self, all_keys: bool = False) -> pd.DataFrame:
        """One row per point of the current spec (or every key on disk with ``all_keys``),
        in the spec's point order, ``point`` renumbered to that order.

        The manifest lists the spec's keys once a run has seen every point; while a run is going
        or after one was interrupted it lists none (``keys`` null), and this is every row on disk
        in the order of its ``point`` column."""
        df = self.raw()
        if df.empty:
            return df
        df["_order"] = range(len(df))
        df["_ok"] = df["status"] == OK
        df = df.sort_values(["_ok", "_order"]).drop_duplicates("key", keep="last")
        manifest = self.read_manifest() or {}
        keys = manifest.get("keys")
        if keys is not None and not all_keys:
            position = {k: i for i, k in enumerate(keys)}
            df = df[df["key"].isin(position)]
            df["point"] = df["key"].map(position).astype("int64")
        df = df.sort_values(["point", "_order"]).drop(columns=["_order", "_ok"])
        return df.reset_index(drop=True)


    def compact(self) -> int:
        """Merge every part file into one (one row per key, a success preferred); returns the
        number of part files replaced. The merged file is written before the old ones are removed,
        so a crash in between leaves duplicate rows, which ``table`` already tolerates."""
        parts = self.parts()
        if len(parts) < 2:
            return 0
        table = pq.read_table(parts)
        df = table.to_pandas()
        df["_order"] = range(len(df))
        df["_ok"] = df["status"] == OK
        keep = df.sort_values(["_ok", "_order"]).drop_duplicates("key", keep="last").sort_values("_order").index
        merged = table.take(pa.array(sorted(keep)))
        self.write_table(merged)
        for part in parts:
            part.unlink()
        return len(parts)


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema,
               on_unfit: Callable[[dict[str, Any], str], dict[str, Any]] | None = None) -> pa.Table:
    """Rows as an Arrow table of ``schema``; an unfit row is replaced (see ResultStore.append)."""
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (OverflowError, pa.ArrowException):
        return pa.Table.from_pylist([_fit(r, schema, on_unfit) for r in rows], schema=schema)


def _fit(row: dict[str, Any], schema: pa.Schema,
         on_unfit: Callable[[dict[str, Any], str], dict[str, Any]] | None) -> dict[str, Any]:
    kinds = [(f.name, _KIND_OF.get(str(f.type), "string")) for f in schema]
    try:
        return {name: cell(row.get(name), kind, name) for name, kind in kinds}
    except CellError as err:
        if on_unfit is None:
            raise AccelsimError(str(err), field=str(row.get("key", "row"))) from None
        row = on_unfit(row, str(err))
    out = {}
    for name, kind in kinds:
        try:
            out[name] = cell(row.get(name), kind, name)
        except CellError:
            out[name] = None
    return out


def load_results(directory: str | Path, all_keys: bool = False) -> pd.DataFrame:
    """The sweep's table: one row per point, every parameter and metric a column."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists() and not list(directory.glob("part-*.parquet")):
        raise AccelsimError("not a sweep results directory (no _manifest.json or part files)", source=str(directory))
    return ResultStore(directory).table(all_keys=all_keys)


def sweep_status(directory: str | Path) -> dict[str, Any]:
    """Counts of done, failed and pending points, against the manifest of the last run."""
    directory = Path(directory)
    store = ResultStore(directory)
    manifest = store.read_manifest()
    if manifest is None:
        raise AccelsimError("not a sweep results directory (no _manifest.json)", source=str(directory))
    statuses = store.statuses()
    keys = manifest.get("keys")
    if keys is None:  # a run is going or was interrupted: every row on disk, pending at most
        keys = list(statuses)
        upper = int(manifest.get("points_before_constraints", len(keys)))
    else:
        upper = len(keys)
    counts = {OK: 0, ERROR: 0, INFEASIBLE: 0}
    for key in keys:
        status = statuses.get(key)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    done = counts[OK]
    failed = counts[ERROR] + counts[INFEASIBLE]
    return {"name": manifest.get("name"), "total": upper, "done": done, "failed": failed,
            "errors": counts[ERROR], "infeasible": counts[INFEASIBLE], "pending": max(0, upper - done - failed),
            "complete_key_list": manifest.get("keys") is not None,
            "skipped_by_constraints": manifest.get("skipped_by_constraints", 0),
            "part_files": len(store.parts()), "rows_on_disk": sum(pq.ParquetFile(p).metadata.num_rows
                                                                   for p in store.parts())}
