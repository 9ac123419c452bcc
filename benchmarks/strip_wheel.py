"""A wheel without the folders a program never uses, re-packed so pip still installs it.

A lent GPU machine takes at most 64 MiB of files per call, and Ray's wheel alone is about 76 MiB,
most of it parts a headless search never loads (Java jars, the dashboard's web client). This
copies a wheel without the members under the given prefixes and rewrites its ``*.dist-info/RECORD``
without their rows, so the wheel stays valid: every file it holds is still listed there with its
hash and size, and every row names a file it holds (pip 23 installs a wheel whatever its RECORD
says, but the installed RECORD is what ``pip uninstall`` removes, and stricter installers check it).
The members kept are copied unchanged (same bytes, same permission bits: Ray's ``raylet`` and
``gcs_server`` must stay executable).

    python benchmarks/strip_wheel.py SOURCE.whl TARGET.whl --drop ray/jars/ [--drop PREFIX ...]

Prints one line: the members and bytes dropped, the wheel's size before and after.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Sequence


def record_name(names: Sequence[str]) -> str:
    """The path of the wheel's RECORD (``NAME-VERSION.dist-info/RECORD`` at the top level)."""
    records = [name for name in names if name.count("/") == 1 and name.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise ValueError(f"a wheel holds one top-level *.dist-info/RECORD, found {records}")
    return records[0]


def dropped(name: str, prefixes: Sequence[str]) -> bool:
    return any(name.startswith(prefix) for prefix in prefixes)


def stripped_record(record: bytes, prefixes: Sequence[str]) -> bytes:
    """RECORD (CSV rows: path, hash, size) without the rows of the dropped paths."""
    rows = list(csv.reader(io.StringIO(record.decode("utf-8"))))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(row for row in rows if row and not dropped(row[0], prefixes))
    return out.getvalue().encode("utf-8")


def check_record(names: Sequence[str], record: bytes) -> None:
    """Every member has a RECORD row and every row a member (directory entries aside)."""
    listed = {row[0] for row in csv.reader(io.StringIO(record.decode("utf-8"))) if row}
    members = {name for name in names if not name.endswith("/")}
    if listed != members:
        raise ValueError(f"RECORD and the wheel's members differ: {sorted(listed ^ members)[:5]}")


def strip_wheel(source: Path, target: Path, prefixes: Sequence[str]) -> Dict[str, int]:
    """Write ``source`` without the members under ``prefixes`` to ``target``; what was dropped.

    Each prefix must match at least one member (a prefix matching nothing means the wheel's layout
    changed and the list needs a look), and none may reach into ``*.dist-info/``.
    Returns members_dropped, bytes_dropped (uncompressed), source_bytes and target_bytes (files).
    """
    if any(".dist-info" in prefix.split("/")[0] for prefix in prefixes):
        raise ValueError("the wheel's *.dist-info/ is what pip reads: it cannot be dropped")
    with zipfile.ZipFile(source) as wheel:
        infos = wheel.infolist()
        record = record_name([info.filename for info in infos])
        unmatched = [prefix for prefix in prefixes if not any(info.filename.startswith(prefix) for info in infos)]
        if unmatched:
            raise ValueError(f"no member of {source.name} is under {unmatched}")
        kept = [info for info in infos if not dropped(info.filename, prefixes)]
        new_record = stripped_record(wheel.read(record), prefixes)
        check_record([info.filename for info in kept], new_record)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")  # a reader never sees half a wheel
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for info in kept:  # RECORD last, as wheels are written
                if info.filename != record:
                    out.writestr(info, wheel.read(info), compress_type=zipfile.ZIP_DEFLATED)
            out.writestr(wheel.getinfo(record), new_record, compress_type=zipfile.ZIP_DEFLATED)
        partial.replace(target)
    gone = [info for info in infos if dropped(info.filename, prefixes)]
    return {"members_dropped": len(gone), "bytes_dropped": sum(info.file_size for info in gone),
            "source_bytes": source.stat().st_size, "target_bytes": target.stat().st_size}


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--drop", action="append", required=True, help="a member prefix, e.g. ray/jars/ (repeat)")
    args = parser.parse_args(argv)
    try:
        result = strip_wheel(args.source, args.target, args.drop)
    except (ValueError, zipfile.BadZipFile) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    mib = 2 ** 20
    print(f"{args.target.name}: dropped {result['members_dropped']} files ({result['bytes_dropped'] / mib:.1f} MiB "
          f"unpacked); wheel {result['source_bytes'] / mib:.1f} -> {result['target_bytes'] / mib:.1f} MiB")


if __name__ == "__main__":
    main(sys.argv[1:])
