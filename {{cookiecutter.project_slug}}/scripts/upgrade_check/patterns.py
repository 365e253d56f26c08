"""What ruff's rules cannot see, read from each file's syntax tree.

- metadata-db: `create_session`, `provide_session`, `settings.Session` and ORM queries of Airflow's
  models. Airflow 3 tasks have no metadata-DB connection: they fail at runtime.
- sla: `sla=`, `sla_miss_callback=` and `"sla"` in default_args. Airflow 3.3 accepts and ignores
  them (ruff calls them "still works"): no SLA miss is ever reported. Always reported here.
- removed-context-key: `execution_date`, `next_ds`, ... as template names, context keys, task
  parameters or attributes. They are never set on Airflow 3.
- no-logical-date-fallback: `{{ ds }}`, `context["ds"]` and task parameters such as `ds` without
  a default, which fail in runs that have no logical date (see templates.py).
- subdag, airflow-contrib: imports of modules Airflow 3 removed, and SubDagOperator calls.
- schedule-interval: `schedule_interval` as a keyword, a dict key or an attribute.

A finding on a line where ruff already names the same symbol is dropped by the caller (check.py),
except SLAs: ruff rates them a deprecation, but on Airflow 3 they silently do nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scripts.upgrade_check.model import Finding
from scripts.upgrade_check.templates import LOGICAL_DATE_KEYS, REMOVED_KEYS, context_names, looks_like_template

SESSION_HELPERS = frozenset({"create_session", "provide_session", "create_session_async"})
ORM_MODELS = frozenset(
    {"DagRun", "TaskInstance", "DagModel", "XCom", "Log", "Pool", "DagTag", "SlaMiss", "TaskFail", "TaskReschedule"}
    | {"Trigger", "SerializedDagModel", "DagWarning", "ImportError", "Variable", "Connection", "DagCode"}
)
QUERY_CALLS = frozenset({"query", "select", "delete", "update"})
SUBDAG_MODULES = ("airflow.operators.subdag", "airflow.operators.subdag_operator", "airflow.subdag")

ADVICE = {
    "metadata-db": "Airflow 3 tasks cannot reach the metadata database: use the REST API, "
    "or Variable and Connection from airflow.sdk",
    "sla": "SLAs are gone in Airflow 3 and this is silently ignored: use a DeadlineAlert (deadline=...)",
    "removed-context-key": "never set on Airflow 3: use logical_date, data_interval_start/end or dag_run.run_after",
    "no-logical-date-fallback": "missing in runs without a logical date (manual and asset-triggered runs): "
    "add a fallback, e.g. `{{ ds | default(dag_run.run_after | ds) }}`, a parameter default, or context.get()",
    "subdag": "SubDAGs are gone in Airflow 3: rebuild the inner DAG as a TaskGroup",
    "airflow-contrib": "airflow.contrib is gone in Airflow 3: import from the provider package",
    "schedule-interval": "gone in Airflow 3 (DAG() raises TypeError): use schedule",
}
BLOCKERS = {
    "metadata-db": "metadata DB access from task code",
    "sla": "SLA (silently ignored)",
    "removed-context-key": "removed context key",
    "no-logical-date-fallback": "logical-date key without a fallback",
    "subdag": "SubDAG",
    "airflow-contrib": "airflow.contrib import",
    "schedule-interval": "schedule_interval",
}


@dataclass(frozen=True)
class Pattern:
    """A runtime finding before it becomes a Finding: `symbol` is what ruff would quote."""

    rule: str
    line: int
    symbol: str
    what: str

    def finding(self, path: str) -> Finding:
        message = f"{self.what}: {ADVICE[self.rule]}"
        return Finding(path, self.line, "runtime", self.rule, message, True, BLOCKERS[self.rule])


def call_name(node: ast.expr) -> str:
    """`a.b.c` for a Name/Attribute chain, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = call_name(node.value)
        return f"{parent}.{node.attr}" if parent else ""
    return ""


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes, whose `{{ }}` examples are prose, not templates."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


