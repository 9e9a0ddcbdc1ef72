"""The job lifecycle (webapp/core) owns every status change: no other module writes a job's ``status``.

Only job models have a ``status`` column (reviews say ``state``), so any
``.update(status=...)``, ``save(update_fields=[..."status"...])``,
``bulk_update(..., ["status"])``, ``update_or_create(defaults={"status": ...})``,
``setattr(row, "status", ...)`` or ``row.status = ...`` outside webapp/core is a
bypass. Creating a row with its first status (``queued``) is not a change.
``self.status`` in a class that is not a model (an HTTP error, an API run
following a job) is not a job's column either.
"""
from __future__ import annotations

import ast
from pathlib import Path

WEBAPP = Path(__file__).resolve().parent.parent.parent / "webapp"


def _is_status(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "status"


def _lists_status(node: ast.AST | None) -> bool:
    return isinstance(node, (ast.List, ast.Tuple, ast.Set)) and any(_is_status(e) for e in node.elts)


def _dict_has_status(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Dict) and any(_is_status(key) for key in node.keys)


def _model_class(node: ast.ClassDef) -> bool:
    names = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
    return any(name.endswith("Model") for name in names)


def _call_writes_status(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    keywords = {k.arg: k.value for k in call.keywords}
    if name == "update":
        return "status" in keywords or any(_dict_has_status(k.value) for k in call.keywords if k.arg is None)
    if name == "save":
        return _lists_status(keywords.get("update_fields"))
    if name == "bulk_update":
        return any(_lists_status(arg) for arg in [*call.args, keywords.get("fields")])
    if name == "update_or_create":
        return _dict_has_status(keywords.get("defaults"))
    if name == "setattr":
        return len(call.args) > 1 and _is_status(call.args[1])
    return False


def status_writes(source: str, name: str = "<source>") -> list[str]:
    """``name:line`` of every write of a job's ``status`` in ``source``."""
    found: list[str] = []

    def visit(node: ast.AST, in_model: bool | None) -> None:
        if isinstance(node, ast.ClassDef):
            in_model = _model_class(node)
        if isinstance(node, ast.Call) and _call_writes_status(node):
            found.append(f"{name}:{node.lineno}")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]
            for target in flat:
                if not (isinstance(target, ast.Attribute) and target.attr == "status"):
                    continue
                on_self = isinstance(target.value, ast.Name) and target.value.id == "self"
                if not on_self or in_model is not False:
                    found.append(f"{name}:{node.lineno}")
        for child in ast.iter_child_nodes(node):
            visit(child, in_model)

    visit(ast.parse(source), None)
    return found


def test_no_module_outside_core_writes_a_jobs_status():
    bad: list[str] = []
    for path in sorted(WEBAPP.rglob("*.py")):
        relative = path.relative_to(WEBAPP)
        if relative.parts[0] == "core" or "migrations" in relative.parts:
            continue
        bad += status_writes(path.read_text(), str(relative))
    assert bad == [], f"status written outside the lifecycle (use webapp.core.jobs): {bad}"


def test_the_scan_sees_every_way_of_writing_a_status():
    source = '''
Job.objects.filter(pk=1, status="queued").update(status="failed", reason="x")
TextJob.objects.filter(pk=1).update(**{"status": "failed"})
job.status = JobStatus.DONE
job.save(update_fields=["status", "reason"])
Job.objects.bulk_update(rows, ["status"])
Job.objects.update_or_create(pk=1, defaults={"status": "done"})
setattr(job, "status", "done")
job.status, job.reason = "failed", "x"

class Message(models.Model):
    def end(self):
        self.status = "done"
'''
    assert [line.split(":")[1] for line in status_writes(source)] == ["2", "3", "4", "5", "6", "7", "8", "9", "13"]


def test_the_scan_leaves_reads_creation_and_other_statuses_alone():
    source = '''
Job.objects.filter(status="queued").update(reason="x")
Job.objects.create(status=JobStatus.QUEUED)
render(request, "page.html", status=400)
job.save(update_fields=["reason"])
if job.status == "done":
    pass

class ApiError(Exception):
    def __init__(self, status):
        self.status = status

class ImageRun:
    async def refresh(self):
        self.status, self.reason = row["status"], row["reason"]
'''
    assert status_writes(source) == []
