"""``python -m controller status RUN_ID [--ray-address ADDR] [--json]``: a running search's state.

Attaches to the run's controller service actor (named after the run) on the cluster and prints
its round, the policy's per-decision probabilities and the best genotypes so far.
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional

from searchspace import strict_json
from searchspace.cli import ArgumentParser, UsageError, user_errors_exit_2


def show(status: dict) -> None:
    print(f"round {status['round']}, greedy genotype {status['greedy']}")
    for decision, probabilities in status["probabilities"].items():
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])
        print(f"  {decision:<19}" + "  ".join(f"{name} {p:.2f}" for name, p in ranked[:4]))
    print("best so far (mean reward, count):")
    for row in status["best"]:
        print(f"  {row['mean_reward']:.4f}  {row['count']:>3}  {row['genotype']}")


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="python -m controller", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    status = commands.add_parser("status", help="state of a running search")
    status.add_argument("run_id")
    status.add_argument("--ray-address", default=None, help="the cluster (default: RAY_ADDRESS, else 'auto')")
    status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import ray

    from controller.address import check_reachable
    from controller.service import NAMESPACE, actor_name

    address = args.ray_address or os.environ.get("RAY_ADDRESS") or "auto"
    check_reachable(address)
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError) as err:
        raise UsageError(f"no Ray cluster at {address}: {str(err).splitlines()[0]}") from None
    try:
        service = ray.get_actor(actor_name(args.run_id), namespace=NAMESPACE)
    except ValueError:
        raise UsageError(f"no running search {args.run_id!r} on the cluster at {address}") from None
    state = ray.get(service.status.remote())
    print(strict_json.dumps(state, indent=2)) if args.json else show(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
