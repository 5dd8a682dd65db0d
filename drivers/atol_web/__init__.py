"""ATOL Web Requests adapter: ``driver``, ``mapping`` and ``job`` (a queued job's life)."""

from kktmon.drivers.atol_web.driver import AtolWebDriver

__all__ = ["AtolWebDriver"]
