"""What the sandbox enforces on this machine, tried from inside one: for the batch's report.

:func:`isolation` runs a probe in a sandbox made with the provisioner's settings (the
course's config) and reports what it found: the uid the probe's process has on the host (read
there), its capabilities, whether it has user, PID, mount and network namespaces of its own
and reaches a port the grader listens on, which cgroups and rlimits bound it.
:func:`unreadable_by_kernels` says what of the files kernels are shown their user may not read.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
from pathlib import Path

from traitlets.config import Config

from tlcourse.grading.sandbox.launch import Sandbox, Settings, base_environment
from tlcourse.grading.sandbox.limits import available
from tlcourse.grading.sandbox.provisioner import SandboxProvisioner
from tlcourse.grading.sandbox.users import HostUser, unreadable

#: Longest wait for the probe's report.
PROBE_SECONDS = 60

PROBE = r"""
import json, os, socket, sys
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
found = {
    "capabilities": int(status["CapEff"].strip(), 16),
    "namespaces": {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in ("user", "pid", "mnt", "net")},
}
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    found["reached"] = True
except OSError:
    found["reached"] = False
print(json.dumps(found), flush=True)
sys.stdin.read()  # until the grader has looked at this process from outside
"""


def host_uid(pid: int) -> int:
    """The real uid of process ``pid`` as the host sees it."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _probe(settings: Settings, port: int) -> tuple[dict, int]:
    """What the probe saw from inside, and its uid outside."""
    sandbox = Sandbox.open(settings, None)
    try:
        python = os.path.abspath(sys.executable)  # no "..": the sandbox has no path to walk
        argv = [python, "-I", "-c", PROBE, str(port)]
        cmd, popen = sandbox.command(argv, base_environment(sandbox.home, python))
        pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        with subprocess.Popen(cmd, text=True, **pipes, **popen) as process:
            sandbox.started(process.pid)
            ready, _, _ = select.select([process.stdout], [], [], PROBE_SECONDS)
            line = process.stdout.readline() if ready else ""
            uid = host_uid(sandbox.kernel_pid) if line and sandbox.kernel_pid else -1
            if not line:
                sandbox.kill()
            out, err = process.communicate("", timeout=PROBE_SECONDS)
        if not line:
            raise RuntimeError(f"the isolation probe failed: {err.strip()[-2000:]}")
        return json.loads(line), uid
    finally:
        sandbox.close()


def _version(bwrap: str | None) -> str | None:
    if bwrap is None:
        return None
    done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
    return done.stdout.strip() or bwrap


def isolation(config: Config | None = None) -> dict:
    """What a sandbox of ``config``'s ``SandboxProvisioner`` enforces here.

    Raises:
        SandboxUnavailable: bubblewrap is missing or cannot make a sandbox (and the config
            does not say ``isolate = False``).
    """
    provisioner = SandboxProvisioner(config=config or Config())
    settings = provisioner.settings()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        found, uid = _probe(settings, listener.getsockname()[1])
    own = {n: os.stat(f"/proc/self/ns/{n}").st_ino for n in ("user", "pid", "mnt", "net")}
    apart = {name: found["namespaces"][name] != own[name] for name in own}
    return {
        "sandbox": _version(settings.bwrap),
        "uid": uid,
        "unprivileged_uid": uid > 0,
        "no_capabilities": found["capabilities"] == 0,
        "user_namespace": apart["user"],
        "pid_namespace": apart["pid"],
        "mount_namespace": apart["mnt"],
        "network_blocked": apart["net"] and not found["reached"],
        "namespaces": all(apart.values()),
        "cgroups": available(),
        "rlimits": {**vars(settings.limits)},
    }


def unreadable_by_kernels(paths: list[str], config: Config | None = None) -> tuple[list, int]:
    """What under ``paths`` the sandbox's user may not read, and that user's uid.

    A root grader's sandboxes run as uids that own nothing and are in no group: they read
    what every user may read. Other graders' sandboxes run as the grader.
    """
    provisioner = SandboxProvisioner(config=config or Config())
    if provisioner.isolate and os.geteuid() == 0:
        user = HostUser(provisioner.uid_first, provisioner.uid_first)
    else:
        user = HostUser(os.getuid(), os.getgid())
    return [item for path in paths for item in unreadable(path, user)], user.uid
