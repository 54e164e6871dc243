"""Module sizes and function lengths of a package, from its syntax tree.

Run: ``python tools/code_shape.py [PACKAGE_DIR]`` (default ``tradeassist``). Prints the
distribution of module lengths (lines) and function lengths (lines from ``def`` to the last
line of the body), and the largest of each, so a change's effect on the shape of the code can
be measured before and after. Migrations are left out: they are generated, append-only history.
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path


def _quantiles(values: list[int]) -> str:
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"n={len(ordered)} median={statistics.median(ordered):g} p90={at(0.9)} "
        f"p99={at(0.99)} max={ordered[-1]}"
    )


def shape(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(root.parent))
        modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{name}:{node.lineno} {node.name}"] = (
                    (node.end_lineno or node.lineno) - node.lineno + 1
                )
    return modules, functions


def main(argv: list[str]) -> None:
    root = Path(argv[1] if len(argv) > 1 else "tradeassist").resolve()
    modules, functions = shape(root)
    print(f"modules (lines):   {_quantiles(list(modules.values()))}")
    print(f"functions (lines): {_quantiles(list(functions.values()))}")
    print(f"modules over 400 lines: {sum(1 for n in modules.values() if n > 400)}")
    print(f"functions over 60 lines: {sum(1 for n in functions.values() if n > 60)}")
    print("largest modules:")
    for name, size in sorted(modules.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {size:5d}  {name}")
    print("longest functions:")
    for name, size in sorted(functions.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {size:5d}  {name}")


if __name__ == "__main__":
    main(sys.argv)
