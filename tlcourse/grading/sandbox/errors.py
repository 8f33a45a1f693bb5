"""What can stop a sandbox: no usable bubblewrap, or settings it cannot honour."""

from __future__ import annotations

from tlcourse.errors import TLCourseError

#: What the instructor can do when bubblewrap is missing or refuses to run.
FIX = (
    "Install bubblewrap (sudo apt-get install bubblewrap, or ./install.sh in the tlcourse "
    "checkout) and run the same command again. To grade on this machine anyway, without "
    "isolation (resource limits only: students' code could then read and change what the "
    "grader can, and reach the network), pass --unsandboxed to `tlcourse grade` (for "
    "nbgrader's own commands: c.SandboxProvisioner.isolate = False)."
)


class SandboxUnavailable(TLCourseError):
    """bubblewrap is missing, or cannot make a sandbox on this machine."""


class SandboxError(TLCourseError):
    """A sandbox was asked for something it must not do (a setting to fix)."""
