"""The one exception type for bad data: it always names the file or value and what was expected."""


class DataError(ValueError):
    """Raised for unreadable, malformed or inconsistent input data."""
