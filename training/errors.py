"""The one exception type for problems a user can cause (bad path, bad file, bad option)."""


class LatentExplorerError(Exception):
    """A user-facing error: the message says what is wrong and what to do about it."""
