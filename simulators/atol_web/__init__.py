"""A fake ATOL Web Requests / DTO10 web server: ``app`` (HTTP) and ``answers``."""

from kktmon.simulators.atol_web.app import AtolWebApp

__all__ = ["AtolWebApp"]
