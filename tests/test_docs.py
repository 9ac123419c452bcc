"""The documentation against the repository: links, the configuration reference, and the import layering.

- Every relative link and every ``benchmarks/results/...`` path named in README.md, benchmarks/README.md
  and docs/*.md exists (a link to a Markdown heading: that heading too), except the few files that
  are being produced (``BEING_WRITTEN``).
- docs/configuration.md lists exactly the fields of the search config (SearchConfig, EvaluatorConfig,
  SharedTrainingConfig), the controller presets (ControllerConfig), the dataset options and stage 2's
  settings (Stage2Settings, StandaloneConfig), each with its default: a key added or removed without
  its line there fails here.
- The project's own packages have no import cycle, between modules or between packages.
- docs/reliability.md's count of bad inputs is that of tests/test_bad_input.py.

Static reading only: no Ray, nothing run.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
# Named by the docs before it exists; the check tolerates its absence.
BEING_WRITTEN = {
    "benchmarks/results/gpu_suite.json",  # what a GPU run of gpu_suite.py writes (docs/gpu_run.md); none yet
}
PACKAGES = ("controller", "evaluator", "search", "searchspace", "rundir", "stage2", "reporting")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
RESULTS_PATH = re.compile(r"benchmarks/results/[A-Za-z0-9_./*-]*")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def strip_code_blocks(text: str) -> str:
    """The text without fenced code blocks (their brackets are not links)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text.replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    text = strip_code_blocks(path.read_text())
    found: Set[str] = set(HTML_ANCHOR.findall(text))
    seen: Dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def relative(path: Path) -> str:
    """``path`` relative to the repository (links are not followed), else as given."""
    path = Path(os.path.normpath(path))
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def links(doc: Path) -> Iterator[str]:
    for target in LINK.findall(strip_code_blocks(doc.read_text())):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            yield target


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: relative(p))
def test_every_relative_link_exists(doc):
    broken = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        path = doc.parent / file_part if file_part else doc
        if relative(path) in BEING_WRITTEN:
            continue
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no such heading in {relative(path)})")
    assert not broken, f"{relative(doc)}: broken links: {'; '.join(broken)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: relative(p))
def test_every_results_path_named_exists(doc):
    missing = []
    for named in sorted(set(RESULTS_PATH.findall(doc.read_text()))):
        named = named.rstrip(".")
        if named in BEING_WRITTEN:
            continue
        if "*" in named:
            if not list(ROOT.glob(named)):
                missing.append(named)
        elif not (ROOT / named).exists():
            missing.append(named)
    assert not missing, f"{relative(doc)} names results that do not exist: {', '.join(missing)}"


# -- docs/configuration.md ----------------------------------------------------------------------------


