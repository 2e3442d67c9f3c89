"""The Parquet lake: where the telemetry of every site lands for the scale-out engine (DESIGN §8).

Layout, one directory tree per table, hive-partitioned by site and UTC day::

    LAKE/flows/site=CHU%20Nord/date=2023-06-12/part-0.parquet
    LAKE/dns/site=CHU%20Nord/date=2023-06-12/part-0.parquet
    LAKE/access/...

Files are zstd-compressed and sorted by time, then host, so a reader skips row groups
outside the window it asks for. Writing a (site, day) partition replaces it whole: exporting
a day again never duplicates it. ``LAKE`` is a directory or an S3-compatible URL
(``s3://bucket/prefix``; credentials and endpoint from the usual ``AWS_*`` environment, or
URL options such as ``?endpoint_override=http://minio:9000&scheme=http``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from hemostat.errors import StoreError
from hemostat.schema import Table

#: rows per Parquet row group: small enough that a time filter skips most of a day
ROW_GROUP = 256 * 1024
#: rows per file: a Spark task per file part keeps every core busy on a big day
FILE_ROWS = 4 * 1024 * 1024
#: the columns a table is sorted by inside each file (DNS rows carry no host)
SORT = {
    Table.FLOWS: ("ts", "host"),
    Table.DNS: ("ts", "src_ip"),
    Table.ACCESS: ("ts", "host"),
}


def site_dir(name: str) -> str:
    """The partition directory of a site, as Arrow writes it: ``CHU Nord`` is
    ``site=CHU%20Nord`` (hive values are URL-encoded; readers decode them)."""
    if not name.strip() or any(ord(c) < 32 for c in name):
        raise StoreError(f"site {name!r}: give the site a name (the inventory's site:)")
    return "site=" + quote(name, safe="")


@dataclass(frozen=True, slots=True)
class Location:
    """A lake root: a local directory or an S3-compatible bucket and prefix."""

    url: str

    @property
    def remote(self) -> bool:
        return urlsplit(self.url).scheme in ("s3", "s3a")

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The Arrow filesystem and the root path inside it."""
        if not self.remote:
            return pafs.LocalFileSystem(), str(Path(self.url).absolute())
        url = self.url.replace("s3a://", "s3://", 1)
        try:
            fs, path = pafs.FileSystem.from_uri(url)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"lake {self.url}: {exc}") from exc
        return fs, path.rstrip("/")

    def table(self, table: Table | str) -> str:
        """The URL of one table's tree, as Spark reads it (``s3a://`` for S3)."""
        parts = urlsplit(self.url)
        if not self.remote:
            return str(Path(self.url).absolute() / str(table))
        return f"s3a://{parts.netloc}{parts.path.rstrip('/')}/{table}"


def location(url: str | Path) -> Location:
    """``url`` as a lake root (``file://`` and plain paths are local directories)."""
    text = str(url)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    scheme = urlsplit(text).scheme
    if scheme and len(scheme) > 1 and scheme not in ("s3", "s3a"):
        raise StoreError(f"lake {text}: use a directory or s3://bucket/prefix")
    return Location(text)


def write(rows: pa.RecordBatchReader, lake: Location, table: Table) -> None:
    """Write ``rows`` (canonical columns plus ``site`` and ``date``, already sorted) under
    ``lake/<table>/site=.../date=.../``, replacing the partitions they fall in."""
    fs, root = lake.filesystem()
    partitioning = ds.partitioning(
        pa.schema([("site", pa.string()), ("date", pa.string())]), flavor="hive"
    )
    options = ds.ParquetFileFormat().make_write_options(compression="zstd")
    try:
        ds.write_dataset(
            rows, f"{root}/{table}", filesystem=fs, format="parquet",
            partitioning=partitioning, file_options=options,
            existing_data_behavior="delete_matching", basename_template="part-{i}.parquet",
            max_rows_per_group=ROW_GROUP, min_rows_per_group=min(ROW_GROUP, 64 * 1024),
            max_rows_per_file=FILE_ROWS, max_partitions=100_000, preserve_order=True,
        )  # fmt: skip
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"cannot write {table} to the lake {lake.url}: {exc}") from exc


def sites(lake: Location) -> dict[str, list[str]]:
    """Site -> the days (``YYYY-MM-DD``) the lake holds flows, DNS or access events for."""
    fs, root = lake.filesystem()
    found: dict[str, set[str]] = {}
    for table in Table:
        selector = pafs.FileSelector(f"{root}/{table}", allow_not_found=True, recursive=False)
        try:
            site_dirs = [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.Directory]
            for info in site_dirs:
                if not info.base_name.startswith("site="):
                    continue
                inner = pafs.FileSelector(info.path, allow_not_found=True)
                days = {d.base_name.removeprefix("date=") for d in fs.get_file_info(inner)}
                site = unquote(info.base_name.removeprefix("site="))
                found.setdefault(site, set()).update(days)
        except OSError as exc:
            raise StoreError(f"cannot list the lake {lake.url}: {exc}") from exc
    return {site: sorted(days) for site, days in sorted(found.items())}
