"""Attacks on the sandbox itself: what got out of the hand-written one, tried again on the
bubblewrap sandbox (issue: a sandbox that holds for root). Each runs at the top of an otherwise
correct answer and fails without a trace, so each submission keeps its full marks; the
survivor must be gone once its grade is done (``tests/test_grading_hostile.py`` checks that
no process of the batch is left). Graded in the same batch as the rest of the hostile corpus.
"""

from __future__ import annotations

from corpus.hostile import Case, prefixed

REMOUNT = (
    "import subprocess as _sp\n"
    "for _args in (['mount', '-o', 'remount,rw', '/'], ['umount', '/tmp'], ['umount', '-l', '.'],\n"
    "              ['unshare', '--user', '--map-root-user', '--mount', 'umount', '/tmp']):\n"
    "    try:\n"
    "        _done = _sp.run(_args, capture_output=True, timeout=10)\n"
    "        print('REMOUNTED' if _done.returncode == 0 else 'refused:', ' '.join(_args))\n"
    "    except Exception as _error:\n"
    "        print('could not run', _args[0], type(_error).__name__)\n"
)
LEAVE_CGROUPS = (
    "import os as _os\n"
    "for _path in ('/sys/fs/cgroup/cgroup.procs', '/sys/fs/cgroup/pids/cgroup.procs',\n"
    "              '/sys/fs/cgroup/memory/cgroup.procs', '/sys/fs/cgroup/unified/cgroup.procs'):\n"
    "    try:\n"
    "        open(_path, 'w').write(str(_os.getpid()))\n"
    "        print('LEFT my cgroup through', _path)\n"
    "    except OSError as _error:\n"
    "        print('stayed:', _path, type(_error).__name__)\n"
)


def host_network(port: int) -> str:
    return (
        "import ctypes as _ct, os as _os, urllib.request as _url\n"
        "_libc = _ct.CDLL(None, use_errno=True)\n"
        "for _pid in ('1', str(_os.getppid())):\n"
        "    try:\n"
        "        _fd = _os.open(f'/proc/{_pid}/ns/net', _os.O_RDONLY)\n"
        "        print('JOINED' if _libc.setns(_fd, 0x40000000) == 0 else 'no setns:', _pid)\n"
        "    except OSError as _error:\n"
        "        print('no namespace of', _pid, type(_error).__name__)\n"
        "try:\n"
        f"    print('LEAKED', _url.urlopen('http://127.0.0.1:{port}/escape', timeout=5).status)\n"
        "except OSError as _error:\n"
        "    print('no network:', type(_error).__name__)\n"
    )


SURVIVOR = (
    "import ctypes as _ct, os as _os, signal as _signal, time as _time\n"
    "_child = _os.fork()\n"
    "if _child == 0:\n"
    "    _os.setsid()\n"
    "    if _os.fork() == 0:\n"
    "        _ct.CDLL(None).prctl(1, 0, 0, 0, 0)  # no signal when the parent dies\n"
    "        for _sig in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):\n"
    "            _signal.signal(_sig, _signal.SIG_IGN)\n"
    "        for _path in ('/sys/fs/cgroup/cgroup.procs', '/sys/fs/cgroup/pids/cgroup.procs'):\n"
    "            try:\n"
    "                open(_path, 'w').write(str(_os.getpid()))\n"
    "            except OSError:\n"
    "                pass\n"
    "        _kept = [_os.dup(1), _os.dup(2), _os.dup(0)]  # the kernel's pipes, held open\n"
    "        _time.sleep(120)\n"
    "        for _fd in _kept[:2]:\n"
    "            _os.write(_fd, b'SURVIVED its grade\\n')\n"
    "        while True:\n"
    "            _time.sleep(1)\n"
    "    _os._exit(0)\n"
    "_os.waitpid(_child, 0)\n"
)
READ_SOLUTIONS = (
    "import os as _os, tlcourse as _tl\n"
    "_root = _os.path.dirname(_os.path.dirname(_tl.__file__))\n"
    "for _path in ('solutions/01-preprocessing/01-preprocessing.ipynb',\n"
    "              'autograder/nbgrader_config.py', 'tests/conftest.py'):\n"
    "    try:\n"
    "        print('READ', _path, len(open(_os.path.join(_root, _path)).read()), 'characters')\n"
    "    except OSError as _error:\n"
    "        print('could not read', _path, type(_error).__name__)\n"
    "try:\n"
    "    from tlcourse.grading.grade.course import repo_root as _repo_root\n"
    "    print('READ the checkout', sorted(_os.listdir(_repo_root())))\n"
    "except Exception as _error:\n"
    "    print('no checkout:', type(_error).__name__)\n"
)

ESCAPES: tuple[Case, ...] = (
    Case(
        "remount",
        "remounting / read-write, unmounting /tmp and its own folder (also in a new namespace)",
        prefixed("to_unit", REMOUNT),
        10,
        absent=("REMOUNTED",),
        defence="no capability and no further user namespace in the sandbox: mounts are fixed",
    ),
    Case(
        "leave-cgroups",
        "moving itself out of its cgroups",
        prefixed("to_unit", LEAVE_CGROUPS),
        10,
        absent=("LEFT my cgroup",),
        defence="the sandbox has no /sys: its cgroups cannot be named, let alone left",
    ),
    Case(
        "host-network",
        "joining the host's network namespace and reaching a server on 127.0.0.1",
        lambda nb, ctx: prefixed("to_unit", host_network(ctx.port))(nb, ctx),
        10,
        absent=("JOINED", "LEAKED"),
        defence="PID 1 is the sandbox's own and setns needs a capability it has not",
    ),
    Case(
        "survivor",
        "a process that outlives its kernel (double fork, setsid, signals ignored, pipes held)",
        prefixed("to_unit", SURVIVOR),
        10,
        absent=("SURVIVED",),
        defence="the sandbox's PID namespace and cgroups are killed with its kernel",
    ),
    Case(
        "read-solutions",
        "reading the checkout's solutions through tlcourse.__file__",
        prefixed("to_unit", READ_SOLUTIONS),
        10,
        absent=("READ ",),
        defence="only the tlcourse package folder is bound, not the checkout around it",
    ),
)
