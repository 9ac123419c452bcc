"""strip_wheel.py: a wheel without some folders, its RECORD matching what it holds, that pip installs."""
import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from strip_wheel import strip_wheel  # noqa: E402

FILES = {
    "toy/__init__.py": b"VALUE = 42\n",
    "toy/jars/big.jar": b"\0" * 4096,
    "toy/jars/more/other.jar": b"\1" * 1024,
    "toy/jarsmith.py": b"# not under toy/jars/: kept\n",
    "toy/bin/tool": b"#!/bin/sh\necho tool\n",
    "toy-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: toy\nVersion: 1.0\n",
    "toy-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}


def record_row(name: str, content: bytes) -> list:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(content))]


def toy_wheel(path: Path) -> Path:
    """A pure-Python wheel of package ``toy`` with an executable, written as a build tool writes one."""
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, content in FILES.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name == "toy/bin/tool" else 0o100644) << 16
            wheel.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)
            writer.writerow(record_row(name, content))
        writer.writerow(["toy-1.0.dist-info/RECORD", "", ""])
        wheel.writestr("toy-1.0.dist-info/RECORD", record.getvalue())
    return path


def test_the_stripped_wheel_holds_what_its_record_lists_and_pip_installs_it(tmp_path):
    source = toy_wheel(tmp_path / "toy-1.0-py3-none-any.whl")
    target = tmp_path / "out" / source.name
    result = strip_wheel(source, target, ["toy/jars/"])
    assert result["members_dropped"] == 2 and result["bytes_dropped"] == 4096 + 1024
    with zipfile.ZipFile(target) as wheel:
        names = wheel.namelist()
        rows = list(csv.reader(io.StringIO(wheel.read("toy-1.0.dist-info/RECORD").decode())))
        assert oct(wheel.getinfo("toy/bin/tool").external_attr >> 16) == oct(0o100755)
    assert not any(name.startswith("toy/jars/") for name in names) and "toy/jarsmith.py" in names
    assert names[-1] == "toy-1.0.dist-info/RECORD"
    assert sorted(row[0] for row in rows) == sorted(names)
    # the rows kept are the source's rows, hashes and sizes unchanged
    assert record_row("toy/__init__.py", FILES["toy/__init__.py"]) in rows

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--disable-pip-version-check", "--target", str(site), str(target)], check=True,
                   env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    assert (site / "toy" / "__init__.py").read_bytes() == FILES["toy/__init__.py"]
    assert not (site / "toy" / "jars").exists()
    assert os.access(site / "toy" / "bin" / "tool", os.X_OK)


@pytest.mark.parametrize("prefixes, message", [(["toy/java/"], "no member"),
                                               (["toy-1.0.dist-info/"], "dist-info")])
def test_a_prefix_that_matches_nothing_or_the_metadata_is_refused(tmp_path, prefixes, message):
    source = toy_wheel(tmp_path / "toy-1.0-py3-none-any.whl")
    with pytest.raises(ValueError, match=message):
        strip_wheel(source, tmp_path / "out.whl", prefixes)
    assert not (tmp_path / "out.whl").exists()
