"""The tests of the OpenAPI-generated client line (ogx-client 1.2+), which has no Stainless
``_base_client``: make test-instrumentation runs this folder alone in those venvs (its
``--confcutdir`` keeps the Stainless tests' conftest out); in the other venvs it is skipped."""

from __future__ import annotations

import importlib.util

import pytest
from in_memory import no_content_variable, taken_off_after  # noqa: F401 - the fixture is used from here


def _openapi_client_installed() -> bool:
    try:
        return importlib.util.find_spec("ogx_client") is not None and \
            importlib.util.find_spec("ogx_client.api_client") is not None
    except (ImportError, ValueError):
        return False


if not _openapi_client_installed():
    collect_ignore_glob = ["*.py"]
else:
    def pytest_report_header() -> str:
        from openapi_clients.support import VERSION

        return f"client under test: ogx-client {VERSION} (OpenAPI-generated)"


@pytest.fixture
def traced():
    """make(**kwargs) -> Traced over one canned server; every instrumentor made is taken off."""
    from openapi_clients.support import Traced, canned_server

    with canned_server() as canned, taken_off_after(lambda **kwargs: Traced(canned, **kwargs)) as make:
        yield make
