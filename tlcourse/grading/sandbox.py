"""The sandbox a graded kernel runs in: resource limits, no network, the course out of sight.

nbgrader runs a student's notebook in a Jupyter kernel and protects nothing (its issue #483).
:class:`SandboxedKernelManager` starts that kernel through this module's launcher,
``python -m tlcourse.grading.sandbox SPEC -- KERNEL ARGV``, which, before it becomes the
kernel:

* puts the kernel in a cgroup of its own where one is writable (process count and memory of
  the kernel and all it starts: a fork bomb or a memory bomb stops there);
* sets rlimits: CPU seconds, address space, file size, open files, processes, no core files;
* where Linux namespaces are available (root, or unprivileged user namespaces): a network
  namespace with no interface up (no network at all; the kernel talks to nbgrader over Unix
  sockets), a PID namespace (it sees no other process, the grader's included), and a mount
  namespace in which every file system is read-only but the submission's own folder and a
  private ``/tmp``, and the course directory (held-out data, gradebook, other students'
  work) is replaced by an empty folder.

:func:`isolation` says which of these a machine gives, so that the instructor's report can say
what protected a batch. Scoring never happens in the sandbox: nbgrader reads the outputs, and
the accuracy is evaluated by the grader after the kernel is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

#: Environment variable through which the grader hands the sandbox's spec to the kernel manager.
SPEC_ENV = "TLCOURSE_SANDBOX"

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
_MOUNT_FLAGS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """What one graded kernel may use (it and every process it starts)."""

    cpu_seconds: int = 900
    memory_mb: int = 6144
    processes: int = 256
    file_mb: int = 256
    open_files: int = 1024
    tmp_mb: int = 512


@dataclass
class SandboxSpec:
    """One kernel's sandbox: its limits, what it may write, what it must not see."""

    limits: Limits = field(default_factory=Limits)
    #: Folders the kernel may write (the submission's; the Unix sockets' folder).
    writable: list[str] = field(default_factory=list)
    #: Folders replaced by an empty one (the course directory).
    hidden: list[str] = field(default_factory=list)
    #: Files and folders the kernel reads (data, weights, Python) that the private /tmp would
    #: cover: bound back read-only.
    readable: list[str] = field(default_factory=list)
    isolate: bool = True
    #: The process that starts the launcher: if it is gone before the launcher could ask to
    #: die with it, the launcher exits at once (no orphaned kernel).
    parent: int = 0

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> SandboxSpec:
        data = json.loads(text)
        return cls(**{**data, "limits": Limits(**data["limits"])})


# --------------------------------------------------------------------------- in the launcher

_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}{args[:3]}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _call("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep) of every mount, from ``/proc/self/mountinfo``."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4].encode().decode("unicode_escape")
        flags = sum(_MOUNT_FLAGS.get(option, 0) for option in fields[5].split(","))
        found.append((point, flags))
    return found


def _cgroup_dirs() -> list[Path]:
    """Writable cgroup folders for pids and memory (v1 controllers or a v2 hierarchy)."""
    root = Path("/sys/fs/cgroup")
    v1 = [root / name for name in ("pids", "memory") if (root / name / "cgroup.procs").exists()]
    if v1:
        return [path for path in v1 if os.access(path, os.W_OK)]
    if (root / "cgroup.controllers").exists() and os.access(root, os.W_OK):
        return [root]
    return []


def _enter_cgroups(limits: Limits) -> list[str]:
    """Move this process into fresh cgroups with the limits; the folders made."""
    made = []
    for base in _cgroup_dirs():
        for stale in base.glob("tlcourse-*"):
            with contextlib.suppress(OSError):  # only an empty cgroup goes: a live one stays
                stale.rmdir()
        path = base / f"tlcourse-{os.getpid()}"
        try:
            path.mkdir()
            made.append(str(path))
            settings = {
                "pids.max": str(limits.processes),
                "memory.limit_in_bytes": str(limits.memory_mb * 2**20),
                "memory.memsw.limit_in_bytes": str(limits.memory_mb * 2**20),
                "memory.max": str(limits.memory_mb * 2**20),
                "memory.swap.max": "0",
            }
            for name, value in settings.items():
                if (path / name).exists():
                    with contextlib.suppress(OSError):  # memsw: absent without swap accounting
                        _write(str(path / name), value)
            _write(str(path / "cgroup.procs"), str(os.getpid()))
        except OSError:
            continue
    return made


