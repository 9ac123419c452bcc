"""The run directory (DESIGN.md, "The run directory"): the one place that reads and writes it.

``<out>`` is a local path or a filesystem URI that pyarrow understands (``s3://bucket/runs/a``,
``gs://bucket/runs/a``, ``hdfs://...``, ``file:///abs/path``), so a driver on any node of a
cluster reads and writes the same run. All I/O goes through ``pyarrow.fs``.

Every file is written to a temporary name in its own folder, then renamed. The temporary names
start with ``.``, which pyarrow's dataset discovery (and so ``pandas.read_parquet(out/"rewards")``)
skips, so a reader never sees a half-written file, even one left behind by a killed writer.
On a local disk the rename is atomic; on object stores an object only appears once complete.
The guarantee is against a killed process (SIGKILL), not a power loss (nothing is fsynced).
"""
from __future__ import annotations

import io
import json
import os
import re
import uuid
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch
import yaml

from searchspace.genotype import Genotype, GenotypeError, from_json, from_key
from searchspace.registry import DECISION_NAMES

OPS = [pa.field(name, pa.string()) for name in DECISION_NAMES]

# DESIGN.md's columns in its order; ``attempts`` and ``note`` are ours (DESIGN allows added columns):
# how many evaluations a reward took, > 1 when a worker died and the reward was computed again
# elsewhere, and what happened (lost workers, errors), empty when nothing did.
REWARD_SCHEMA = pa.schema([
    pa.field("run_id", pa.string()),
    pa.field("round", pa.int32()),
    pa.field("sample", pa.int32()),
    pa.field("worker", pa.int32()),
    pa.field("genotype", pa.string()),
    *OPS,
    *[pa.field(name, pa.float64()) for name in (
        "reward", "val_accuracy", "val_loss", "log_prob", "entropy", "baseline", "advantage")],
    pa.field("params", pa.int64()),
    pa.field("status", pa.string()),
    pa.field("wall_time_s", pa.float64()),
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("attempts", pa.int32()),
    pa.field("note", pa.string()),
])

CANDIDATE_SOURCES = ("mean_reward", "greedy", "sample")

# The derive stage's output: ``reward`` is re-scored on the whole validation set.
CANDIDATE_SCHEMA = pa.schema([
    pa.field("rank", pa.int32()),
    pa.field("genotype", pa.string()),
    *OPS,
    pa.field("reward", pa.float64()),
    pa.field("val_accuracy", pa.float64()),
    pa.field("val_loss", pa.float64()),
    pa.field("search_mean_reward", pa.float64()),
    pa.field("search_count", pa.int64()),
    pa.field("source", pa.string()),
    pa.field("params", pa.int64()),
])

RETRAIN_KINDS = ("candidate", "baseline")

# Stage 2 (controller/stage2.py): one row per (model, seed) trial of stand-alone training.
# ``name`` is "rank-R" for the search's rank-R genotype, the KNOWN name for a baseline;
# ``epochs`` counts the epochs the trial trained (fewer than asked when ASHA stopped it);
# ``latency_ms`` is per image at batch 1. Figures of a trial that did not finish are null/NaN.
RETRAIN_SCHEMA = pa.schema([
    pa.field("genotype", pa.string()),
    *OPS,
    pa.field("kind", pa.string()),
    pa.field("name", pa.string()),
    pa.field("search_rank", pa.int32()),
    pa.field("seed", pa.int32()),
    pa.field("epochs", pa.int32()),
    *[pa.field(name, pa.float64()) for name in ("test_accuracy", "test_loss", "val_accuracy", "val_loss")],
    pa.field("params", pa.int64()),
    pa.field("macs", pa.int64()),
    pa.field("latency_ms", pa.float64()),
    pa.field("latency_ms_batch64", pa.float64()),
    pa.field("wall_time_s", pa.float64()),
    pa.field("status", pa.string()),
    pa.field("error", pa.string()),
])

REPORT_FOLDER = "report"
STAGE2_FOLDER = "tune"

# Columns every top-k table starts with, whichever file it was ranked from.
TOP_K_COLUMNS = ["rank", "genotype", *DECISION_NAMES, "reward", "count", "source"]

KEEP_CHECKPOINTS = 2
ROUND_FILE = re.compile(r"^round-(\d{6,})\.parquet$")
CHECKPOINT_FILE = re.compile(r"^round-(\d{6,})\.pt$")
TEMPORARY_PREFIX = "."

