"""Property-based API testing with schemathesis against the served OpenAPI (real server, PostgreSQL).

Checks: all of schemathesis' checks (no 5xx, response schemas, status codes, content types,
headers, negative data rejected, auth not ignored...) except two whose premise does not hold here
by design:

- ``positive_data_acceptance``: a schema-valid configuration may name a broker or network this
  catalog does not serve; that is rejected with 422 and a message, deliberately.
- ``use_after_free``: a device's configuration versions outlive its registration (operators
  provision a configuration before the meter ever registers; a meter deregistering must not erase
  it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import OPERATOR_TOKEN, CatalogFactory

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(
    postgres_url: str, catalog_factory: CatalogFactory, tmp_path: Path
) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail(f"schemathesis CLI not found at {SCHEMATHESIS} (pip install schemathesis)")
    running = catalog_factory(postgres_url)
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            running.url + "/openapi.json",
            "-H",
            f"Authorization: Bearer {OPERATOR_TOKEN}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,use_after_free",
            "--exclude-path-regex",
            "/events$",  # an endless SSE stream; tested in test_events_expiry.py
            "--max-examples",
            "15",
            "--seed",
            "20261127",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # schemathesis keeps a cache folder in its working directory
        timeout=120,
        check=False,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "Tested: 13" in result.stdout, report