def _set_rlimits(limits: Limits, *, processes: bool) -> None:
    mb = 2**20
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def _unshare() -> None:
    """New mount, network and PID namespaces (in a user namespace when not root)."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID
    if uid != 0:
        _call("unshare", CLONE_NEWUSER | flags)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    else:
        _call("unshare", flags)


def python_reads() -> list[str]:
    """The Python this process runs: its prefixes, every folder on its import path (a venv,
    an editable install's package, ``PYTHONPATH``) but the working directory, and tlcourse.

    The sandbox binds these back when its private ``/tmp`` would cover them, so that a kernel
    imports what the grader imports even when all of it lies under ``/tmp``.
    """
    import tlcourse

    cwd = os.path.realpath(os.getcwd())
    pythonpath = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    explicit = {os.path.realpath(path) for path in pythonpath if path}
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(tlcourse.__file__)]
    paths += [entry for entry in sys.path if entry and os.path.isdir(entry)]
    resolved = [os.path.realpath(path) for path in paths]
    return list(dict.fromkeys(p for p in resolved if p != cwd or p in explicit))


def _within(path: str, folders) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def _covered(spec: SandboxSpec) -> list[str]:
    """The ``readable`` paths that the private /tmp would cover (never one in or over a
    hidden folder: what is hidden stays hidden)."""
    return [
        path
        for path in dict.fromkeys(spec.readable)
        if _within(path, ["/tmp", "/dev/shm"])
        and path not in ("/tmp", "/dev/shm")  # the private /tmp itself stays private
        and not _within(path, spec.hidden)
        and not any(_within(hidden, [path]) for hidden in spec.hidden)
        and os.path.exists(path)
    ]


def _bind_back(source_fd: int, path: str) -> None:
    """Bind what ``source_fd`` opened (a file or a folder) at ``path`` in the new tree."""
    source = f"/proc/self/fd/{source_fd}"
    if os.path.isdir(source):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Path(path).touch(exist_ok=True)
    _mount(source, path, None, MS_BIND, None)
    os.close(source_fd)


def _build_filesystem(spec: SandboxSpec) -> None:
    """Everything read-only but ``writable`` and a private /tmp; ``hidden`` emptied."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    cwd = os.getcwd()
    keep = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in spec.writable}
    reveal = {path: os.open(path, os.O_PATH) for path in _covered(spec)}
    tmp_size = f"size={spec.limits.tmp_mb}m"
    for path in spec.hidden:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"{tmp_size},mode=755")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"{tmp_size},mode=1777")
    if Path("/dev/shm").is_dir():
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"{tmp_size},mode=1777")
    for path, fd in [*reveal.items(), *keep.items()]:  # a writable folder may lie in a read one
        _bind_back(fd, path)
    own = {"/tmp", "/dev/shm", "/proc", *spec.writable, *spec.hidden}
    for point, flags in _mounts():
        if point in own or point.startswith(("/proc/", "/sys/")):
            continue
        # a mount hidden under another one, or one the kernel locks as it is, stays as it is
        with contextlib.suppress(OSError):
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None)
    # a user namespace may not mount a proc over locked ones: the old one then stays
    with contextlib.suppress(OSError):
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.chdir(cwd)  # the old working directory is pinned to the old, now read-only, mount


