"""What of this Python a sandboxed kernel sees: its prefixes, site-packages and tlcourse.

Read-only, at their own paths: ``sys.prefix``, ``sys.base_prefix``, ``sys.exec_prefix``, the
``site-packages`` folders on ``sys.path`` (a venv, ``--user``, another environment's), and
the ``tlcourse`` package folder itself. Nothing else of ``sys.path``: not the working
directory, and not the folder around an editable install (a checkout's ``solutions/``,
``autograder/`` and ``tests/`` stay out of sight, even through ``tlcourse.__file__``).
"""

from __future__ import annotations

import os
import sys


def _package_folder(path: str) -> bool:
    return os.path.basename(path.rstrip("/")) in ("site-packages", "dist-packages")


def kernel_paths() -> list[str]:
    """The folders above, resolved, each once, none inside another one of them."""
    import tlcourse

    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(tlcourse.__file__)]
    paths += [entry for entry in sys.path if entry and _package_folder(entry)]
    resolved = sorted({os.path.realpath(path) for path in paths if os.path.isdir(path)})
    kept: list[str] = []
    for path in resolved:  # sorted: a folder comes before what lies inside it
        if not any(path.startswith(parent.rstrip("/") + "/") for parent in kept):
            kept.append(path)
    return kept
