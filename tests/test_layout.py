"""The architecture as the file names promise it: no import cycle (imports inside
functions included), ``web`` on ``qa`` and never the reverse (but for the CLI, the
composition root), small files, and answering without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("qa", "web")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def test_no_import_cycle_even_through_imports_inside_functions():
    g = graph()
    # a package's __init__ re-exports its modules: importing the package is importing them,
    # so edges into a package are edges into what it re-exports, and are followed as such
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g[node]):
            if nxt.startswith(node + "."):
                continue  # a package importing its own modules is not a cycle
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def test_web_depends_on_qa_and_only_the_cli_imports_web():
    g = graph()
    offenders = [
        m for m, deps in g.items() if m.startswith("qa") and any(d.startswith("web") for d in deps)
    ]
    assert offenders == ["qa.cli"]


def test_no_file_is_over_400_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long


def test_answering_never_imports_torch():
    """The service answers with ONNX Runtime only: building the engine and asking imports
    neither torch nor sentence-transformers (they are for the export and for training)."""
    code = (
        "import sys, tempfile, shutil\n"
        "from pathlib import Path\n"
        "from qa.config import Config\n"
        "from qa.engine import Engine\n"
        "d = Path(tempfile.mkdtemp())\n"
        f"shutil.copytree({str(ROOT / 'seeds')!r}, d / 'seeds')\n"
        "e = Engine(Config(seeds_dir=d / 'seeds', index_dir=d / 'index'), notify=lambda m: None)\n"
        "e.ask('Who was instructed to use military force?')\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_shipped_models_stay_within_their_budget():
    """At most 40 MB of model files in the package (qa/models), all of them in git."""
    files = [p for p in (ROOT / "qa" / "models").rglob("*") if p.is_file()]
    assert files and sum(p.stat().st_size for p in files) <= 40_000_000
