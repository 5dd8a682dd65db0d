"""The same checks against a real register, like pyserial's test suite.

Set ``KKTMON_TEST_URL`` (and ``KKTMON_TEST_VENDOR``, default ``shtrih``) to run them:

    KKTMON_TEST_URL=serial:///dev/ttyACM0 pytest -m hardware
"""

from __future__ import annotations

import os

import pytest

from kktmon.drivers.registry import driver_class
from kktmon.protocol.health import LinkState

URL = os.environ.get("KKTMON_TEST_URL")
VENDOR = os.environ.get("KKTMON_TEST_VENDOR", "shtrih")

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(URL is None, reason="no real register: set KKTMON_TEST_URL to run"),
]


def test_real_register_answers_with_identity_and_fn_facts() -> None:
    assert URL is not None
    driver = driver_class(VENDOR)(URL)
    identity = driver.identify()
    assert identity.serial and identity.model
    snapshot = driver.read_health()
    assert snapshot.link.state is LinkState.OK, snapshot.link.last_error
    assert snapshot.fn.serial and snapshot.fn.phase is not None
    assert snapshot.clock.skew_s is not None
