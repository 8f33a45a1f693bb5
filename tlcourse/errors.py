"""Exceptions raised by tlcourse.

Every message says what was received, what is accepted and what to do next.
"""

from __future__ import annotations


class TLCourseError(Exception):
    """Base class of every error tlcourse raises on purpose."""


class DataNotFoundError(TLCourseError, FileNotFoundError):
    """A dataset or weights file could not be found locally nor downloaded."""


class ChecksumError(TLCourseError, ValueError):
    """A file's sha256 differs from the pinned value."""


class DataFormatError(TLCourseError, ValueError):
    """A file or folder exists but does not hold what it should."""


class WeightsError(TLCourseError, ValueError):
    """A weights file is missing a tensor or holds one of the wrong shape."""


class CollapsedRunError(TLCourseError, RuntimeError):
    """Training collapsed to chance level; the numbers are not a result."""
