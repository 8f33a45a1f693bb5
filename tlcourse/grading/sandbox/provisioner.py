"""``SandboxProvisioner``: jupyter_client starts each graded kernel in a bubblewrap sandbox.

Registered as the kernel provisioner ``tlcourse-sandbox`` (entry point group
``jupyter_client.kernel_provisioners``); :class:`~tlcourse.grading.sandbox.manager.
SandboxKernelManager` gives it to every kernel it starts. Everything it does is configurable
through the usual traitlets config, e.g. in a course's ``nbgrader_config.py``::

    c.SandboxProvisioner.cpu_seconds = 900
    c.SandboxProvisioner.read_only = {"/data/cifar": "/srv/cifar/train-only"}

Each limit is declared once, here. For one kernel it

* talks to the kernel over Unix sockets in a short private folder (``/tmp/tlk-*``): the
  sandbox has no network, so ``transport`` becomes ``ipc`` whatever it was;
* runs the kernel command in a :class:`~tlcourse.grading.sandbox.launch.Sandbox` (see there and
  :mod:`~tlcourse.grading.sandbox.bwrap`): as a uid of its own when the grader is root, in new
  namespaces, on a file system built from scratch in which only the kernel's working folder
  (the submission's) and its socket folder are writable, with a cleared environment
  (:meth:`kernel_environment`), the rlimits and cgroups of :meth:`limits`;
* passes signals to the kernel's process group (interrupts), kills the whole sandbox for
  SIGKILL, and on cleanup waits until no process of the sandbox is left.

Python kernels run with ``-P`` and ipykernel's ``ignore_cwd``: nothing is imported from the
submission's folder (a student's ``numpy.py`` shadows nothing).
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import tempfile
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, Dict, Integer, Unicode, default
from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from tlcourse.grading.sandbox.bwrap import find_bwrap
from tlcourse.grading.sandbox.errors import FIX, SandboxUnavailable
from tlcourse.grading.sandbox.launch import Sandbox, Settings, base_environment, check_settings
from tlcourse.grading.sandbox.limits import Limits

#: The provisioner's entry point name.
PROVISIONER_NAME = "tlcourse-sandbox"
#: Set (to 1) by ``tlcourse grade --unsandboxed`` for its grading processes: no bubblewrap.
UNSANDBOXED_ENV = "TLCOURSE_UNSANDBOXED"
#: What of the launching environment a kernel keeps (jupyter_client's session name). Not
#: JPY_PARENT_PID: a pid of the host means nothing in the kernel's PID namespace, where its
#: parent is PID 1 (bubblewrap's init), which ipykernel knows never to poll.
KEPT = ("JPY_SESSION_NAME",)


class SandboxProvisioner(LocalProvisioner):
    """A local kernel in a bubblewrap sandbox; see the module's docstring."""

    isolate = Bool(
        help="Run kernels in the bubblewrap sandbox. False: no isolation, limits only (set "
        "by `tlcourse grade --unsandboxed`; default from $TLCOURSE_UNSANDBOXED)."
    ).tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap program: a name on PATH, or a path.").tag(
        config=True
    )
    uid_first = Integer(
        1_900_000_000,
        help="As root, each kernel runs as a uid of its own from uid_first (gid the same): "
        "outside its user namespace its processes are that uid, never 0. The default block "
        "lies where no account or container range is allocated on usual systems.",
    ).tag(config=True)
    uid_count = Integer(1000, help="How many uids from uid_first kernels may use.").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds a kernel process may use.").tag(config=True)
    memory_mb = Integer(6144, help="Memory (MiB) of the whole sandbox, its /tmp included.").tag(
        config=True
    )
    processes = Integer(256, help="Processes and threads the sandbox may run at once.").tag(
        config=True
    )
    file_mb = Integer(256, help="Largest file (MiB) a kernel may write.").tag(config=True)
    open_files = Integer(1024, help="Open files a kernel process may hold.").tag(config=True)
    tmp_mb = Integer(512, help="Size (MiB) of the sandbox's private /tmp and /dev/shm.").tag(
        config=True
    )
    read_only = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        help="Extra read-only binds: path in the sandbox -> path on the host (a missing host "
        "path is skipped: the kernel reports what it misses).",
    ).tag(config=True)
    environment = Dict(
        value_trait=Unicode(),
        key_trait=Unicode(),
        help="Environment variables of the kernel, beyond PATH, HOME and the like.",
    ).tag(config=True)

    sandbox: Sandbox | None = None
    socket_dir: str | None = None

    @default("isolate")
    def _isolate_default(self) -> bool:
        return os.environ.get(UNSANDBOXED_ENV, "") in ("", "0")

    # ------------------------------------------------------------------ settings

    def limits(self) -> Limits:
        return Limits(
            cpu_seconds=self.cpu_seconds,
            memory_mb=self.memory_mb,
            processes=self.processes,
            file_mb=self.file_mb,
            open_files=self.open_files,
            tmp_mb=self.tmp_mb,
        )

    def settings(self) -> Settings:
        """What each of this provisioner's sandboxes gets; checks bubblewrap is usable."""
        settings = Settings(
            bwrap=find_bwrap(self.bwrap) if self.isolate else None,
            limits=self.limits(),
            uid_first=self.uid_first,
            uid_count=self.uid_count,
            read_only=dict(self.read_only),
        )
        check_settings(settings)
        if settings.bwrap is not None:
            _check_bwrap(settings.bwrap, settings.limits, self.uid_first, self.uid_count)
        return settings

    def kernel_environment(
        self, given: dict[str, str], launch_env: dict[str, str], python: str
    ) -> dict[str, str]:
        """The kernel's whole environment: nothing of the grader's own variables; only
        :data:`KEPT` of those its caller ``given`` for the kernel, the kernel spec's own
        variables (as ``launch_env`` has them, substituted) and :attr:`environment`."""
        home = self.sandbox.home if self.sandbox else "/tmp"
        spec = self.kernel_spec.env if self.kernel_spec else {}
        kept = {name: given[name] for name in KEPT if name in given}
        kept |= {name: launch_env[name] for name in spec if name in launch_env}
        parent = {"JPY_PARENT_PID": "1"} if self.sandbox and self.sandbox.isolated else {}
        return {**base_environment(home, python), **parent, **kept, **self.environment}

    # ------------------------------------------------------------------ jupyter_client hooks

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """Private Unix sockets, then the kernel command wrapped in a fresh sandbox."""
        settings = self.settings()
        km = self.parent
        if km is not None:
            if self.socket_dir is None:
                self.socket_dir = tempfile.mkdtemp(prefix="tlk-")
            km.transport = "ipc"
            km.ip = os.path.join(self.socket_dir, "k")
            km.connection_file = os.path.join(self.socket_dir, "kernel.json")
        given = dict(kwargs.get("env") or {})  # what the caller gave the kernel, if anything
        kwargs = await super().pre_launch(**kwargs)
        writable = [self.socket_dir] if self.socket_dir else []
        self.sandbox = Sandbox.open(settings, kwargs.get("cwd"), writable)
        try:
            argv = kernel_command(kwargs.pop("cmd"))
            environment = self.kernel_environment(given, kwargs.get("env", {}), argv[0])
            cmd, popen = self.sandbox.command(argv, environment)
        except BaseException:
            self.sandbox.close()
            raise
        return {**kwargs, **popen, "cmd": cmd}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        try:
            info = await super().launch_kernel(cmd, **kwargs)
        except BaseException:
            self.sandbox.close()
            raise
        if not self.sandbox.started(self.process.pid):
            self.sandbox.close()
            code = self.process.wait(timeout=10)
            raise SandboxUnavailable(
                f"bubblewrap exited ({code}) before the kernel's sandbox existed; its error "
                f"is in the grader's log. {FIX}"
            )
        return info

    async def send_signal(self, signum: int) -> None:
        """To the kernel's process group; SIGKILL to every process of the sandbox."""
        if self.process and self.sandbox:
            self.sandbox.signal(signum)

    async def cleanup(self, restart: bool = False) -> None:
        """No process of the sandbox left, its folders given back, its sockets removed."""
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        if self.socket_dir and not restart:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None
        await super().cleanup(restart=restart)


