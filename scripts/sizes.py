"""Modules over 250 lines and functions over 50 in shared/, gateway/ and tasks/ (migrations aside).

    python scripts/sizes.py          prints each offender; exits 1 if there is any

A function's size is its lines from ``def`` (or its first decorator) to its last line, as
``ast`` sees them; a nested function counts within its parent and on its own.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "gateway", "tasks")
EXCLUDED = (Path("tasks/migrations"),)
MAX_MODULE_LINES = 250
MAX_FUNCTION_LINES = 50


def modules(root: Path) -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if not any(relative.is_relative_to(excluded) for excluded in EXCLUDED):
                found.append(relative)
    return found


def offenders(root: Path, relative: Path) -> list[str]:
    source = (root / relative).read_text()
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{relative}: {lines} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, filename=str(relative))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = (node.end_lineno or node.lineno) - first + 1
            if size > MAX_FUNCTION_LINES:
                found.append(f"{relative}:{node.lineno}: {node.name}() {size} lines (max {MAX_FUNCTION_LINES})")
    return found


def main() -> int:
    found = [line for relative in modules(ROOT) for line in offenders(ROOT, relative)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
