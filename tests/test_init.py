"""The package's public face (qa/__init__.py): every exported name resolves, type checkers
see the same names as the lazy imports give, ``import qa`` imports nothing heavy, and the
README's example of the Python API runs as written."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qa

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "qa" / "__init__.py"


def _tree() -> ast.Module:
    return ast.parse(INIT.read_text(encoding="utf-8"))


def type_checking_imports() -> dict[str, str]:
    """What ``if TYPE_CHECKING:`` imports in qa/__init__.py: name -> module (as _EXPORTS)."""
    found: dict[str, str] = {}
    for node in _tree().body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.level == 1
                for alias in statement.names:
                    found[alias.asname or alias.name] = str(statement.module)
    return found


@pytest.mark.parametrize("name", qa.__all__)
def test_every_name_in_all_resolves(name):
    value = getattr(qa, name)
    if name == "__version__":
        assert isinstance(value, str) and value
    else:  # from the module _EXPORTS names, and documented there
        assert value.__module__ == f"qa.{qa._EXPORTS[name]}"
        assert value.__doc__


def test_all_is_the_exports_and_the_version():
    assert qa.__all__ == sorted(["__version__", *qa._EXPORTS])
    assert set(qa.__all__) <= set(dir(qa))


def test_all_is_written_out_as_type_checkers_read_it():
    """A computed ``__all__`` (``[*sorted(_EXPORTS)]``) is not read by mypy or pyright:
    strict mypy then refuses ``from qa import Engine`` as not re-exported."""
    (value,) = [
        node.value
        for node in _tree().body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
    ]
    assert isinstance(value, ast.List)
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)


def test_the_type_checking_imports_and_the_lazy_exports_agree():
    assert type_checking_imports() == qa._EXPORTS


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Engin'"):
        qa.Engin  # noqa: B018


def test_the_package_is_marked_typed():
    assert (ROOT / "qa" / "py.typed").is_file()
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["qa"]


HEAVY = ("torch", "sentence_transformers", "transformers", "numpy", "faiss", "onnxruntime")


def imported_after(code: str) -> list[str]:
    """The heavy modules and qa's modules imported by running ``code`` in a fresh
    interpreter."""
    script = (
        "import sys\n"
        f"{code}\n"
        f"heavy = {HEAVY!r}\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith('qa'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_qa_imports_nothing_heavy():
    assert imported_after("import qa") == ["qa"]


def test_the_base_error_imports_nothing_heavy():
    """``except qa.QAError`` costs no model library."""
    assert imported_after("import qa\nqa.QAError") == ["qa", "qa.errors"]


# --- the README's example ----------------------------------------------------------------


def readme_example() -> tuple[str, str]:
    """The code of the README's section "The Python API", and the output it shows."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## The Python API\n")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    shown = section.split("prints\n\n```\n")[1].split("```")[0]
    return code, shown


def run_readme_example() -> None:
    code, _ = readme_example()
    exec(compile(code, "README.md: The Python API", "exec"), {"__name__": "__main__"})


def test_the_readmes_example_prints_what_the_readme_shows(
    article_index, tmp_path, monkeypatch, capsys
):
    """Run as written, from a folder that holds the seeds and their index, as the clone's
    does (the session's index of the article, copied: not built again)."""
    shutil.copytree(article_index.path.parent / "seeds", tmp_path / "seeds")
    shutil.copytree(article_index.path, tmp_path / "index")
    monkeypatch.chdir(tmp_path)
    run_readme_example()
    assert capsys.readouterr().out == readme_example()[1]


def test_the_readmes_example_says_a_qa_error_in_one_line(tmp_path, monkeypatch):
    """Its ``except qa.QAError`` at work: a folder with no documents."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="^no answer: seeds folder seeds does not exist$"):
        run_readme_example()
