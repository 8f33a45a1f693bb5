"""The sandbox a graded kernel runs in: bubblewrap, as a jupyter_client kernel provisioner.

nbgrader runs a student's notebook in a Jupyter kernel and protects nothing (its issue #483).
Here every graded kernel is started by :class:`SandboxProvisioner` (the ``tlcourse-sandbox``
provisioner, which :class:`SandboxKernelManager` gives each kernel) inside a bubblewrap
sandbox:

* its processes run, outside their user namespace, as an unprivileged uid: one of its own per
  kernel when the grader is root (never 0), the instructor's otherwise; inside, they have no
  capability and may make no further user namespace;
* new PID, network, IPC, UTS and cgroup namespaces: it sees no other process, has no network
  (a loopback of its own; the kernel talks to the grader over Unix sockets), and dies whole
  with its first process;
* a file system built from scratch: system folders, its Python and the ``tlcourse`` package
  read-only, the course's data and weights read-only where the grader binds them, its own
  ``/tmp``; writable only the submission's folder and its socket folder. The course (held-out
  data, gradebook, other students' work) and the checkout around an editable tlcourse
  (``solutions/``) do not exist in it;
* a cleared environment: nothing of the grader's variables;
* rlimits (CPU, memory, file size, open files, processes, no core) and cgroups (processes,
  memory) that hold for root too.

When the kernel is shut down or killed, every process of its sandbox is killed and waited
for. Without bubblewrap nothing runs unless the instructor asks for it (``tlcourse grade
--unsandboxed``: the limits only). :func:`isolation` says what a machine enforces.

Modules, one job each: :mod:`~.bwrap` (the command line and the file system), :mod:`~.limits`
(rlimits, cgroups), :mod:`~.users` (the host uid, lent folders), :mod:`~.stage` (binding
what that uid cannot walk to), :mod:`~.python_env` (what of Python a kernel sees),
:mod:`~.launch` (one sandbox's life), :mod:`~.provisioner`, :mod:`~.manager`, :mod:`~.report`.
"""

from tlcourse.grading.sandbox.errors import SandboxError, SandboxUnavailable
from tlcourse.grading.sandbox.manager import SandboxKernelManager, SandboxKernelSpecManager
from tlcourse.grading.sandbox.provisioner import (
    PROVISIONER_NAME,
    UNSANDBOXED_ENV,
    SandboxProvisioner,
    kernel_config,
)
from tlcourse.grading.sandbox.report import isolation, unreadable_by_kernels

__all__ = [
    "PROVISIONER_NAME",
    "UNSANDBOXED_ENV",
    "SandboxError",
    "SandboxKernelManager",
    "SandboxKernelSpecManager",
    "SandboxProvisioner",
    "SandboxUnavailable",
    "isolation",
    "kernel_config",
    "unreadable_by_kernels",
]