def _forward_and_wait(child: int) -> int:
    """In the launcher (outside the PID namespace): pass signals on, exit as the child does."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda number, _frame: os.kill(child, number))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) % 256


def launch(spec: SandboxSpec, argv: list[str]) -> int:
    """Enter the sandbox and run ``argv`` in it (as PID 1 of its namespace when isolated)."""
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with its grader
    if spec.parent and os.getppid() != spec.parent:
        return 1  # the grader died between starting this process and the line above
    _enter_cgroups(spec.limits)
    isolated = False
    if spec.isolate:
        try:
            _unshare()
            isolated = True
        except OSError as error:
            print(f"tlcourse sandbox: no namespaces ({error}); limits only", file=sys.stderr)
    if isolated:
        alive_r, alive_w = os.pipe()  # open in the launcher until it dies
        child = os.fork()
        if child:
            os.close(alive_r)
            return _forward_and_wait(child)
        os.close(alive_w)
        _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if select.select([alive_r], [], [], 0)[0]:  # EOF: the launcher died before the prctl
            os._exit(1)
        os.close(alive_r)
        spec.readable = [*spec.readable, *python_reads()]
        _build_filesystem(spec)
    _set_rlimits(spec.limits, processes=os.getuid() != 0)
    os.environ["PYTHONSAFEPATH"] = "1"  # Python in the sandbox: no import from the folder
    if isolated:  # home is read-only: caches go to the private /tmp
        for name, folder in (("MPLCONFIGDIR", "matplotlib"), ("IPYTHONDIR", "ipython")):
            os.environ[name] = f"/tmp/{folder}"
        os.environ["TMPDIR"] = "/tmp"
    os.execvp(argv[0], argv)
    return 127  # not reached


def isolation(spec: SandboxSpec | None = None) -> dict[str, bool]:
    """What the sandbox enforces on this machine: tried in a throwaway child process."""
    import subprocess

    spec = spec or SandboxSpec(writable=[tempfile.gettempdir()])
    probe = (
        "import json, os, socket, resource\n"
        "net = True\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError as e:\n"
        "    net = 'unreachable' not in str(e).lower()\n"
        "print(json.dumps({'network_blocked': not net, 'pid_namespace': os.getpid() == 1}))\n"
    )
    command = [sys.executable, "-m", __name__, spec.dumps(), "--", sys.executable, "-c", probe]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    found = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    return {
        "namespaces": bool(found.get("pid_namespace")),
        "network_blocked": bool(found.get("network_blocked")),
        "cgroups": bool(_cgroup_dirs()),
        "rlimits": True,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tlcourse.grading.sandbox SPEC_JSON -- COMMAND...", file=sys.stderr)
        return 2
    return launch(SandboxSpec.loads(argv[0]), argv[2:])


# --------------------------------------------------------------------------- in the grader


def remove_cgroups(pid: int) -> None:
    """Remove the cgroups a launcher with ``pid`` made (once its processes are gone)."""
    for base in _cgroup_dirs():
        path = base / f"tlcourse-{pid}"
        if path.is_dir():
            try:
                for task in (path / "cgroup.procs").read_text().split():
                    os.kill(int(task), signal.SIGKILL)
                path.rmdir()
            except OSError:
                pass


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start inside the sandbox :data:`SPEC_ENV` describes.

    The kernel talks to nbgrader over Unix sockets in a short private folder (a network
    namespace has no loopback to offer), which the sandbox keeps writable.
    """

    def _sandbox_spec(self, cwd: str | None) -> SandboxSpec | None:
        text = os.environ.get(SPEC_ENV)
        if not text:
            return None
        spec = SandboxSpec.loads(text)
        spec.parent = os.getpid()
        if cwd:
            spec.writable.append(str(Path(cwd).resolve()))
        spec.writable.append(self._socket_dir)
        return spec

    async def _async_pre_start_kernel(self, **kw):
        if os.environ.get(SPEC_ENV):
            self._socket_dir = tempfile.mkdtemp(prefix="tlk-")
            self.transport = "ipc"
            self.ip = os.path.join(self._socket_dir, "k")
            self.connection_file = os.path.join(self._socket_dir, "kernel.json")
        self._sandbox_cwd = kw.get("cwd")
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        spec = self._sandbox_spec(getattr(self, "_sandbox_cwd", None))
        if spec is None:
            return command
        if any("ipykernel" in part for part in command):
            # IPython puts the working directory (the submission's folder) before
            # site-packages: a student's numpy.py would shadow numpy, or kill the kernel.
            command.append("--IPKernelApp.ignore_cwd=True")
        # -P: the launcher and the kernel it becomes never import from the submission's folder
        return [sys.executable, "-P", "-m", __name__, spec.dumps(), "--", *command]

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        pid = getattr(getattr(self, "provisioner", None), "pid", None)
        await super()._async_cleanup_resources(restart=restart)
        if pid:
            remove_cgroups(pid)
        socket_dir = getattr(self, "_socket_dir", None)
        if socket_dir and not restart:
            import shutil

            shutil.rmtree(socket_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
