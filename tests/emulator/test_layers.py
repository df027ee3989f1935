"""The emulator's layers and seams: imports go one way, mutations act only where they are named.

- The model layer (`emulator.model`) imports nothing of HTTP (no starlette, no uvicorn) and
  no dialect; no emulator module imports the conformance suite (but the command line, which
  sits above both).
- Each profile's catalogue of mutations holds what its dialect can show, and every mutation
  acts through a seam some code hands values through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import emulator
from emulator import Mutation, Mutations, mutations_for
from emulator.model import seams
from schemas import load_profile, profile_names

ROOT = Path(emulator.__file__).parent


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join([*base, node.module] if node.module else base))
            else:
                out.add(node.module or "")
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "model").glob("*.py")), ids=lambda p: p.name)
def test_model_layer_has_no_http_and_no_dialect(path: Path) -> None:
    """A model-layer module MUST NOT import starlette, uvicorn or a dialect."""
    bad = {
        name
        for name in _imports(path)
        if name.split(".")[0] in ("starlette", "uvicorn") or name.startswith(("emulator.dialects", "emulator.http"))
    }
    assert not bad, f"{path.name} imports {sorted(bad)}"


def _library(path: Path) -> bool:
    # The `batchconf` command line (cli.py, _cli/) sits above both packages (DESIGN.md): it
    # reads the suite plugin's option table for `batchconf check --help`.
    return path != ROOT / "cli.py" and "_cli" not in path.relative_to(ROOT).parts


@pytest.mark.parametrize(
    "path", sorted(p for p in ROOT.rglob("*.py") if _library(p)), ids=lambda p: str(p.relative_to(ROOT))
)
def test_emulator_never_imports_the_suite(path: Path) -> None:
    """No emulator module but the command line imports `conformance`, nor the command line."""
    names = _imports(path)
    assert not {n for n in names if n.split(".")[0] == "conformance" or n.startswith(("emulator.cli", "emulator._cli"))}


def test_seam_points_are_used() -> None:
    """Every mutation of every profile acts at a seam the code really hands values through
    (a typo in a point name would make a mutation that does nothing)."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in ROOT.rglob("*.py"))
    used = {
        getattr(seams, name)
        for name in seams.__all__
        if name.isupper() and f"seams.{name}" in source and not name.startswith("WIRE_")
    }
    wire = {f"{getattr(seams, n)}:{d}" for n in ("WIRE_BATCH", "WIRE_LIST", "WIRE_ERROR") for d in emulator.DIALECTS}
    for name in profile_names():
        try:
            catalogue = _catalogue(name)
        except NotImplementedError:
            continue  # a dialect without code (object storage) offers no mutations yet
        for mutation in catalogue:
            assert mutation.point in used | wire, f"{name}: {mutation.name} acts at unknown seam {mutation.point!r}"


def _catalogue(name: str) -> list[Mutation]:
    from emulator.dialects import catalogue_for

    return catalogue_for(load_profile(name))


def test_catalogues_per_dialect() -> None:
    """The openai profile keeps its 38 mutations (request_id_missing among them); ScaiGrid's
    has its own wire's and the model layer's that its profile can show (no two-file,
    finalizing or request_id mutations)."""
    openai = mutations_for("openai")
    scaigrid = mutations_for("scaigrid")
    assert len(openai) == 38 and "request_id_missing" in openai
    assert {
        "result_status_word",
        "results_url_missing",
        "failed_count_wrong",
        "expiry_loses_unfinished",
        "webhook_never_sent",
        "webhook_sent_twice",
        "quota_not_enforced",
    } <= set(scaigrid)
    assert not {"skip_finalizing", "missing_error_file", "http_error_in_output_file", "request_id_missing"} & set(
        scaigrid
    )
    assert not {"result_status_word", "webhook_never_sent"} & set(openai)


def test_mutations_compose_at_one_seam_in_catalogue_order() -> None:
    """Two active mutations at one seam apply in catalogue order; none active leaves values
    alone; unknown names are refused with the known ones listed."""
    trail: list[str] = []
    catalogue = [
        Mutation("first", "", "p", lambda v, **_: trail.append("first") or v + 1),
        Mutation("second", "", "p", lambda v, **_: trail.append("second") or v * 10),
    ]
    m = Mutations(catalogue)
    assert m.apply("p", 1) == 1 and not m.active("p")
    m.enable("second", "first")
    assert m.apply("p", 1) == 20 and trail == ["first", "second"]
    with pytest.raises(ValueError, match="known: \\['first', 'second'\\]"):
        m.enable("third")
    m.clear()
    assert not m.active("p") and m.enabled == []
