"""The OpenAPI-generated clients' tests (ogx-client 1.2+); see conftest.py."""