class RuntimePatterns(ast.NodeVisitor):
    def __init__(self, tree: ast.Module) -> None:
        self.found: list[Pattern] = []
        self.session_names: set[str] = set()  # create_session & co., and Session from airflow.settings
        self.settings_modules: set[str] = {"airflow.settings"}
        self.models: set[str] = set()
        self.subdag_operators: set[str] = set()
        self.skip_strings = docstrings(tree)
        self.task_callables = python_callables(tree)

    def add(self, rule: str, node: ast.AST, symbol: str, what: str) -> None:
        self.found.append(Pattern(rule, node.lineno, symbol, what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "airflow.settings" and alias.asname:
                self.settings_modules.add(alias.asname)
            self.check_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.check_module(node, module)
        for alias in node.names:
            bound = alias.asname or alias.name
            if module == "airflow.utils.session" and alias.name in SESSION_HELPERS:
                self.session_names.add(bound)
            elif module == "airflow.settings" and alias.name == "Session":
                self.session_names.add(bound)
            elif module == "airflow" and alias.name == "settings":
                self.settings_modules.add(bound)
            elif module.startswith("airflow.models") and alias.name in ORM_MODELS:
                self.models.add(bound)
            elif alias.name == "SubDagOperator":
                self.subdag_operators.add(bound)

    def check_module(self, node: ast.stmt, module: str) -> None:
        if module == "airflow.contrib" or module.startswith("airflow.contrib."):
            self.add("airflow-contrib", node, module, f"import from `{module}`")
        elif module in SUBDAG_MODULES:
            self.add("subdag", node, module, f"import from `{module}`")

    def visit_Call(self, node: ast.Call) -> None:
        name = call_name(node.func)
        if name in self.session_names or name.rpartition(".")[0] in self.settings_modules and name.endswith("Session"):
            self.add("metadata-db", node, name.rpartition(".")[2], f"`{name}()`")
        elif name.rpartition(".")[2] in QUERY_CALLS:
            models = sorted({call_name(arg) for arg in node.args} & self.models)
            if models:
                self.add("metadata-db", node, models[0], f"query of Airflow's `{models[0]}` model")
        if name in self.subdag_operators:
            self.add("subdag", node, "SubDagOperator", "`SubDagOperator`")
        for keyword in node.keywords:
            if keyword.arg in ("sla", "sla_miss_callback"):
                self.add("sla", keyword.value, keyword.arg, f"`{keyword.arg}=`")
            elif keyword.arg == "schedule_interval":
                self.add("schedule-interval", keyword.value, "schedule_interval", "`schedule_interval=`")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            if call_name(decorator.func if isinstance(decorator, ast.Call) else decorator) in self.session_names:
                self.add("metadata-db", decorator, "provide_session", "`@provide_session`")
        arguments = node.args
        positional = arguments.posonlyargs + arguments.args
        defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
        params = list(zip(positional, defaults, strict=True)) + list(
            zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        )
        for param, default in params:
            if param.arg in REMOVED_KEYS:
                self.add("removed-context-key", param, param.arg, f"parameter `{param.arg}`")
            elif param.arg in LOGICAL_DATE_KEYS and default is None and node.name in self.task_callables:
                self.add("no-logical-date-fallback", param, param.arg, f"task parameter `{param.arg}` has no default")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if isinstance(node.ctx, ast.Load) and key in REMOVED_KEYS:
            self.add("removed-context-key", node, key, f'`["{key}"]`')
        elif isinstance(node.ctx, ast.Load) and key in LOGICAL_DATE_KEYS:
            self.add("no-logical-date-fallback", node, key, f'`["{key}"]`')
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load) and node.attr in ("execution_date", "schedule_interval"):
            rule = "removed-context-key" if node.attr == "execution_date" else "schedule-interval"
            self.add(rule, node, node.attr, f"attribute `.{node.attr}`")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key in node.keys:
            if isinstance(key, ast.Constant) and key.value == "sla":
                self.add("sla", key, "sla", '`"sla"` in a dict (default_args)')
            elif isinstance(key, ast.Constant) and key.value == "schedule_interval":
                self.add("schedule-interval", key, "schedule_interval", '`"schedule_interval"` in a dict')
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.skip_strings and looks_like_template(node.value):
            for used in context_names(node.value):
                line = node.lineno + used.line - 1
                if used.name in REMOVED_KEYS:
                    self.found.append(Pattern("removed-context-key", line, used.name, f"`{{{{ {used.name} }}}}`"))
                elif not used.guarded:
                    what = f"`{{{{ {used.name} }}}}` without a fallback"
                    self.found.append(Pattern("no-logical-date-fallback", line, used.name, what))

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """f-strings build templates at parse time from parts that are not templates themselves."""


def python_callables(tree: ast.Module) -> set[str]:
    """Functions Airflow calls with context keys as arguments: @task functions and python_callable=."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = call_name(decorator.func if isinstance(decorator, ast.Call) else decorator)
                if target == "task" or target.startswith("task."):
                    names.add(node.name)
        elif isinstance(node, ast.keyword) and node.arg == "python_callable" and isinstance(node.value, ast.Name):
            names.add(node.value.id)
    return names


def runtime_findings(path: str, tree: ast.Module, ruff_symbols: dict[tuple[str, int], set[str]]) -> list[Finding]:
    """The file's runtime findings, without those ruff already reports on the same line."""
    visitor = RuntimePatterns(tree)
    visitor.visit(tree)
    findings, seen = [], set()
    for pattern in visitor.found:
        quoted = ruff_symbols.get((path, pattern.line), set())
        already_ruffs = any(name == pattern.symbol or name.endswith(f".{pattern.symbol}") for name in quoted)
        key = (pattern.rule, pattern.line, pattern.symbol)
        if key in seen or (already_ruffs and pattern.rule != "sla"):
            continue
        seen.add(key)
        findings.append(pattern.finding(path))
    return sorted(findings, key=lambda finding: (finding.line, finding.rule))
