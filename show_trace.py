#!/usr/bin/env python3
"""Print one trace from Jaeger or Phoenix as a tree and say whether it came out whole.

    python show_trace.py <trace-id> --trace-ui http://localhost:16686
    python show_trace.py <trace-id> --trace-ui http://127.0.0.1:6006 --trace-backend phoenix

Exit status: 0 whole, 4 broken / not found / backend not asked, 2 bad input. The checks are
the ones the script's --verify makes (llama_stack_otel/verify.py).
"""

import sys

from llama_stack_otel.verify import main

if __name__ == "__main__":
    sys.exit(main())
