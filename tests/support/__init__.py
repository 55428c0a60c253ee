"""What the tests (and bench/) share, one module per concern:

- script: run the script as a user does, with either client line (client_python), and read what it printed
  (one-line errors, ingestion, answers);
- agent_run: the two-question run of the end-to-end tests, its answers and --verify's tree and verdict;
- otlp_receiver: a real OTLP/HTTP receiver in-process, which also answers Jaeger's query API (and can
  want a header, speak only TLS);
- trace_shape: roots, orphans and parent chains of a received trace;
- collectors: trace backends that refuse, answer 503 or hang (also a command: python -m tests.support.collectors);
- llama_stack_server: handles on real Llama Stack servers, and the local stack on free ports;
- llama_stack_http: plain HTTP to a Responses-API server (0.7.3, OGX), and what it holds;
- loopback_proxy: a TCP proxy that cuts or stalls the connection to Llama Stack;
- headless_chromium: a page's text after its JavaScript ran;
- fake_engine: a stand-in podman/docker, run as an executable;
- canned_llama_stack (in instrumentation/tests/, on pytest's path): a loopback server answering like
  Llama Stack from canned JSON and events (the client instrumentor's tests and its benchmark).
"""
