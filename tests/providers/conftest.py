"""The provider tests' shared fixtures (the OpenAI and Anthropic APIs are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from resultloader.testing import FakeClock
from tests.support.provider_apis import NOW


@pytest.fixture
def clock():
    return FakeClock(start=NOW)
