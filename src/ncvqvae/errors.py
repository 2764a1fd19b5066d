"""Errors a user can act on.

Every error raised for bad input derives from :class:`NcvqvaeError`; the CLI prints its message on one
line and exits with status 2 instead of showing a traceback.
"""

from __future__ import annotations


class NcvqvaeError(Exception):
    """Base class of every error caused by input the user can fix."""


class DataError(NcvqvaeError, ValueError):
    """A dataset file, folder, name or array is missing or malformed."""


class ConfigError(NcvqvaeError, ValueError):
    """A config file or override names an unknown key or holds a value of the wrong type."""


class CheckpointError(NcvqvaeError):
    """A checkpoint is missing, truncated, foreign, or belongs to another run."""


class TrainingError(NcvqvaeError, RuntimeError):
    """Training cannot go on (for instance a non-finite loss)."""
