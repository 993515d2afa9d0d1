"""The platform's small public exception hierarchy. Messages name the object and what would be valid."""


class ObsPlatformError(Exception):
    """Base of every error the platform raises on purpose."""


class InvalidInput(ObsPlatformError, ValueError):
    """A caller's value is malformed; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class NotFound(ObsPlatformError, LookupError):
    """A named thing does not exist (a commit, an event, a correlation)."""


class TableNotReady(ObsPlatformError):
    """The table has no commit yet (ingestion has not written anything)."""
