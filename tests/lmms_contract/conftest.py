"""The lmms-eval contract test runs only when asked: `make test-lmms` sets the variable below.

It needs lmms-eval 0.7.3 (torch and its other requirements, several GB) in a virtual environment
of its own, so the default `pytest -q` does not even collect it.
"""

from __future__ import annotations

import os

OPT_IN = "FIQABENCH_LMMS_CONTRACT"

if os.environ.get(OPT_IN) != "1":
    collect_ignore_glob = ["test_*.py"]
