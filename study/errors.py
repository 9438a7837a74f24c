"""The errors a user can cause and fix. Only these end a command as one line with exit code 2;
any other exception is a bug and shows its traceback."""

from __future__ import annotations

USER_ERROR_EXIT = 2  # exit code for anything the user can fix (bad flag, bad file, offline model)


class UserError(Exception):
    """Base of every user-fixable error raised by the study side."""


class ConfigError(UserError):
    """A bad flag value, YAML key or YAML value; the message names it."""


class DatasetError(UserError):
    """A dataset cannot be loaded (unknown name, bad local file, offline without a cache)."""


class ResultsError(UserError):
    """A results file is missing, unreadable or from a different configuration."""


class RunStopped(UserError):
    """A served model's request failed for good mid-run: what was saved stays, and the same
    command resumes from it."""
