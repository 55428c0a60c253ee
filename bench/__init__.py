"""`make bench`: what tracing costs, side by side (run.py), and the scripts it measures against.
A package so that run.py imports span_log and tests.support without editing sys.path: run it
as `python -m bench.run` from the project root."""