# What ``torch.load(..., weights_only=True)`` accepts, checked before a checkpoint is written so
# that a state it would refuse fails at save time, not at resume.
_CHECKPOINT_LEAVES = (torch.Tensor, torch.nn.Parameter, int, float, bool, complex, str, bytes,
                      type(None), torch.Size, torch.dtype, torch.device)


class RunDirError(ValueError):
    """A run directory (or a file in it) that cannot be used; the message names it."""


class RunDir:
    """``<out>`` of one search run. Paths inside are ``/``-joined as pyarrow.fs wants them."""

    def __init__(self, out: Union[str, os.PathLike]) -> None:
        self.out = str(out)
        self.fs, self.root = open_filesystem(self.out)
        self._scheme = self.out.split("://", 1)[0] + "://" if "://" in self.out else ""

    def __repr__(self) -> str:
        return f"RunDir({self.out!r})"

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def show(self, path: str) -> str:
        """A path as the user wrote its kind: plain for local runs, with the URI scheme otherwise."""
        return self._scheme + path if self._scheme and self._scheme != "file://" else path

    def _error(self, message: str, path: Optional[str] = None) -> RunDirError:
        return RunDirError(f"{self.show(path or self.root)}: {message}")

    # -- the directory --------------------------------------------------------------------

    def exists(self) -> bool:
        """True when ``<out>`` holds a run: config.yaml or a rewards folder."""
        return self._kind(self.root) == pafs.FileType.Directory and (
            self._kind(self.path("config.yaml")) == pafs.FileType.File
            or self._kind(self.path("rewards")) == pafs.FileType.Directory
        )

    def check(self) -> None:
        """Raise :class:`RunDirError` saying why ``<out>`` is not a run directory."""
        kind = self._kind(self.root)
        if kind == pafs.FileType.NotFound:
            raise self._error("no such run directory")
        if kind != pafs.FileType.Directory:
            raise self._error("not a directory")
        if not self.exists():
            raise self._error("not a run directory (no config.yaml and no rewards/)")

    def create(self, config: Dict[str, Any]) -> None:
        """Make the folders and write config.yaml (the resolved configuration)."""
        for folder in ("rewards", "checkpoints"):
            self.fs.create_dir(self.path(folder), recursive=True)
        self._write_bytes(self.path("config.yaml"), yaml.safe_dump(config, sort_keys=False).encode())

    def read_config(self) -> Dict[str, Any]:
        self.check()
        path = self.path("config.yaml")
        if self._kind(path) != pafs.FileType.File:
            raise self._error("no config.yaml in this run directory")
        try:
            config = yaml.safe_load(self._read_bytes(path))
        except yaml.YAMLError as err:
            raise self._error(f"malformed YAML: {_first_line(err)}", path) from None
        if not isinstance(config, dict):
            raise self._error(f"expected a mapping, got {type(config).__name__}", path)
        return config

    @property
    def run_id(self) -> str:
        """config.yaml's run_id, else the rewards log's, else the directory's name (as the search does)."""
        if self._kind(self.path("config.yaml")) == pafs.FileType.File:
            run_id = self.read_config().get("run_id")
            if run_id:
                return str(run_id)
        if self.rounds():
            table = self._read_parquet(self._round_path(self.rounds()[0]), columns=["run_id"])
            if table.num_rows and table["run_id"][0].is_valid:
                return table["run_id"][0].as_py()
        return self.root.rstrip("/").rsplit("/", 1)[-1]

    # -- the rewards log ------------------------------------------------------------------

    def write_round(self, round: int, rows: Union[Sequence[Dict[str, Any]], pd.DataFrame]) -> None:
        """Write rewards/round-{round:06d}.parquet atomically, replacing an existing one.

        Every column of :data:`REWARD_SCHEMA` is required except ``timestamp`` (default: now, UTC)
        ``attempts`` (default: 1) and ``note`` (default: empty); every row's ``round`` must be ``round``.
        """
        frame = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows).copy()
        if frame.empty:
            raise self._error(f"round {round}: no rows (a round logs every sample, failed ones too)")
        if "timestamp" not in frame:
            frame["timestamp"] = pd.Timestamp(datetime.now(timezone.utc))
        if "attempts" not in frame:
            frame["attempts"] = 1
        if "note" not in frame:
            frame["note"] = ""
        table = self._table(frame, REWARD_SCHEMA, f"round {round}")
        if not all(r == round for r in table["round"].to_pylist()):
            raise self._error(f"round {round}: rows with another 'round' value")
        self.fs.create_dir(self.path("rewards"), recursive=True)
        with atomic_output(self.fs, self._round_path(round)) as stream:
            pq.write_table(table, stream)

    def rounds(self) -> List[int]:
        """The rounds whose file is complete, ascending."""
        return sorted(int(m.group(1)) for m in self._matching("rewards", ROUND_FILE))

    def read_rewards(self) -> pd.DataFrame:
        """Every round's rows, sorted by round and sample; an empty frame with the columns if none."""
        self.check()
        tables = [self._read_parquet(self._round_path(r)) for r in self.rounds()]
        if not tables:
            return REWARD_SCHEMA.empty_table().to_pandas()
        # Round files written before a column was added lack it: those rows get nulls.
        table = pa.concat_tables(tables, promote_options="default")
        frame = table.to_pandas()
        return frame.sort_values(["round", "sample"], kind="mergesort").reset_index(drop=True)

    def drop_rounds_after(self, round: int) -> List[int]:
        """For resume: delete the rewards and checkpoints of rounds after ``round`` (they belong
        to a timeline the checkpoint does not know) and temporaries left by a killed writer.
        Returns the rounds whose reward files were dropped."""
        dropped = [r for r in self.rounds() if r > round]
        for r in dropped:
            self.fs.delete_file(self._round_path(r))
        for r in self._checkpoint_rounds():
            if r > round:
                self.fs.delete_file(self._checkpoint_path(r))
        for folder in ("rewards", "checkpoints", ""):
            self._delete_temporaries(folder)
        return dropped

    def _round_path(self, round: int) -> str:
        return self.path("rewards", f"round-{round:06d}.parquet")

    # -- checkpoints ----------------------------------------------------------------------

    def save_checkpoint(self, state: Dict[str, Any], round: int) -> None:
        """torch.save ``state`` (plus its ``round``) to checkpoints/round-{round:06d}.pt atomically,
        then keep the newest :data:`KEEP_CHECKPOINTS`; older ones go only once the new one is in place.

        ``state`` may hold only what ``torch.load(weights_only=True)`` loads: tensors, int, float,
        bool, complex, str, bytes, None, dict, OrderedDict, list, tuple, set, torch.Size, dtype and
        device. Numpy arrays and numpy scalars are refused (TypeError, nothing written): convert
        them to tensors or Python numbers first.
        """
        if state.get("round", round) != round:
            raise ValueError(f"state['round'] is {state['round']}, saving as round {round}")
        state = {**state, "round": round}
        _check_loadable(state, "state")
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.fs.create_dir(self.path("checkpoints"), recursive=True)
        self._write_bytes(self._checkpoint_path(round), buffer.getvalue())
        kept = [r for r in self._checkpoint_rounds() if r <= round][-KEEP_CHECKPOINTS:]
        for r in self._checkpoint_rounds():
            if r not in kept:
                self.fs.delete_file(self._checkpoint_path(r))

    def load_checkpoint(self) -> Optional[Dict[str, Any]]:
        """The newest checkpoint that loads (on the CPU; move tensors where they belong), with its
        ``round``; an unreadable newer one is skipped with a warning. None when there is none."""
        rounds = self._checkpoint_rounds()
        for r in reversed(rounds):
            path = self._checkpoint_path(r)
            try:
                return torch.load(io.BytesIO(self._read_bytes(path)), map_location="cpu", weights_only=True)
            except Exception as err:  # any failure to load means: this file is not a checkpoint
                warnings.warn(f"{self.show(path)}: unreadable checkpoint ({_first_line(err)}); "
                              "trying the previous one", RuntimeWarning, stacklevel=2)
        if rounds:
            raise self._error(f"none of the {len(rounds)} checkpoints can be loaded", self.path("checkpoints"))
        return None

    def _checkpoint_rounds(self) -> List[int]:
        return sorted(int(m.group(1)) for m in self._matching("checkpoints", CHECKPOINT_FILE))

    def _checkpoint_path(self, round: int) -> str:
        return self.path("checkpoints", f"round-{round:06d}.pt")

    # -- derive stage: candidates and winner ----------------------------------------------

    def write_candidates(self, frame: pd.DataFrame) -> None:
        """candidates.parquet, atomically, sorted by rank; ranks must be 1..n."""
        table = self._table(frame, CANDIDATE_SCHEMA, "candidates")
        ranks = sorted(table["rank"].to_pylist())
        if ranks != list(range(1, len(ranks) + 1)):
            raise self._error(f"candidate ranks must be 1..{len(ranks)}, got {ranks}")
        bad = set(table["source"].to_pylist()) - set(CANDIDATE_SOURCES)
        if bad:
            raise self._error(f"candidate source must be one of {', '.join(CANDIDATE_SOURCES)}, got {sorted(bad)}")
        table = table.sort_by("rank")
        with atomic_output(self.fs, self.path("candidates.parquet")) as stream:
            pq.write_table(table, stream)

    def read_candidates(self) -> Optional[pd.DataFrame]:
        path = self.path("candidates.parquet")
        if self._kind(path) != pafs.FileType.File:
            return None
        return self._read_parquet(path).to_pandas().sort_values("rank").reset_index(drop=True)

    def write_winner(self, genotype: Genotype) -> None:
        self._write_bytes(self.path("winner.json"), genotype.to_json().encode())

    def read_winner(self) -> Optional[Genotype]:
        path = self.path("winner.json")
        if self._kind(path) != pafs.FileType.File:
            return None
        try:
            return from_json(self._read_bytes(path).decode("utf-8", errors="replace"))
        except GenotypeError as err:
            raise self._error(str(err), path) from None

    # -- ranking --------------------------------------------------------------------------

    def top_k(self, k: Optional[int] = None) -> pd.DataFrame:
        """The best genotypes, ranks from 1: from candidates.parquet when the derive stage wrote it,
        else from the rewards log by canonical genotype (mean reward of its ``ok`` rows, ties by key).

        Columns: :data:`TOP_K_COLUMNS`, then, from candidates: val_accuracy, val_loss,
        search_mean_reward, params; from the log: best_reward, first_round. ``reward`` is what
        ranks; ``count`` the number of successful search evaluations of the genotype.
        """
        if k is not None and k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.check()
        candidates = self.read_candidates()
        ranked = _rank_candidates(candidates) if candidates is not None else self.rank_rewards()
        return ranked.head(k).reset_index(drop=True) if k is not None else ranked

    def genotype_at_rank(self, rank: int) -> Genotype:
        """The rank-``rank`` genotype with metadata {run_id, rank, reward, count, source}."""
        ranked = self.top_k()
        if not 1 <= rank <= len(ranked):
            raise self._error(f"rank {rank} out of range: the run has {len(ranked)} ranked "
                              f"genotype{'s' if len(ranked) != 1 else ''} (ranks 1..{len(ranked)})")
        row = ranked.iloc[rank - 1]
        return from_key(row["genotype"]).with_metadata(
            run_id=self.run_id, rank=int(rank), reward=float(row["reward"]), count=int(row["count"]),
            source=str(row["source"]))

    def rank_rewards(self) -> pd.DataFrame:
        """Genotypes ranked by the mean search reward of their ``ok`` rows (ties by key)."""
        log = self.read_rewards()
        if log.empty:
            raise self._error("no rounds yet: the search has not finished its first round")
        ok = log[log["status"] == "ok"]
        if ok.empty:
            raise self._error(f"no successful evaluation yet ({len(log)} rows, none with status 'ok')")
        keys = {key: self._canonical_key(key) for key in log["genotype"].unique()}
        log = log.assign(genotype=log["genotype"].map(keys))
        first_round = log.groupby("genotype")["round"].min()
        stats = log[log["status"] == "ok"].groupby("genotype")["reward"].agg(["mean", "size", "max"])
        ranked = pd.DataFrame({
            "genotype": stats.index, "reward": stats["mean"].to_numpy(), "count": stats["size"].to_numpy(),
            "best_reward": stats["max"].to_numpy(), "first_round": first_round[stats.index].to_numpy(),
        })
        ranked = ranked.sort_values(["reward", "genotype"], ascending=[False, True], kind="mergesort")
        ranked = ranked.reset_index(drop=True)
        ops = pd.DataFrame([from_key(key).ops for key in ranked["genotype"]], columns=list(DECISION_NAMES))
        ranked = pd.concat([ranked, ops], axis=1).assign(rank=range(1, len(ranked) + 1), source="search_log")
        return ranked[TOP_K_COLUMNS + ["best_reward", "first_round"]]

    def _canonical_key(self, key: str) -> str:
        try:
            return from_key(key).key
        except GenotypeError as err:
            raise self._error(f"rewards log holds an invalid genotype: {err}", self.path("rewards")) from None

    # -- stage 2 and the report -----------------------------------------------------------

    def write_retrain(self, frame: pd.DataFrame) -> None:
        """retrain.parquet, atomically, one row per trial, sorted by kind, search rank, name and seed."""
        table = self._table(frame, RETRAIN_SCHEMA, "retrain")
        bad = set(table["kind"].to_pylist()) - set(RETRAIN_KINDS)
        if bad:
            raise self._error(f"retrain kind must be one of {', '.join(RETRAIN_KINDS)}, got {sorted(bad)}")
        table = table.sort_by([("kind", "descending"), ("search_rank", "ascending"), ("name", "ascending"),
                               ("seed", "ascending")])
        with atomic_output(self.fs, self.path("retrain.parquet")) as stream:
            pq.write_table(table, stream)

    def read_retrain(self) -> Optional[pd.DataFrame]:
        """retrain.parquet as written, or None before stage 2 has finished. Integer columns stay
        integers (pandas' nullable types), also where a trial that did not finish left them null."""
        path = self.path("retrain.parquet")
        if self._kind(path) != pafs.FileType.File:
            return None
        nullable = {pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype()}
        return self._read_parquet(path).to_pandas(types_mapper=nullable.get)

    def stage2_storage(self) -> tuple[str, Optional[pafs.FileSystem]]:
        """Where Ray Tune keeps stage 2's experiments (``<out>/tune``) and the filesystem to pass it:
        None for a local run directory, so Tune writes there directly; pyarrow's for a URI."""
        path = self.path(STAGE2_FOLDER)
        return path, None if isinstance(self.fs, pafs.LocalFileSystem) else self.fs

    def write_stage2_plan(self, plan: Dict[str, Any]) -> None:
        """tune/plan.json: what stage 2 trains, kept so that a resumed stage 2 knows it."""
        self.fs.create_dir(self.path(STAGE2_FOLDER), recursive=True)
        self._write_bytes(self.path(STAGE2_FOLDER, "plan.json"), (json.dumps(plan, indent=2) + "\n").encode())

    def read_stage2_plan(self) -> Optional[Dict[str, Any]]:
        path = self.path(STAGE2_FOLDER, "plan.json")
        if self._kind(path) != pafs.FileType.File:
            return None
        try:
            plan = json.loads(self._read_bytes(path))
        except ValueError as err:
            raise self._error(f"malformed JSON: {_first_line(err)}", path) from None
        if not isinstance(plan, dict):
            raise self._error(f"expected an object, got {type(plan).__name__}", path)
        return plan

    def write_report_file(self, name: str, data: bytes) -> str:
        """report/<name>, atomically; returns its path."""
        if "/" in name or name.startswith(TEMPORARY_PREFIX):
            raise ValueError(f"a report file name is one plain file name, got {name!r}")
        self.fs.create_dir(self.path(REPORT_FOLDER), recursive=True)
        path = self.path(REPORT_FOLDER, name)
        self._write_bytes(path, data)
        return path

    def remove_report_file(self, name: str) -> None:
        path = self.path(REPORT_FOLDER, name)
        if self._kind(path) == pafs.FileType.File:
            self.fs.delete_file(path)

    # -- storage --------------------------------------------------------------------------

    def _kind(self, path: str) -> pafs.FileType:
        return self.fs.get_file_info(path).type

    def _matching(self, folder: str, pattern: re.Pattern) -> Iterator[re.Match]:
        selector = pafs.FileSelector(self.path(folder), allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            match = pattern.match(info.base_name)
            if match and info.type == pafs.FileType.File:
                yield match

    def _delete_temporaries(self, folder: str) -> None:
        selector = pafs.FileSelector(self.path(folder) if folder else self.root, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.base_name.startswith(TEMPORARY_PREFIX) and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)

    def _read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_file(path) as stream:
            return stream.read()

    def _read_parquet(self, path: str, columns: Optional[List[str]] = None) -> pa.Table:
        try:
            return pq.read_table(path, filesystem=self.fs, columns=columns)
        except (pa.ArrowException, OSError) as err:
            raise self._error(f"corrupt Parquet file: {_first_line(err)}", path) from None

    def _write_bytes(self, path: str, data: bytes) -> None:
        with atomic_output(self.fs, path) as stream:
            stream.write(data)

    def _table(self, frame: pd.DataFrame, schema: pa.Schema, what: str) -> pa.Table:
        try:
            return table_from_frame(frame, schema)
        except ValueError as err:
            raise self._error(f"{what}: {err}") from None


def open_filesystem(out: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) of a local path or a filesystem URI: pyarrow's own schemes (file, s3,
    gs, hdfs, ...) first, then any protocol of an installed fsspec implementation (memory, az, ...)."""
    if "://" not in out:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(out))
    try:
        return pafs.FileSystem.from_uri(out)
    except (pa.ArrowException, OSError) as err:
        reason = _first_line(err)
    try:
        import fsspec  # optional: pyarrow alone covers the usual stores
        fs, path = fsspec.core.url_to_fs(out)
    except (ImportError, ValueError, OSError):
        raise RunDirError(f"{out}: unsupported location: {reason}") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


@contextmanager
def atomic_output(fs: pafs.FileSystem, path: str) -> Iterator[pa.NativeFile]:
    """A stream whose content appears at ``path`` only when the block ends without an error:
    it is written to a hidden temporary name in the same folder, then renamed over ``path``."""
    folder, name = path.rsplit("/", 1)
    temporary = f"{folder}/{TEMPORARY_PREFIX}{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with fs.open_output_stream(temporary) as stream:
            yield stream
        fs.move(temporary, path)
    except BaseException:
        if fs.get_file_info(temporary).type != pafs.FileType.NotFound:
            fs.delete_file(temporary)
        raise


def write_file_atomic(target: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to a local path or URI; an existing file is replaced only on success."""
    fs, path = open_filesystem(str(target))
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        raise RunDirError(f"{target}: is a directory")
    folder = path.rsplit("/", 1)[0] or "/"
    # Object stores have no folders to check; a local one must exist (we do not guess and make it).
    if isinstance(fs, pafs.LocalFileSystem) and fs.get_file_info(folder).type != pafs.FileType.Directory:
        raise RunDirError(f"{target}: cannot write: folder {folder} does not exist")
    try:
        with atomic_output(fs, path) as stream:
            stream.write(data)
    except OSError as err:
        raise RunDirError(f"{target}: cannot write: {_first_line(err)}") from None


