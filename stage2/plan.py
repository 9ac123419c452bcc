"""The plan of a stage 2: which genotypes and baselines it trains, with which settings (JSON-ready)."""
from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Sequence

from evaluator.latency import predict_ms
from evaluator.standalone import StandaloneConfig
from rundir import RunDir
from search.config import SearchConfig, saved_config
from searchspace import KNOWN
from searchspace.known import KNOWN_COMBINE
from stage2.settings import (DEFAULT_BASELINES, DEFAULT_K, DEFAULT_SEEDS, PER_TRIAL, RACE_BASELINES, RACE_FIELDS,
                             Stage2Error, Stage2Settings)


def run_settings(rundir: RunDir) -> SearchConfig:
    """The run's config.yaml as a SearchConfig (stage 2 takes its data and network settings)."""
    return saved_config(rundir.read_config())


def standalone_settings(config: SearchConfig, epochs: Optional[int], overrides: Dict[str, Any]) -> Dict[str, Any]:
    """StandaloneConfig fields from the run's evaluator config; the data seed is the search's, so the
    splits are the ones the search saw. Optimisation keeps StandaloneConfig's recipe."""
    evaluator = config.evaluator
    known = {f.name for f in fields(StandaloneConfig)}
    bad = sorted(set(overrides) - known) + sorted(set(overrides) & set(PER_TRIAL))
    if bad:
        raise Stage2Error(f"cannot override StandaloneConfig field {bad[0]!r}; valid: "
                          f"{', '.join(sorted(known - set(PER_TRIAL)))}")
    values = {"arch": evaluator.arch, "dataset": evaluator.dataset, "data_dir": evaluator.data_dir,
              "download": evaluator.download, "data_seed": evaluator.data_seed,
              "dataset_options": dict(evaluator.dataset_options), "reduction": evaluator.reduction,
              "gate_bias": evaluator.gate_bias, "channels_last": evaluator.channels_last,
              "eval_batch_size": evaluator.val_batch_size, **overrides}
    if epochs is not None:
        values["epochs"] = epochs
    standalone = asdict(StandaloneConfig(**values))  # checks epochs and the like
    return {k: v for k, v in standalone.items() if k not in PER_TRIAL}


def candidate_entries(rundir: RunDir, k: Optional[int], combine: str) -> Dict[str, Dict[str, Any]]:
    """The top-k genotypes as plan entries, labelled ``rank-R``."""
    ranked = rundir.top_k()
    if k is not None and k > len(ranked):
        raise Stage2Error(f"-k {k} is more than the run has: {len(ranked)} ranked genotype"
                          f"{'s' if len(ranked) != 1 else ''} in {rundir.show(rundir.root)}")
    entries = {}
    for row in ranked.head(k if k is not None else DEFAULT_K).itertuples():
        entries[f"rank-{row.rank}"] = {"kind": "candidate", "name": f"rank-{row.rank}", "search_rank": int(row.rank),
                                       "genotype": row.genotype, "attention": row.genotype, "combine": combine,
                                       "search_reward": float(row.reward), "source": str(row.source)}
    return entries


def baseline_entries(names: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """Known modules by name; ``combine`` None keeps each one's published rule (BAM: parallel)."""
    return {name: {"kind": "baseline", "name": name, "search_rank": None, "genotype": KNOWN[name].key,
                   "attention": name, "combine": None, "search_reward": None, "source": "known"}
            for name in dict.fromkeys(names)}


def is_raced(candidate: Dict[str, Any], known: Dict[str, Dict[str, Any]]) -> bool:
    """Whether a known module in ``known`` trains the same network as ``candidate`` (ops and combine rule);
    that module's entry then notes the candidate's search rank."""
    for name, entry in known.items():
        if entry["genotype"] == candidate["genotype"] and KNOWN_COMBINE.get(name, "sequential") == candidate["combine"]:
            entry["search_rank"] = candidate["search_rank"]
            return True
    return False


def predict_latencies(rundir: RunDir, entries: Dict[str, Dict[str, Any]]) -> None:
    """Each entry's latency at batch 1 predicted from the run's latency table (a search whose objective
    weighs latency has one), to set beside what stage 2 measures; None without a table."""
    table = rundir.read_latency_table()
    for name, entry in entries.items():
        rule = entry["combine"] or KNOWN_COMBINE.get(name, "sequential")
        entry["predicted_latency_ms"] = predict_ms(table, entry["genotype"], 1, rule) if table and 1 in table["batches"] \
            else None


def make_plan(rundir: RunDir, settings: Stage2Settings) -> Dict[str, Any]:
    """Everything a stage 2 trains and how, as JSON-ready values."""
    config = run_settings(rundir)
    race = asdict(settings.race_settings()) if settings.race else None
    baselines = (RACE_BASELINES if race else DEFAULT_BASELINES) if settings.baselines is None else tuple(settings.baselines)
    seeds = race["max_seeds"] if race else settings.seeds or DEFAULT_SEEDS
    candidates = candidate_entries(rundir, settings.k, config.evaluator.combine) if settings.k != 0 else {}
    known = baseline_entries(baselines)
    if race:  # a searched genotype that is a raced known module would tie with it for ever: race it once
        candidates = {name: entry for name, entry in candidates.items() if not is_raced(entry, known)}
    entries = {**candidates, **known}
    predict_latencies(rundir, entries)
    if race and len(entries) < 2:
        raise Stage2Error(f"the race's pool has {len(entries)} model{'s' if len(entries) != 1 else ''}; it needs "
                          "two or more (the top-K genotypes and the baselines)")
    standalone = standalone_settings(config, settings.epochs, settings.overrides)
    return {
        "run_id": rundir.run_id, "k": sum(e["kind"] == "candidate" for e in entries.values()),
        "baselines": list(dict.fromkeys(baselines)), "seeds": list(range(seeds)), "race": race,
        "epochs": standalone["epochs"],
        "asha": bool(settings.asha), "max_failures": settings.max_failures,
        "cpus_per_trial": settings.cpus_per_trial if settings.cpus_per_trial is not None else config.evaluator.num_cpus,
        "gpus_per_trial": settings.gpus_per_trial if settings.gpus_per_trial is not None else config.evaluator.num_gpus,
        "ray_address": config.ray_address, "standalone": standalone, "entries": entries,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def check_resumable(plan: Dict[str, Any], settings: Stage2Settings, where: str) -> None:
    """A resumed stage 2 trains what it started with, where it started (Tune keeps each trial's
    resources): a flag that asks for something else is refused."""
    asked = {"k": settings.k, "seeds": settings.seeds, "epochs": settings.epochs, "asha": settings.asha,
             "cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial,
             "baselines": list(dict.fromkeys(settings.baselines)) if settings.baselines is not None else None}
    race = plan.get("race") or {}
    if settings.race and not race:
        raise Stage2Error(f"the stage 2 in {where} trains every model on every seed, not a race; drop --race to "
                          f"resume it, or remove {where} to start another")
    asked.update({name: getattr(settings, name) for name in RACE_FIELDS})
    stored = {**plan, "seeds": len(plan["seeds"]), **race}
    if race:
        asked["seeds"] = None  # a race's seed list is its max seeds
    for name, value in asked.items():
        if value is not None and value != stored.get(name):
            raise Stage2Error(f"the stage 2 in {where} was started with {name.replace('_', ' ')} {stored[name]}, "
                              f"not {value}; drop the flag to resume it, or remove {where} to start another")
