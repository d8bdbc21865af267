"""House rules that a linter does not know, checked on the syntax tree of the portal's apps.

    .venv/bin/python tools/check_static_rules.py     # exits 1 and lists the breaches

1. Every Celery task sets `soft_time_limit` and `time_limit`: a stuck task is stopped, and the
   soft limit gives it the chance to record why (STYLE.md, tasks.py).
2. A task is enqueued only once the rows it names are committed: `delay_on_commit()`, or a
   `.delay()` / `.apply_async()` inside `transaction.on_commit(...)`. A plain `.delay()` inside
   a transaction lets a worker look for a row that is not there yet, or never will be.
3. Every page view declares who may enter: each public function of a views module that takes a
   `request` is decorated with `clinic_role_required(...)` (which keeps the roles on the view
   as `allowed_roles`, the permission matrix's source).

The ISIC Archive enforces rules 1 and 2 with semgrep. Semgrep from PyPI would add some forty
packages to the shared environment (and pin click differently from celery's), so these checks
are a small AST walk instead: same rules, no new dependency.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPS = ("accounts", "patients", "diagnosis", "reports")
TASK_DECORATORS = {"shared_task", "task"}
TASK_LIMITS = ("soft_time_limit", "time_limit")
ENQUEUE_METHODS = {"delay", "apply_async"}
ROLE_DECORATOR = "clinic_role_required"


@dataclass(frozen=True)
class Breach:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def _name(node: ast.AST) -> str:
    """'shared_task' for shared_task, app.task, shared_task(...) and app.task(...)."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def check_tasks(tree: ast.AST, path: str) -> list[Breach]:
    breaches = []
    for function in _functions(tree):
        for decorator in function.decorator_list:
            if _name(decorator) not in TASK_DECORATORS:
                continue
            given = (
                {keyword.arg for keyword in decorator.keywords}
                if isinstance(decorator, ast.Call)
                else set()
            )
            missing = [limit for limit in TASK_LIMITS if limit not in given]
            if missing:
                breaches.append(
                    Breach(
                        path,
                        function.lineno,
                        "task-time-limits",
                        f"task {function.name} sets no {' or '.join(missing)}",
                    )
                )
    return breaches


def check_enqueue(tree: ast.AST, path: str) -> list[Breach]:
    inside_on_commit: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node) == "on_commit":
            for argument in node.args:
                inside_on_commit.update(id(inner) for inner in ast.walk(argument))
    breaches = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ENQUEUE_METHODS
            and id(node) not in inside_on_commit
        ):
            breaches.append(
                Breach(
                    path,
                    node.lineno,
                    "enqueue-on-commit",
                    f".{node.func.attr}() outside transaction.on_commit: use delay_on_commit()",
                )
            )
    return breaches


def check_view_roles(tree: ast.Module, path: str) -> list[Breach]:
    breaches = []
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef) or function.name.startswith("_"):
            continue
        arguments = function.args.posonlyargs + function.args.args
        if not arguments or arguments[0].arg != "request":
            continue
        if not any(_name(d) == ROLE_DECORATOR for d in function.decorator_list):
            breaches.append(
                Breach(
                    path,
                    function.lineno,
                    "view-declares-roles",
                    f"view {function.name} is not decorated with @{ROLE_DECORATOR}(...)",
                )
            )
    return breaches


def _is_views_module(path: Path) -> bool:
    return path.name == "views.py" or path.parent.name == "views"


def check_file(path: Path, root: Path = REPO) -> list[Breach]:
    tree = ast.parse(path.read_text(), filename=str(path))
    shown = str(path.relative_to(root))
    breaches = check_tasks(tree, shown) + check_enqueue(tree, shown)
    if _is_views_module(path):
        breaches += check_view_roles(tree, shown)
    return breaches


def check_tree(root: Path = REPO) -> list[Breach]:
    breaches = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" not in path.parts:
                breaches += check_file(path, root)
    return breaches


def main() -> int:
    breaches = check_tree()
    for breach in breaches:
        print(breach)
    if breaches:
        print(f"{len(breaches)} breach(es) of the house rules (tools/check_static_rules.py)")
        return 1
    print("static rules: tasks have time limits, enqueue on commit, views declare their roles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
