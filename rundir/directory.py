"""The run directory (docs/formats.md, "The run directory"): the one class that reads and writes it.

``<out>`` is a local path or a filesystem URI that pyarrow understands (``s3://bucket/runs/a``,
``gs://bucket/runs/a``, ``hdfs://...``, ``file:///abs/path``), so a driver on any node of a
cluster reads and writes the same run. All I/O goes through ``pyarrow.fs``.

Every file is written to a temporary name in its own folder, then renamed. The temporary names
start with ``.``, which pyarrow's dataset discovery (and so ``pandas.read_parquet(out/"rewards")``)
skips, so a reader never sees a half-written file, even one left behind by a killed writer.
On a local disk the rename is atomic; on object stores an object only appears once complete.
The guarantee is against a killed process (SIGKILL), not a power loss (nothing is fsynced).

One cohesive class: every file of the run directory is read and written here, so its layout and
its guarantees live in one place. The schemas are in :mod:`rundir.schemas`, the filesystem
handling in :mod:`rundir.files`.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import torch
import yaml

from rundir.checkpoint_state import check_loadable
from rundir.files import TEMPORARY_PREFIX, RunDirError, atomic_output, make_dir, open_filesystem
from rundir.schemas import (
    CANDIDATE_SCHEMA,
    CANDIDATE_SOURCES,
    DERIVE_SCORE_SCHEMA,
    PHASES,
    RETRAIN_KINDS,
    RETRAIN_SCHEMA,
    REWARD_SCHEMA,
    TOP_K_COLUMNS,
    rank_candidates,
    table_from_frame,
    with_unmeasured,
)
from searchspace import DECISION_NAMES
from searchspace.rules import DEFAULT_COMBINE, GATE_BIAS
from searchspace.strict_json import dumps, loads
from searchspace.cli import first_line
from searchspace.genotype import Genotype, GenotypeError, from_json, from_key

REPORT_FOLDER = "report"
STAGE2_FOLDER = "tune"
KEEP_CHECKPOINTS = 2
ROUND_FILE = re.compile(r"^round-(\d{6,})\.parquet$")
CHECKPOINT_FILE = re.compile(r"^round-(\d{6,})\.pt$")


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
            make_dir(self.fs, self.path(folder))
        self._write_bytes(self.path("config.yaml"), yaml.safe_dump(config, sort_keys=False).encode())

    def read_config(self) -> Dict[str, Any]:
        self.check()
        path = self.path("config.yaml")
        if self._kind(path) != pafs.FileType.File:
            raise self._error("no config.yaml in this run directory")
        try:
            config = yaml.safe_load(self._read_bytes(path))
        except yaml.YAMLError as err:
            raise self._error(f"malformed YAML: {first_line(err)}", path) from None
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

    def write_round(self, round_number: int, rows: Union[Sequence[Dict[str, Any]], pd.DataFrame]) -> None:
        """Write rewards/round-{round_number:06d}.parquet atomically, replacing an existing one.

        Every column of :data:`REWARD_SCHEMA` is required except ``timestamp`` (default: now, UTC)
        ``attempts`` (default: 1), ``note`` (default: empty), ``phase`` (default: "search") and the
        objective's ``latency_ms`` and ``macs`` (default: null) and ``objective`` (default: the reward);
        every row's ``round`` must be ``round_number``, every ``phase`` one of :data:`PHASES`.
        """
        frame = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows).copy()
        if frame.empty:
            raise self._error(f"round {round_number}: no rows (a round logs every sample, failed ones too)")
        if "timestamp" not in frame:
            frame["timestamp"] = pd.Timestamp(datetime.now(timezone.utc))
        if "attempts" not in frame:
            frame["attempts"] = 1
        if "note" not in frame:
            frame["note"] = ""
        if "phase" not in frame:
            frame["phase"] = "search"
        for column, dtype in (("latency_ms", "Float64"), ("macs", "Int64")):
            if column not in frame:
                frame[column] = pd.array([pd.NA] * len(frame), dtype=dtype)
        if "objective" not in frame and "reward" in frame:
            frame["objective"] = frame["reward"]
        table = self._table(frame, REWARD_SCHEMA, f"round {round_number}")
        if not all(r == round_number for r in table["round"].to_pylist()):
            raise self._error(f"round {round_number}: rows with another 'round' value")
        if not set(table["phase"].to_pylist()) <= set(PHASES):
            raise self._error(f"round {round_number}: 'phase' must be one of {', '.join(PHASES)}")
        make_dir(self.fs, self.path("rewards"))
        with atomic_output(self.fs, self._round_path(round_number)) as stream:
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
        # Round files written before a column was added lack it: those rows get nulls, and a phase of "search".
        table = pa.concat_tables(tables, promote_options="default")
        frame = table.to_pandas()
        frame["phase"] = frame["phase"].fillna("search") if "phase" in frame else "search"
        return frame.sort_values(["round", "sample"], kind="mergesort").reset_index(drop=True)

    def drop_rounds_after(self, round_number: int) -> List[int]:
        """For resume: delete the rewards and checkpoints of rounds after ``round_number`` (they belong
        to a timeline the checkpoint does not know) and temporaries left by a killed writer.
        Returns the rounds whose reward files were dropped."""
        dropped = [r for r in self.rounds() if r > round_number]
        for r in dropped:
            self.fs.delete_file(self._round_path(r))
        for r in self._checkpoint_rounds():
            if r > round_number:
                self.fs.delete_file(self._checkpoint_path(r))
        for folder in ("rewards", "checkpoints", ""):
            self._delete_temporaries(folder)
        return dropped

    def _round_path(self, round_number: int) -> str:
        return self.path("rewards", f"round-{round_number:06d}.parquet")

    # -- checkpoints ----------------------------------------------------------------------

    def save_checkpoint(self, state: Dict[str, Any], round_number: int) -> None:
        """torch.save ``state`` (plus its ``round``) to checkpoints/round-{round_number:06d}.pt atomically,
        then keep the newest :data:`KEEP_CHECKPOINTS`; older ones go only once the new one is in place.

        ``state`` may hold only what ``torch.load(weights_only=True)`` loads: tensors, int, float,
        bool, complex, str, bytes, None, dict, OrderedDict, list, tuple, set, torch.Size, dtype and
        device. Numpy arrays and numpy scalars are refused (TypeError, nothing written): convert
        them to tensors or Python numbers first.
        """
        if state.get("round", round_number) != round_number:
            raise ValueError(f"state['round'] is {state['round']}, saving as round {round_number}")
        state = {**state, "round": round_number}
        check_loadable(state, "state")
        buffer = io.BytesIO()
        torch.save(state, buffer)
        make_dir(self.fs, self.path("checkpoints"))
        self._write_bytes(self._checkpoint_path(round_number), buffer.getvalue())
        kept = [r for r in self._checkpoint_rounds() if r <= round_number][-KEEP_CHECKPOINTS:]
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
                warnings.warn(f"{self.show(path)}: unreadable checkpoint ({first_line(err)}); "
                              "trying the previous one", RuntimeWarning, stacklevel=2)
        if rounds:
            raise self._error(f"none of the {len(rounds)} checkpoints can be loaded", self.path("checkpoints"))
        return None

    def _checkpoint_rounds(self) -> List[int]:
        return sorted(int(m.group(1)) for m in self._matching("checkpoints", CHECKPOINT_FILE))

    def _checkpoint_path(self, round_number: int) -> str:
        return self.path("checkpoints", f"round-{round_number:06d}.pt")

    # -- derive stage: candidates and winner ----------------------------------------------

    def write_candidates(self, frame: pd.DataFrame) -> None:
        """candidates.parquet, atomically, sorted by rank; ranks must be 1..n. Without ``latency_ms``
        and ``objective`` (the accuracy objective) they are null and the reward."""
        if "objective" not in frame.columns:
            frame = frame.assign(objective=frame["reward"])
        if "latency_ms" not in frame.columns:
            frame = frame.assign(latency_ms=pd.array([pd.NA] * len(frame), dtype="Float64"))
        table = self._table(with_unmeasured(frame, CANDIDATE_SCHEMA), CANDIDATE_SCHEMA, "candidates")
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

    def write_derive_scores(self, frame: pd.DataFrame) -> None:
        """derive_scores.parquet, atomically: the whole-split scores the derive stage has finished so
        far, one row per genotype (schemas.DERIVE_SCORE_SCHEMA)."""
        table = self._table(with_unmeasured(frame, DERIVE_SCORE_SCHEMA), DERIVE_SCORE_SCHEMA, "derive scores")
        with atomic_output(self.fs, self.path("derive_scores.parquet")) as stream:
            pq.write_table(table, stream)

    def read_derive_scores(self, round_number: int) -> pd.DataFrame:
        """The derive stage's finished scores measured with the checkpoint of ``round_number``; empty
        when there are none (a new derive stage, or one after a search continued to more rounds)."""
        path = self.path("derive_scores.parquet")
        frame = pd.DataFrame(columns=DERIVE_SCORE_SCHEMA.names)
        if self._kind(path) == pafs.FileType.File:
            try:
                frame = self._read_parquet(path).to_pandas()
            except RunDirError as err:  # only a cache of work done: the derive stage scores them again
                warnings.warn(f"{err}; the derive stage scores its candidates again", RuntimeWarning, stacklevel=2)
        return frame[frame["round"] == round_number].reset_index(drop=True)

    def write_winner(self, genotype: Genotype) -> None:
        """winner.json, atomically, with the run's block settings unless the genotype has its own."""
        if genotype.block is None:
            genotype = self.with_run_block(genotype)
        self._write_bytes(self.path("winner.json"), genotype.to_json().encode())

    def with_run_block(self, genotype: Genotype) -> Genotype:
        """``genotype`` with the block settings the search used (config.yaml's evaluator.combine and
        gate_bias; the defaults where the run has no config or no such key)."""
        evaluator = {}
        if self._kind(self.path("config.yaml")) == pafs.FileType.File:
            evaluator = self.read_config().get("evaluator") or {}
        return genotype.with_block(combine=evaluator.get("combine", DEFAULT_COMBINE),
                                   gate_bias=evaluator.get("gate_bias", GATE_BIAS))

    def read_winner(self) -> Optional[Genotype]:
        path = self.path("winner.json")
        if self._kind(path) != pafs.FileType.File:
            return None
        try:
            return from_json(self._read_bytes(path).decode("utf-8", errors="replace"))
        except GenotypeError as err:
            raise self._error(str(err), path) from None

    # -- the latency table (a search whose objective weighs latency) ----------------------

    def write_latency_table(self, table: Dict[str, Any]) -> None:
        """latency.json, atomically: measured once, so that a resumed search predicts the same latencies."""
        self._write_bytes(self.path("latency.json"), (dumps(table, indent=2) + "\n").encode())

    def read_latency_table(self) -> Optional[Dict[str, Any]]:
        table = self._read_json_object(self.path("latency.json"))
        if table is not None and table.get("format") != "sase-latency":
            raise self._error("not a latency table (format 'sase-latency')", self.path("latency.json"))
        return table

    # -- ranking --------------------------------------------------------------------------

    def top_k(self, k: Optional[int] = None) -> pd.DataFrame:
        """The best genotypes, ranks from 1: from candidates.parquet when the derive stage wrote it,
        else from the rewards log by canonical genotype (mean reward of its ``ok`` rows, ties by key).

        Columns: :data:`TOP_K_COLUMNS`, then, from candidates: gap_se, val_accuracy, val_loss,
        search_mean_reward, params; from the log: best_reward, first_round. ``reward`` is what
        ranks, ``reward_se`` its standard error as a measurement (NaN where unknown: one reward, or
        a run whose candidates predate ``val_images``); ``gap_se`` the standard error of rank 1's
        reward minus this one's, paired image by image where derive_scores.parquet kept per-image
        figures; ``count`` the number of successful search evaluations of the genotype.
        """
        if k is not None and k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.check()
        candidates = self.read_candidates()
        ranked = rank_candidates(candidates, self._per_image_scores()) if candidates is not None else self.rank_rewards()
        return ranked.head(k).reset_index(drop=True) if k is not None else ranked

    def _per_image_scores(self) -> Optional[pd.DataFrame]:
        """derive_scores.parquet's per-image figures, which pair the candidates' gaps to rank 1; None
        without them (a run from before they were kept, or a damaged file: the gaps are unpaired)."""
        path = self.path("derive_scores.parquet")
        if self._kind(path) != pafs.FileType.File:
            return None
        try:
            table = self._read_parquet(path)
        except RunDirError:
            return None
        if "image_loss" not in table.column_names:
            return None
        return table.select(["genotype", "reward", "image_loss", "image_correct"]).to_pandas()

    def genotype_at_rank(self, rank: int) -> Genotype:
        """The rank-``rank`` genotype with metadata {run_id, rank, reward, count, source}."""
        ranked = self.top_k()
        if not 1 <= rank <= len(ranked):
            raise self._error(f"rank {rank} out of range: the run has {len(ranked)} ranked "
                              f"genotype{'s' if len(ranked) != 1 else ''} (ranks 1..{len(ranked)})")
        row = ranked.iloc[rank - 1]
        return self.with_run_block(from_key(row["genotype"])).with_metadata(
            run_id=self.run_id, rank=int(rank), reward=float(row["reward"]), count=int(row["count"]),
            source=str(row["source"]))

    def rank_rewards(self) -> pd.DataFrame:
        """Genotypes ranked by the mean search reward of their ``ok`` rows (ties by key).

        Once the controller has run a round, only ``search``-phase rows count: warm-up rewards come
        from a younger supernet and would pull down every genotype the fair sampler happened to draw.
        """
        log = self.read_rewards()
        if log.empty:
            raise self._error("no rounds yet: the search has not finished its first round")
        if (log["phase"] == "search").any():
            log = log[log["phase"] == "search"]
        ok = log[log["status"] == "ok"]
        if ok.empty:
            raise self._error(f"no successful evaluation yet ({len(log)} rows, none with status 'ok')")
        keys = {key: self._canonical_key(key) for key in log["genotype"].unique()}
        log = log.assign(genotype=log["genotype"].map(keys))
        # Under an objective that weighs latency the objective ranks; in older logs (and under the
        # accuracy objective, where it is the reward) the reward does.
        weighs_latency = "latency_ms" in log.columns and log["latency_ms"].notna().any()
        log = log.assign(objective=log["objective"] if weighs_latency else log["reward"])
        first_round = log.groupby("genotype")["round"].min()
        ok = log[log["status"] == "ok"].groupby("genotype")
        stats = ok["reward"].agg(["mean", "size", "max", "std"])
        ranked = pd.DataFrame({
            "genotype": stats.index, "reward": stats["mean"].to_numpy(),
            "reward_se": (stats["std"] / stats["size"] ** 0.5).to_numpy(), "count": stats["size"].to_numpy(),
            "best_reward": stats["max"].to_numpy(), "first_round": first_round[stats.index].to_numpy(),
            "objective": ok["objective"].mean()[stats.index].to_numpy(),
        })
        ranked = ranked.sort_values(["objective", "genotype"], ascending=[False, True], kind="mergesort")
        ranked = ranked.reset_index(drop=True)
        ops = pd.DataFrame([from_key(key).ops for key in ranked["genotype"]], columns=list(DECISION_NAMES))
        ranked = pd.concat([ranked, ops], axis=1).assign(rank=range(1, len(ranked) + 1), source="search_log")
        if weighs_latency:
            latency = ok["latency_ms"].mean()
            return ranked[TOP_K_COLUMNS + ["objective", "best_reward", "first_round"]].assign(
                latency_ms=latency[ranked["genotype"]].to_numpy())
        return ranked[TOP_K_COLUMNS + ["best_reward", "first_round"]]

    def _canonical_key(self, key: str) -> str:
        try:
            return from_key(key).key
        except GenotypeError as err:
            raise self._error(f"rewards log holds an invalid genotype: {err}", self.path("rewards")) from None

    # -- stage 2 and the report -----------------------------------------------------------

    def write_retrain(self, frame: pd.DataFrame) -> None:
        """retrain.parquet, atomically, one row per trial, sorted by kind, search rank, name and seed.
        ``round`` and ``predicted_latency_ms`` may be left out: a stage 2 that is not a race has no
        round, a run without a latency table no prediction."""
        if "round" not in frame.columns:
            frame = frame.assign(round=pd.array([pd.NA] * len(frame), dtype="Int32"))
        if "predicted_latency_ms" not in frame.columns:
            frame = frame.assign(predicted_latency_ms=pd.array([pd.NA] * len(frame), dtype="Float64"))
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
        make_dir(self.fs, self.path(STAGE2_FOLDER))
        self._write_bytes(self.path(STAGE2_FOLDER, "plan.json"), (dumps(plan, indent=2) + "\n").encode())

    def read_stage2_plan(self) -> Optional[Dict[str, Any]]:
        return self._read_json_object(self.path(STAGE2_FOLDER, "plan.json"))

    def _read_json_object(self, path: str) -> Optional[Dict[str, Any]]:
        """A JSON object the run directory keeps, or None when the file is not there."""
        if self._kind(path) != pafs.FileType.File:
            return None
        try:
            document = loads(self._read_bytes(path))
        except ValueError as err:
            raise self._error(f"malformed JSON: {first_line(err)}", path) from None
        if not isinstance(document, dict):
            raise self._error(f"expected an object, got {type(document).__name__}", path)
        return document

    def write_report_file(self, name: str, data: bytes) -> str:
        """report/<name>, atomically; returns its path."""
        if "/" in name or name.startswith(TEMPORARY_PREFIX):
            raise ValueError(f"a report file name is one plain file name, got {name!r}")
        make_dir(self.fs, self.path(REPORT_FOLDER))
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
            raise self._error(f"corrupt Parquet file: {first_line(err)}", path) from None

    def _write_bytes(self, path: str, data: bytes) -> None:
        with atomic_output(self.fs, path) as stream:
            stream.write(data)

    def _table(self, frame: pd.DataFrame, schema: pa.Schema, what: str) -> pa.Table:
        try:
            return table_from_frame(frame, schema)
        except ValueError as err:
            raise self._error(f"{what}: {err}") from None
