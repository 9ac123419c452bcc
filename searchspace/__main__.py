"""``python -m searchspace list [--json]`` and ``python -m searchspace validate FILE``."""
from __future__ import annotations

import sys
from typing import List, Optional

import searchspace
from searchspace import strict_json
from searchspace.cli import ArgumentParser, user_errors_exit_2


def list_space(as_json: bool) -> None:
    if as_json:
        print(strict_json.dumps({
            "search_space": searchspace.SEARCH_SPACE,
            "genotypes": searchspace.space_size(),
            "ops": {r.decision: r.names() for r in searchspace.DECISIONS},
            "descriptions": {r.decision: {n: r.describe(n) for n in r.names()} for r in searchspace.DECISIONS},
            "known": {name: g.key for name, g in searchspace.KNOWN.items()},
        }, indent=2))
        return
    print(f"search space {searchspace.SEARCH_SPACE}")
    for registry in searchspace.DECISIONS:
        print(f"\n{registry.decision} ({len(registry.names())} ops; {registry.contract})")
        for name in registry.names():
            print(f"  {name:<16} {registry.describe(name)}")
    print("\nknown modules")
    for name, genotype in searchspace.KNOWN.items():
        print(f"  {name:<16} {genotype.key}")
    print(f"\n{searchspace.space_size()} distinct canonical genotypes")


def main(argv: Optional[List[str]] = None) -> int:
    parser = ArgumentParser(prog="python -m searchspace", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    listing = commands.add_parser("list", help="the operation sets and the size of the space")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    validate = commands.add_parser("validate", help="check a genotype JSON file")
    validate.add_argument("file")
    args = parser.parse_args(argv)
    return run(args)


@user_errors_exit_2
def run(args) -> int:
    if args.command == "list":
        list_space(args.json)
    else:
        genotype = searchspace.load(args.file)
        print(f"ok: {args.file}: {genotype.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
