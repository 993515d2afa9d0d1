#!/usr/bin/env python3
"""Write the BFF's OpenAPI spec to bff/openapi.json (the frontend generates its types from it).

    python scripts/export_openapi.py          # then: cd frontend && npm run gen:api
A test fails when the committed file differs from what the app serves, so the two cannot drift.
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bff.main import create_app  # noqa: E402


def spec_text() -> str:
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    (REPO / "bff" / "openapi.json").write_text(spec_text())
    print("wrote bff/openapi.json")
