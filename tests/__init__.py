"""The suite. A package so that its helpers import as tests.support (pytest.ini puts the
project root on sys.path): test modules import those, never each other or conftest."""
