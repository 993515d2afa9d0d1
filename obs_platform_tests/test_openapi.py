"""The committed OpenAPI spec (the frontend's types come from it) matches what the BFF serves."""

import importlib.util

from obs_platform.settings import REPO_ROOT


def test_committed_openapi_spec_is_current():
    spec = importlib.util.spec_from_file_location("export_openapi", REPO_ROOT / "scripts" / "export_openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO_ROOT / "bff" / "openapi.json").read_text()
    assert committed == module.spec_text(), "bff/openapi.json is stale: run scripts/export_openapi.py and npm run gen:api"


def test_every_route_has_a_stable_operation_id():
    import json

    spec = json.loads((REPO_ROOT / "bff" / "openapi.json").read_text())
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"listEvents", "listEventsSince", "getHealth"} <= set(ids)
