"""Search the SASE space with an RL controller on Ray; prints the top-5 and where winner.json is.

    python experiments/run_rl_search.py                      # local Ray, bundled dataset, small search
    python experiments/run_rl_search.py --race               # then race the top-5 against every known module
    ray submit cluster.yaml experiments/run_rl_search.py -- --config cifar10

--race runs stage 2's race after the search (``retrain_topk.py DIR --race`` with its defaults):
stand-alone training, seed by seed, until a paired test separates the winner or 12 seeds are run;
winner.json then holds its answer. It takes hours where the search takes minutes; --resume
continues the search and then the race.
"""
from __future__ import annotations

import logging
import sys

from rundir.schemas import separation_note
from search.config import NAMED_CONFIGS, POLICIES
from search.start import run_from_command_line
from searchspace.cli import ArgumentParser, user_errors_exit_2


def parse(argv):
    parser = ArgumentParser(prog="run_rl_search.py", description=__doc__.splitlines()[0])
    shipped = ", ".join(sorted(path.stem for path in NAMED_CONFIGS.glob("*.yaml")))
    parser.add_argument("--config", help=f"a YAML file, or a shipped config by name: {shipped} "
                                         "(default: the built-in small search)")
    parser.add_argument("--out", help="run directory: a path or a filesystem URI (s3://..., gs://...)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--rounds", type=int, help="controller rounds")
    parser.add_argument("--workers", type=int, help="evaluator actors")
    parser.add_argument("--gpus-per-worker", type=float, help="GPUs per evaluator actor (fractions share a GPU)")
    parser.add_argument("--cpus-per-worker", type=float, help="CPUs per evaluator actor (its torch threads)")
    parser.add_argument("--dataset", help="styled-glyphs (default), cluttered-digits, cifar10, cifar100, imagefolder, fake")
    parser.add_argument("--data-dir", help="where the dataset lives (or is cached)")
    parser.add_argument("--download", action="store_true", default=None, help="download cifar10/cifar100 if missing")
    parser.add_argument("--policy", choices=POLICIES,
                        help="the controller: rl (REINFORCE), ppo (clipped PPO) or random (the baseline to beat)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--ray-address", help="a running cluster (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--race", action="store_true",
                        help="after the search, race its top-5 against every known module (stage 2; hours)")
    return parser.parse_args(argv)


@user_errors_exit_2
def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = {
        "out": args.out, "rounds": args.rounds, "workers": args.workers, "policy": args.policy, "seed": args.seed,
        "ray_address": args.ray_address, "evaluator.num_gpus": args.gpus_per_worker,
        "evaluator.num_cpus": args.cpus_per_worker, "evaluator.dataset": args.dataset,
        "evaluator.data_dir": args.data_dir, "evaluator.download": args.download,
    }
    rundir, top = run_from_command_line(args.config, overrides, args.resume, progress=not args.quiet)
    print(top.to_string(index=False))
    print(separation_note(top))
    if args.race:
        race(rundir, args.quiet)
    print(f"winner: {rundir.show(rundir.path('winner.json'))}")
    return 0


def race(rundir, quiet: bool) -> None:
    """Stage 2's race on the finished search, or the rest of an interrupted one; prints its answer."""
    from stage2.retrain import retrain  # Ray Tune, only when asked for
    from stage2.settings import Stage2Settings
    from stage2.summary import describe_winner, format_summary

    result = retrain(rundir, Stage2Settings(race=True, resume=rundir.read_stage2_plan() is not None),
                     verbose=0 if quiet else 1)
    print(format_summary(result.summary))
    print(describe_winner(result.winner))


if __name__ == "__main__":
    sys.exit(main())
