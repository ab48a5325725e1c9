"""The process settings of tinygrad_llm/runtime.py, each checked in a fresh interpreter."""

import json
import os
import subprocess
import sys

import pytest

# a forward pass in miniature: three 8 MiB activations alive at once, then all freed; after
# a few such passes, count the page faults of one more
_CHILD = """
import json, os, resource, sys
import tinygrad_llm
import numpy as np
def forward():
    return [np.ones(2 << 20, dtype=np.float32) for _ in range(3)]
for _ in range(3):
    forward()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
forward()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults, "timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}))
"""


def _run(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "TINYGRAD_LLM_KEEP_HEAP",
                        "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env | env_extra, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="glibc malloc settings: Linux only")
def test_freed_activations_are_reused_without_page_faults():
    kept = _run({})
    default = _run({"TINYGRAD_LLM_KEEP_HEAP": "0"})
    # glibc's default gives part of the freed memory back to the OS and faults it in again on
    # the next pass (998 pages of 4 KiB when written); kept, the heap serves it as it is
    assert kept["faults"] < 100, kept
    assert default["faults"] > 500, default


def test_openblas_timeout_is_a_default_the_environment_overrides():
    assert _run({})["timeout"] == "4"
    assert _run({"OPENBLAS_THREAD_TIMEOUT": "12"})["timeout"] == "12"
