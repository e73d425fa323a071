"""schemathesis against /api/openapi.json on a live server: no server errors, answers match the document."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.alert_world import raise_and_capture


@pytest.fixture
def populated(world, sdk, api, pager_api, run_worker):
    """Real objects for the fuzzer to find: app "pager", an issue, an event, audit entries, project web's key."""
    event_id = raise_and_capture("card declined")
    run_worker()
    return api, world.groups()[0].id, event_id, world.dsn.split("//")[1].split("@")[0]


def test_the_api_matches_its_openapi_document(populated, live_server, app, tmp_path):
    api, issue_id, event_id, key_id = populated
    config = tmp_path / "schemathesis.toml"
    # Point the path parameters at real objects, so operations are exercised beyond their 404s.
    config.write_text(
        "[parameters]\n"
        '"path.organization_slug" = "acme"\n'
        '"path.sentry_app_slug" = "pager"\n'
        '"path.project_slug" = "web"\n'
        f'"path.issue_id" = {issue_id}\n'
        f'"path.event_id" = "{event_id}"\n'
        f'"path.key_id" = "{key_id}"\n'
    )
    executable = Path(sys.executable).with_name("schemathesis")
    assert executable.exists(), "schemathesis is installed by scripts/test"
    result = subprocess.run(
        [str(executable), "--config-file", str(config), "run", f"{live_server}/api/openapi.json",
         "--url", live_server,
         "--header", f"Authorization: Bearer {api.tokens['owner']}",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance,response_headers_conformance",
         "--max-examples", os.environ.get("HOOKLINE_SCHEMATHESIS_EXAMPLES", "25"),
         "--generation-deterministic", "--no-color", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
