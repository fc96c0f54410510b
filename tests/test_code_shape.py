"""Functions that fit a screen: no function in ``dpsrgan/`` or ``pipelines/`` has more than
:data:`MAX_CODE_LINES` lines of code (its docstring, blank lines and comment-only lines not
counted). A longer function is split into named steps; the test prints every offender."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dpsrgan", "pipelines")
MAX_CODE_LINES = 60


def code_lines(source: str) -> set[int]:
    """Line numbers that hold code: every token's lines, except comments, newlines and
    indentation (so blank and comment-only lines drop out; a multi-line string counts whole)."""
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def _docstring_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return set(range(first.lineno, first.end_lineno + 1))
    return set()


def function_lengths(path: Path) -> list[tuple[str, int]]:
    """``(qualified name, lines of code in its body)`` for every function and method in ``path``."""
    source = path.read_text(encoding="utf-8")
    code = code_lines(source)
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                body = set(range(child.body[0].lineno, child.end_lineno + 1)) - _docstring_lines(child)
                found.append((f"{prefix}{child.name}", len(body & code)))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename=str(path)), "")
    return found


def test_the_counter_skips_docstrings_blank_lines_and_comments(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text(
        'def f(x):\n    """Doc\n    string."""\n\n    # why\n    y = (x +\n         1)  # trailing\n    return y\n'
        "\n\nclass C:\n    def m(self):\n        return 1\n"
    )
    assert function_lengths(path) == [("f", 3), ("C.m", 1)]


def test_no_function_is_longer_than_a_screen():
    offenders = [
        f"{path.relative_to(ROOT)}:{name} ({length} lines)"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for name, length in function_lengths(path)
        if length > MAX_CODE_LINES
    ]
    assert not offenders, f"functions over {MAX_CODE_LINES} lines of code; split them:\n" + "\n".join(offenders)
