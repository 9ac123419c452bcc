"""Every benchmark in one command; then the summary table the README shows.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--table]

--quick: smoke-sized versions of everything, under 10 minutes on a 2-core CPU machine (7 min 42 s
measured, results/run_all_quick_timing.json; its results go to *_quick.json and do not replace
the full ones). The full run takes many hours on such a machine (the stand-alone tables alone are
hours of training); it has not been timed as one command. Each step writes its own JSON to
benchmarks/results/ with the machine, versions and settings.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS

HERE = Path(__file__).parent
# The reward noise issue 15 measured (reward_fidelity.json, common images, BN batch statistics):
# 1.81 / sqrt(2) per sample, sqrt(2.82^2 - 1.28^2) shared by a round (controller_landscapes.py).
MEASURED_NOISE = ["--noise", "0.0128", "--round-noise", "0.0251"]


def steps(quick: bool) -> dict[str, list[str]]:
    """Benchmark name -> its command line, in the order they run (the landscape before its users)."""
    q = ["--quick"] if quick else []
    landscape = RESULTS / ("supernet_landscape_quick.parquet" if quick else "supernet_landscape.parquet")
    suffix = "_quick" if quick else ""
    # quick: fewer seeds and samples; full: held-out seeds 100-119 (the presets were tuned on 0-39)
    sizes = (["--seeds", "5", "--samples", "500", "--budgets", "200", "500", "--random-repeats", "3"]
             if quick else ["--first-seed", "100", "--seeds", "20"])
    synthetic = ["--ablation", "--landscape", "synthetic", "--interaction", "0.5", "1.0", *sizes,
                 *(["--noise", "0.03"] if quick else []), "--out", str(RESULTS / f"controller_ablation{suffix}.json")]
    on_supernet = ["--ablation", "--landscape", str(landscape), *sizes, *MEASURED_NOISE,
                   "--out", str(RESULTS / f"controller_ablation_supernet{suffix}.json")]
    return {
        "evaluator_speed": ["evaluator_speed.py", *q],
        "time_to_accuracy": ["time_to_accuracy.py", *q],
        "supernet_landscape": ["supernet_landscape.py", *q],
        "controller_ablation": ["controller_landscapes.py", *synthetic],
        "controller_ablation_supernet": ["controller_landscapes.py", *on_supernet],
        "ranking_fidelity": ["ranking_fidelity.py", *q],
        **({} if quick else {"standalone_table": ["standalone_table.py"]}),
        "search_outcome": ["search_outcome.py", *q],
        "reward_fidelity": ["reward_fidelity.py", *(q or ["--seeds", "0", "1", "2"])],
        # the RL searches of search_outcome.py, each candidate fine-tuned before scoring, and the control
        **({} if quick else {"finetune_fidelity": ["finetune_fidelity.py"],
                             "finetune_fidelity_scratch": ["finetune_fidelity.py", "--scratch"]}),
        "attention_budget": ["attention_budget.py", *q],
    }


def load(name: str, quick: bool) -> dict | None:
    path = RESULTS / f"{name}{'_quick' if quick else ''}.json"
    return json.loads(path.read_text()) if path.exists() else None


def table(quick: bool) -> str:
    """The README's benchmark table from whatever results exist."""
    rows = ["| benchmark | measured | target |", "| --- | --- | --- |"]
    speed = load("evaluator_speed", quick)
    if speed:
        step = speed["supernet_over_standalone"]
        rows.append(f"| supernet step / stand-alone step (ResNet-20, CPU; as the search runs it) | "
                    f"{step['ratio_mean']:.2f} ({step.get('synced_ratio_mean', float('nan')):.2f}) | <= 1.15 |")
    scaling = load("time_to_accuracy", quick)
    for row in (scaling or {}).get("comparison", {}).get("rows", []):
        if row["workers"] > 1:
            measured = f"{row['wall_time_ratio']:.2f}" if row["reached"] else "not reached"
            rows.append(f"| time to the 1-worker run's final supernet accuracy, {row['workers']} workers / 1 "
                        f"(sync {scaling['settings'].get('sync', 'round')}) | {measured} | <= 0.65 |")
    if speed:
        rows.append(f"| 2 Ray workers / 1 (images/s, 2 cores; secondary: not progress) | "
                    f"{speed['two_workers_over_one']['ratio']:.2f} | >= 1.6 |")
        rows.append(f"| 1 Ray worker / in-process | {speed['ray_worker_over_in_process']['ratio']:.2f} | >= 0.9 |")
    landscape = load("supernet_landscape", quick)
    if landscape:
        s, acc = landscape["settings"], landscape["val_accuracy"]
        rows.append(f"| supernet landscape: {s['genotypes_scored']} genotypes, validation accuracy "
                    f"({s['rounds']} rounds x {s['train_steps_per_round']} steps) | min {100 * acc['min']:.1f}, "
                    f"median {100 * acc['median']:.1f}, max {100 * acc['max']:.1f}, sd {100 * acc['std']:.1f} | - |")
    ablation = load("controller_ablation_supernet", quick)
    for name, result in (ablation or {}).get("landscapes", {}).items():
        if result.get("kind") != "parquet" or "sase" not in result.get("results", {}):
            continue
        noise = ablation["settings"]["noise"][0]
        at500 = result["results"]["sase"][f"noise={noise}"]["500"]
        rows.append(f"| controller `sase` on `{name}`, noise {noise} per sample + "
                    f"{ablation['settings'].get('round_noise', 0)} per round, 500 samples: area ratio / samples to top-1% "
                    f"(x random) | {at500['area_ratio']:.2f} / {at500['samples_to_top1_ratio']:.2f}x | <= 0.7 / reported, not judged (a random run alone scores 0.41x) |")
    fidelity = load("ranking_fidelity", quick)
    if fidelity:
        s = fidelity["settings"]
        dataset = s.get("dataset", "cluttered-digits")  # recorded since issue 13; the data before it
        rows.append(f"| ranking fidelity on {dataset}, Kendall tau ({s['genotypes']} genotypes, {s['seeds']} seeds, "
                    f"{s['epochs']} epochs) | {fidelity['kendall_tau']:.2f} (rho {fidelity['spearman_rho']:.2f}) | >= 0.6 |")
    outcome = load("search_outcome", quick)
    if outcome and "rl_minus_best_known" in outcome:
        s, means = outcome["settings"], outcome["winner_mean_over_search_seeds"]
        known, random = outcome["rl_minus_best_known"], outcome.get("rl_minus_random")
        rows.append(f"| RL winner - best known module ({outcome['best_known']['name']}), stand-alone test accuracy, "
                    f"{s['search_seeds']} search seeds x {s['standalone_seeds']} seeds | {means['rl']:.2f} %, "
                    f"{known['difference']:+.2f} pts | >= 0 |")
        if random:
            rows.append(f"| RL winner - random-search winner, same | {random['difference']:+.2f} pts | > 0 |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", help="run only these benchmarks")
    parser.add_argument("--table", action="store_true", help="print the table of existing results, run nothing")
    args = parser.parse_args()
    if not args.table:
        for name, command in steps(args.quick).items():
            if args.only and name not in args.only:
                continue
            start = time.perf_counter()
            print(f"== {name}: {' '.join(command)}", flush=True)
            done = subprocess.run([sys.executable, str(HERE / command[0]), *command[1:]])
            print(f"== {name}: exit {done.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
            if done.returncode != 0:
                return done.returncode
    print(table(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
