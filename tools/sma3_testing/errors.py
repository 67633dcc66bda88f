"""Errors raised by the service helpers."""


class MissingServiceError(RuntimeError):
    """A binary a helper needs is not installed; the message names it and the Debian package."""


class ServiceStartError(RuntimeError):
    """A service process did not come up; the message includes the tail of its log."""