def kernel_command(argv: list[str]) -> list[str]:
    """Python with ``-P``, ipykernel with ``ignore_cwd``: no import from the working folder."""
    argv = list(argv)
    if os.path.basename(argv[0]).startswith("python") and "-P" not in argv[1:2]:
        argv.insert(1, "-P")
    if any("ipykernel" in part for part in argv):
        argv.append("--IPKernelApp.ignore_cwd=True")
    return argv


@functools.lru_cache(maxsize=8)
def _check_bwrap(bwrap: str, limits: Limits, uid_first: int, uid_count: int) -> None:
    """Once a process: bubblewrap makes a sandbox here (as the sandboxes' uid)."""
    from tlcourse.grading.sandbox.launch import run

    settings = Settings(bwrap, limits, uid_first, uid_count)
    try:
        done = run(settings, ["/bin/true"], timeout=30)
    except OSError as error:
        raise SandboxUnavailable(
            f"the sandbox (bubblewrap: {settings.bwrap}) could not be set up: {error}. {FIX}"
        ) from error
    if done.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap ({settings.bwrap}) cannot make a sandbox on this machine: "
            f"{done.stderr.strip() or f'exit status {done.returncode}'}. It needs user "
            "namespaces for unprivileged users (Debian: sysctl -w kernel.unprivileged_userns_"
            "clone=1; everywhere: user.max_user_namespaces above 0; Ubuntu 24.04: the "
            f"AppArmor profile that its bubblewrap package installs). {FIX}"
        )


def kernel_config(config: Config, read_only: dict[str, str], environment: dict[str, str]) -> Config:
    """A copy of ``config`` whose SandboxProvisioner also binds ``read_only`` and sets
    ``environment`` (on top of what ``config`` itself gives them)."""
    merged = copy.deepcopy(config)
    section = merged.SandboxProvisioner
    for name, extra in (("read_only", read_only), ("environment", environment)):
        given = section.get(name, {})
        if isinstance(given, LazyConfigValue):  # c.SandboxProvisioner.read_only.update(...)
            given = given.get_value({})
        section[name] = {**given, **extra}
    return merged
