"""The tree shows the architecture: arrows run one way (views → families → dispatch and core → models), as each
package's docstring says. A new import against the grain fails here, naming the module and what it imported."""

from __future__ import annotations

import ast
from pathlib import Path

import webapp

WEBAPP = Path(webapp.__file__).parent
FAMILIES = {"accounts", "alerts", "apps"}
# What each part may import besides itself. Views, the demo, the CLI and create_app stand on top: anything.
MAY_IMPORT = {
    "models": {"core.extensions", "core.clock"},
    "core": {"models"},
    "dispatch": {"core", "models"},
    **{family: {"dispatch", "core", "models"} for family in FAMILIES},
}
# The jobs RQ runs by name are entry points, like views: they call into the alert families.
ENTRY_POINTS = {"dispatch.tasks": {"alerts"}, "dispatch.intake": {"alerts"}}
LEAVES = {"core.extensions", "core.clock"}  # models stand on these: they import nothing of Hookline's


def module_name(path: Path) -> str:
    parts = path.relative_to(WEBAPP).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The webapp modules (or packages) ``path`` imports, as names under webapp ("" for webapp itself)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module == "webapp" or (node.module or "").startswith("webapp."):
                target = node.module.removeprefix("webapp").removeprefix(".")
            else:
                continue
            if target == "" or (target.count(".") == 0 and (WEBAPP / target).is_dir()):
                found.update(f"{target}.{alias.name}".lstrip(".") for alias in node.names)
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("webapp.") for alias in node.names if alias.name.startswith("webapp."))
    return found


def allowed(importer: str, imported: str) -> bool:
    part = importer.split(".")[0]
    if part not in MAY_IMPORT or imported.split(".")[0] == part:
        return True  # the top imports anything; a part imports itself
    grants = MAY_IMPORT[part] | ENTRY_POINTS.get(importer, set())
    return any(imported == grant or imported.startswith(grant + ".") for grant in grants)


def test_every_import_runs_with_the_grain():
    against = []
    modules = [path for path in sorted(WEBAPP.rglob("*.py")) if "migrations" not in path.parts]
    assert len(modules) > 100
    for path in modules:
        importer = module_name(path)
        for imported in sorted(imports_of(path)):
            if importer in LEAVES:
                against.append(f"{importer} imports {imported} (it is a leaf: models import it)")
            elif imported in {"", "cli"} or imported.split(".")[0] in {"views", "demo"}:
                if importer.split(".")[0] not in {"views", "demo", "cli", ""}:
                    against.append(f"{importer} imports {imported or 'webapp'} (the top)")
            elif not allowed(importer, imported):
                against.append(f"{importer} imports {imported}")
    assert against == []


def test_the_check_sees_an_arrow_against_the_grain():
    assert not allowed("core.outbox", "dispatch.queues")
    assert not allowed("dispatch.engine", "alerts.eventstore") and allowed("dispatch.tasks", "alerts.eventstore")
    assert not allowed("models.apps", "core.keys") and allowed("models.apps", "core.extensions")
    assert allowed("accounts.passwords", "dispatch.notifications") and allowed("alerts.rules", "models")
    assert imports_of(WEBAPP / "dispatch" / "tasks.py") >= {"alerts.incidents", "core.keys", "dispatch.queues"}


def test_account_jobs_queued_before_the_packages_still_run():
    """A reset email or failed-login record queued by an older release names ``webapp.account_jobs.<function>``."""
    from rq.utils import import_attribute

    from webapp.accounts import jobs

    assert import_attribute("webapp.account_jobs.send_reset_email") is jobs.send_reset_email
    assert import_attribute("webapp.account_jobs.record_failed_login") is jobs.record_failed_login
    assert import_attribute(jobs.SEND_RESET_EMAIL_JOB) is jobs.send_reset_email