def cells(line: str) -> List[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def first_code(cell: str) -> str:
    match = re.match(r"`([^`]*)`", cell)
    assert match, f"configuration.md: {cell!r} does not start with a `code` value"
    return match.group(1)


def documented() -> Dict[str, List[List[str]]]:
    """The table rows of configuration.md (cells, header and rule left out) under each ``##`` heading."""
    sections: Dict[str, List[List[str]]] = {}
    heading = ""
    for line in strip_code_blocks((ROOT / "docs" / "configuration.md").read_text()).splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = []
        elif line.startswith("|") and heading and not re.match(r"\|\s*-", line):
            row = cells(line)
            if row[0].startswith("`"):  # a header row's first cell is plain text
                sections[heading].append(row)
    return sections


def value(text: str) -> Any:
    """A documented default as YAML; a number written as a string by YAML 1.1 (``1e-4``) as a float."""
    parsed = yaml.safe_load(text)
    if isinstance(parsed, str):
        try:
            return float(parsed)
        except ValueError:
            return parsed
    return parsed


def plain(default: Any) -> Any:
    return list(default) if isinstance(default, tuple) else default


def defaults_of(cls: type, instance: Any = None, prefix: str = "", skip: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """Each field of ``cls`` as ``prefix + name`` with its default (``instance``'s value where given)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if instance is not None:
            default = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        else:
            default = f.default_factory()  # type: ignore[misc]
        out[prefix + f.name] = plain(default)
    return out


def search_keys() -> Dict[str, Any]:
    from evaluator.config import EvaluatorConfig
    from evaluator.training import SharedTrainingConfig
    from search.config import SearchConfig
    from search.objective import ObjectiveConfig

    search_defaults = defaults_of(SearchConfig, skip=("evaluator", "objective"))
    evaluator = SearchConfig.__dataclass_fields__["evaluator"].default_factory()  # before __post_init__ fills seed
    return {**search_defaults, **defaults_of(ObjectiveConfig, ObjectiveConfig(), "objective."),
            **defaults_of(EvaluatorConfig, evaluator, "evaluator.", skip=("training",)),
            **defaults_of(SharedTrainingConfig, evaluator.training, "evaluator.training.")}


def check_table(rows: List[List[str]], expected: Dict[str, Any], what: str, column: int = 1) -> None:
    keys = [first_code(row[0]) for row in rows]
    assert len(keys) == len(set(keys)), f"{what}: a key is listed twice"
    missing, extra = sorted(set(expected) - set(keys)), sorted(set(keys) - set(expected))
    assert not missing and not extra, (f"{what} in docs/configuration.md: undocumented {missing}, "
                                       f"documented but not in the code {extra}")
    wrong = {key: (row[column], expected[key]) for key, row in zip(keys, rows)
             if value(first_code(row[column])) != expected[key]}
    assert not wrong, f"{what}: documented default against the code's: {wrong}"


def test_the_search_config_is_documented_key_by_key():
    check_table(documented()["The search config"], search_keys(), "the search config")


def test_the_controller_presets_are_documented_field_by_field():
    from controller.presets import PRESETS, ControllerConfig

    rows = documented()["Controller settings"]
    for column, name in ((1, "sase"), (2, "enas")):
        check_table(rows, defaults_of(ControllerConfig, PRESETS[name], "controller."), f"the {name} preset", column)


def test_the_dataset_options_are_documented():
    from evaluator.data import DATASETS

    rows = documented()["Dataset options"]
    listed = {(first_code(row[0]), first_code(row[1])): value(first_code(row[2])) for row in rows}
    expected = {(name, option): plain(default) for name in DATASETS.names()
                for option, default in DATASETS.options(name).items()}
    assert set(listed) == set(expected), (f"dataset options: undocumented {sorted(set(expected) - set(listed))}, "
                                          f"not in the code {sorted(set(listed) - set(expected))}")
    wrong = {key: (listed[key], expected[key]) for key in expected if listed[key] != expected[key]}
    assert not wrong, f"dataset options: documented default against the code's: {wrong}"


def test_stage_2_settings_are_documented():
    from evaluator.standalone import StandaloneConfig
    from stage2.settings import Stage2Settings

    sections = documented()
    check_table(sections["Stage 2"], defaults_of(Stage2Settings), "Stage2Settings")
    check_table(sections["Stage 2's training recipe"], defaults_of(StandaloneConfig), "StandaloneConfig")


# -- import cycles --------------------------------------------------------------------------------------


def project_modules() -> Dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The project modules ``name`` imports anywhere in its file (functions included): the module
    itself for ``import a.b``, and ``a.b.c`` or else ``a.b`` for ``from a.b import c``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        found.update(t for t in map(nearest, targets) if t and t != name)
    return found


def cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One cycle of ``graph`` as a list of nodes (first repeated last), or [] when it has none."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


@pytest.fixture(scope="module")
def module_graph() -> Dict[str, Set[str]]:
    modules = project_modules()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def test_the_import_reader_sees_the_project(module_graph):
    assert len(module_graph) > 40 and "search.loop" in module_graph
    assert "evaluator.config" in module_graph["search.config"]


def test_no_module_imports_itself_through_others(module_graph):
    found = cycle(module_graph)
    assert not found, f"import cycle: {' -> '.join(found)}"


def test_no_package_imports_itself_through_others(module_graph):
    packages: Dict[str, Set[str]] = {package: set() for package in PACKAGES}
    for name, targets in module_graph.items():
        top = name.split(".")[0]
        packages[top].update(t.split(".")[0] for t in targets if t.split(".")[0] != top)
    found = cycle(packages)
    assert not found, f"import cycle between packages: {' -> '.join(found)}"


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


# -- docs/reliability.md's count of bad inputs ----------------------------------------------------------


def entries(node: ast.Dict) -> int:
    """The entries of a dict literal: its keys, and for ``**{... for ... in [literal list]}`` the list's length."""
    count = 0
    for key, item in zip(node.keys, node.values):
        if key is not None:
            count += 1
        elif (isinstance(item, ast.DictComp) and len(item.generators) == 1
              and isinstance(item.generators[0].iter, (ast.List, ast.Tuple))):
            count += len(item.generators[0].iter.elts)
        else:
            raise AssertionError(f"tests/test_bad_input.py line {item.lineno}: cannot count this ** entry statically")
    return count


def test_the_bad_input_count_is_the_test_files():
    tree = ast.parse((ROOT / "tests" / "test_bad_input.py").read_text())
    sizes = {target.id: entries(node.value) for node in tree.body if isinstance(node, ast.Assign)
             and isinstance(node.value, ast.Dict) for target in node.targets if isinstance(target, ast.Name)}
    cli, processes, calls = sizes["CLI_CASES"], sizes["SUBPROCESS_CASES"], sizes["PYTHON_CASES"]
    stated = (f"tries {cli + processes + calls} bad inputs ({cli} command lines in-process, {processes} as "
              f"processes, {calls}\ncalls")
    text = (ROOT / "docs" / "reliability.md").read_text()
    assert " ".join(stated.split()) in " ".join(text.split()), f"docs/reliability.md should say: {stated!r}"
