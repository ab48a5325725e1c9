"""Shared test setup: hypothesis profiles, seeds, and the kernel backend fixture.

Profiles: "dev" (default, quick) and "ci" (more examples); pick with HYPOTHESIS_PROFILE.
Every test that touches the kernels runs under the backend of TINYGRAD_LLM_BACKEND
(numba by default); tests marked with the ``backend`` fixture run on both.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once per kernel backend."""
    from tinygrad_llm.kernels import use_backend

    with use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
