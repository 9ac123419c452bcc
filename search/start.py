"""Starting or resuming a search: the config resolved and checked, resume's rule, the run directory made last.

Nothing is written until every check has passed: the settings, ``--out``, the Ray address and the
resources asked of the cluster. On ``--resume`` only the budget and where the run goes (rounds,
address, CPUs and GPUs per worker) may change; any other setting given that differs from the saved
run is refused, each key named with its old and new value.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional

import pandas as pd
import ray

from controller.service import NAMESPACE
from rundir import RunDir, RunDirError
from search.cluster import connect
from search.config import (
    ConfigError,
    SearchConfig,
    build,
    load_config,
    predated_settings,
    saved_config,
    set_dotted,
    to_dict,
    with_defaults,
)
from search.loop import run_id_of, search
from search.preflight import (
    check_address,
    check_dataset_loads,
    check_latency_table,
    check_out,
    check_resources,
    check_settings,
    check_writable,
)
from searchspace.cli import first_line

# What may change when a run is resumed: its budget, where it runs and how long it waits for a lost worker,
# not what its results depend on.
RESUMABLE = ("rounds", "ray_address", "evaluator.num_gpus", "evaluator.num_cpus", "evaluator.collective_timeout_s")
# Keys a resume never compares: where the run is (it is the run) and its id (derived from there).
IDENTITY = ("out", "run_id")
UNSET = "(unset)"


def resolve(config_path: Optional[str], overrides: Dict[str, Any], resume: bool) -> tuple[SearchConfig, RunDir]:
    """The checked config and its run directory, without writing anything."""
    if resume:
        return resume_config(config_path, overrides)
    config = load_config(config_path, overrides)
    if config.out is None:
        config = replace(config, out=f"runs/search-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")
    if config.run_id is None:
        config = replace(config, run_id=run_id_of(config))
    check_out(config.out)
    rundir = RunDir(config.out)
    if rundir.exists() and rundir.rounds():
        raise RunDirError(f"{config.out} already holds a run; use --resume to continue it, or another --out")
    check_settings(config)
    check_latency_table(config)  # a new run's only: a resumed run has its copy
    return config, rundir


def resume_config(config_path: Optional[str], overrides: Dict[str, Any]) -> tuple[SearchConfig, RunDir]:
    """The saved run's config with the resumable overrides applied; other differences are refused."""
    out = overrides.get("out")
    if out is None:
        raise RunDirError("--resume needs --out DIR: the run directory to continue")
    check_out(out)
    rundir = RunDir(out)
    if not rundir.exists():
        raise RunDirError(f"{out}: nothing to resume (no run directory); drop --resume to start a run")
    check_writable(out)
    rundir.read_rewards()  # a damaged round file stops the resume here, named, before anything runs
    stored = rundir.read_config()
    predated = predated_settings(stored)  # a run saved before these keys ran without them
    saved = flatten(to_dict(saved_config(stored)))
    given = given_settings(config_path, overrides, predated)
    # A config file gives every setting: a key it lacks that the saved run has (a preset override) differs too.
    keys = set(given) | (set(saved) if config_path is not None else set())
    changed = [f"{key}: {saved.get(key, UNSET)!r} -> {given.get(key, UNSET)!r}" for key in sorted(keys)
               if key not in RESUMABLE and key not in IDENTITY and saved.get(key, UNSET) != given.get(key, UNSET)]
    if changed:
        raise ConfigError(f"--resume keeps the saved run's settings; these differ: {'; '.join(changed)} "
                          "(only rounds, the Ray address, CPUs/GPUs per worker and the collective timeout may change; "
                          "start a new run with another --out for the rest)")
    resumed = with_defaults(stored, predated)
    for dotted in RESUMABLE:
        if given.get(dotted) is not None:
            set_dotted(resumed, dotted, given[dotted])
    config = build(SearchConfig, resumed)
    check_settings(config)
    return config, rundir


def given_settings(config_path: Optional[str], overrides: Mapping[str, Any],
                   predated: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """What the user asked for, as dotted keys: the whole resolved config when a file is given, else the flags.
    ``predated``: keys the saved run predates; a file that lacks one means what the run did, not the default."""
    if config_path is not None:
        values = flatten(to_dict(load_config(config_path, overrides, defaults=predated)))
        return {key: value for key, value in values.items() if not (key in IDENTITY and value is None)}
    explicit = {dotted: value for dotted, value in overrides.items() if value is not None}
    nested: Dict[str, Any] = {}
    for dotted, value in explicit.items():
        set_dotted(nested, dotted, value)
    normalised = flatten(to_dict(build(SearchConfig, nested)))  # the types the saved config has (2 -> 2.0)
    return {dotted: normalised[dotted] for dotted in explicit}


def flatten(values: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested mappings as dotted keys; lists and tuples compared as lists."""
    flat: Dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        elif isinstance(value, Mapping):
            continue
        else:
            flat[dotted] = list(value) if isinstance(value, tuple) else value
    return flat


def start(config: SearchConfig) -> bool:
    """Join (or start) the run's Ray cluster and check that it can hold the workers; True when local."""
    check_address(config.ray_address)
    try:
        local = connect(config.ray_address, log_to_driver=False, namespace=NAMESPACE)
    except (ConnectionError, RuntimeError) as err:
        raise ConfigError(f"ray_address: cannot join the Ray cluster at {config.ray_address}: {first_line(err)}") from None
    try:
        if local:
            check_dataset_loads(config)  # a local Ray's workers read the data this machine has
        check_resources(config, local, ray.cluster_resources)
    except ValueError:
        if local:
            ray.shutdown()  # the instance this process started goes with the refused run
        raise
    return local


def prepare(config_path: Optional[str], overrides: Dict[str, Any], resume: bool) -> tuple[SearchConfig, RunDir]:
    """The checked config and its run directory, made (config.yaml written) for a new run."""
    config, rundir = resolve(config_path, overrides, resume)
    if not resume:
        rundir.create(to_dict(config))
    return config, rundir


def run_from_command_line(config_path: Optional[str], overrides: Dict[str, Any], resume: bool,
                          progress: bool = True) -> tuple[RunDir, pd.DataFrame]:
    """What ``experiments/run_rl_search.py`` does: every check, the search, then the run's top-5."""
    config, rundir = resolve(config_path, overrides, resume)
    start(config)
    if not resume:
        rundir.create(to_dict(config))
    search(config, rundir, progress=progress)
    return rundir, rundir.top_k(5)