def table_from_frame(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame``'s columns as ``schema`` says, in its order; missing, unknown or unconvertible
    columns raise ValueError naming them. Floats keep NaN as NaN (not null); timestamps are
    floored to microseconds in UTC (naive ones are taken as UTC)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    unknown = [str(name) for name in frame.columns if name not in schema.names]
    if unknown:
        raise ValueError(f"unknown columns: {', '.join(unknown)} (add them to the schema first)")
    arrays = []
    for field in schema:
        column = frame[field.name]
        if pa.types.is_timestamp(field.type):
            column = pd.to_datetime(column, utc=True).dt.floor("us")
        try:
            arrays.append(pa.array(column, type=field.type, from_pandas=not pa.types.is_floating(field.type)))
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise ValueError(f"column {field.name!r} is not {field.type}: {_first_line(err)}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


def _rank_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    ranked = candidates.rename(columns={"search_count": "count"})
    return ranked[TOP_K_COLUMNS + ["val_accuracy", "val_loss", "search_mean_reward", "params"]]


def _check_loadable(value: Any, where: str) -> None:
    """Refuse, naming the key, what ``torch.load(weights_only=True)`` would not load back."""
    kind = type(value)
    if kind in (dict, OrderedDict):
        for key, item in value.items():
            _check_loadable(key, f"{where} key {key!r}")
            _check_loadable(item, f"{where}[{key!r}]")
    elif kind in (list, tuple, set):
        for index, item in enumerate(value):
            _check_loadable(item, f"{where}[{index}]")
    elif kind not in _CHECKPOINT_LEAVES:
        raise TypeError(f"{where}: {kind.__module__}.{kind.__qualname__} cannot be loaded with "
                        "weights_only=True; convert it to a tensor or a Python number/list")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
