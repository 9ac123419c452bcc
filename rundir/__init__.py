"""The run directory: the Parquet log, checkpoints, candidates, the winner, stage 2's rows and the report files.

``RunDir`` (``directory``) reads and writes it; ``schemas`` holds the Parquet columns, ``files``
the filesystem handling (local paths and URIs, atomic writes), ``checkpoint_state`` what a
checkpoint may hold.
"""
from rundir.directory import KEEP_CHECKPOINTS, REPORT_FOLDER, STAGE2_FOLDER, RunDir
from rundir.files import RunDirError, open_filesystem, write_file_atomic
from rundir.schemas import CANDIDATE_SCHEMA, RETRAIN_SCHEMA, REWARD_SCHEMA, TOP_K_COLUMNS, table_from_frame

__all__ = [
    "CANDIDATE_SCHEMA", "KEEP_CHECKPOINTS", "REPORT_FOLDER", "RETRAIN_SCHEMA", "REWARD_SCHEMA", "RunDir", "RunDirError",
    "STAGE2_FOLDER", "TOP_K_COLUMNS", "open_filesystem", "table_from_frame", "write_file_atomic",
]
