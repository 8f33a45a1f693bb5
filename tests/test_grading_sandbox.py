"""The grading sandbox, tried from inside real sandboxed kernels and processes (real bubblewrap,
as CI runs: as root); then cell restoration on its own.

Every escape that got out of the old hand-written sandbox is tried again here and must fail:
remounting or unmounting, writing outside the submission's folder, reading the course or the
checkout (also through ``tlcourse.__file__``), leaving the cgroups, joining the host's network
namespace, reaching a listener on 127.0.0.1, reading the grader's environment, a fork bomb as
root, and a survivor that ignores its signals and hides from its parents.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from grading_fixtures import PROJECT_ROOT
from traitlets.config import Config

from tlcourse.grading.grade.integrity import restore_graded_cells
from tlcourse.grading.sandbox import (
    SandboxKernelManager,
    SandboxProvisioner,
    SandboxUnavailable,
    isolation,
)
from tlcourse.grading.sandbox.launch import Sandbox, base_environment

RELEASE = PROJECT_ROOT / "exercises" / "01-preprocessing" / "01-preprocessing.ipynb"
CANARY = "TLCOURSE_TEST_CANARY"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module", autouse=True)
def _no_stale_running_loop():
    """Earlier tests in this process (nbclient's ``run_sync`` under ``nest_asyncio``) can leave
    this thread marked as running an event loop while nothing runs; these tests drive their own
    loops, which asyncio refuses under that mark."""
    stale = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    yield
    asyncio.events._set_running_loop(stale)


class Kernel:
    """A kernel started by SandboxKernelManager, driven from this (synchronous) test."""

    def __init__(self, cwd: Path, config: Config | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.km = SandboxKernelManager(config=config or Config())
        self.loop.run_until_complete(self.km.start_kernel(cwd=str(cwd)))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.loop.run_until_complete(self.kc.wait_for_ready(timeout=60))

    @property
    def sandbox(self) -> Sandbox:
        return self.km.provisioner.sandbox

    def run(self, code: str) -> str:
        """What ``code`` printed; it must not raise."""
        out: list[str] = []

        def keep(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        reply = self.loop.run_until_complete(
            self.kc.execute_interactive(code, output_hook=keep, timeout=60)
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)

    def json(self, code: str):
        return json.loads(self.run(code).strip().splitlines()[-1])

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.loop.run_until_complete(self.km.shutdown_kernel())
        self.loop.close()


def settings(**traits):
    return SandboxProvisioner(**traits).settings()


def in_sandbox(script: str, *args: str, cwd: Path | None = None, **traits) -> tuple[dict, int]:
    """Run a Python ``script`` in a sandbox of its own: the JSON it prints last, and the host
    uid the sandbox ran as."""
    sandbox = Sandbox.open(settings(**traits), str(cwd) if cwd else None)
    try:
        argv = [sys.executable, "-c", script, *args]
        cmd, popen = sandbox.command(argv, base_environment(sandbox.home, sys.executable))
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        with subprocess.Popen(cmd, text=True, **pipes, **popen) as process:
            sandbox.started(process.pid)
            out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1]), sandbox.user.uid
    finally:
        sandbox.close()


def status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) host processes whose real uid is ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                info = status(int(entry.name))
            except OSError:
                continue
            if int(info["Uid"].split()[0]) == uid and not info["State"].startswith("Z"):
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return not status(pid)["State"].startswith("Z")
    except OSError:
        return False


def gone_within(pids: set[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --------------------------------------------------------------------------- one kernel


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict[str, Path]:
    """A course under pytest's root-only (0700) folders: this student's folder, another
    student's work, the gradebook and held-out data; data the grader binds elsewhere."""
    root = tmp_path_factory.mktemp("sandboxed")
    course = root / "course"
    mine = course / "autograded" / "alice" / "01-preprocessing"
    mine.mkdir(parents=True)
    (mine / "01-preprocessing.ipynb").write_text("{}")
    other = course / "autograded" / "bob" / "01-preprocessing"
    other.mkdir(parents=True)
    (other / "01-preprocessing.ipynb").write_text("bob's work")
    (course / "gradebook.db").write_text("grades")
    (course / "grader").mkdir()
    (course / "grader" / "heldout.npz").write_text("held-out images")
    train = root / "data" / "train"
    train.mkdir(parents=True)
    (train / "data_batch_1").write_text("training images")
    (root / "data" / "test_batch").write_text("the test set: not for kernels")
    (root / "outside.txt").write_text("before")
    return {"root": root, "course": course, "mine": mine, "train": train}


@pytest.fixture(scope="module")
def kernel(course):
    """One sandboxed kernel (as the grader starts them), shown the training data at /data."""
    config = Config()
    config.SandboxProvisioner.read_only = {"/data/train": str(course["train"])}
    config.SandboxProvisioner.environment = {"TLCOURSE_DATA": "/data/train"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(CANARY, "the grader's secret")
        started = Kernel(course["mine"], config)
    yield started
    started.shutdown()


def test_outside_its_namespace_the_kernel_is_an_unprivileged_uid_without_capabilities(kernel):
    pid = kernel.sandbox.kernel_pid
    outside = status(pid)
    assert int(outside["Uid"].split()[0]) != 0 and int(outside["Gid"].split()[0]) != 0
    assert int(outside["CapEff"], 16) == 0 and int(outside["CapPrm"], 16) == 0
    if os.geteuid() == 0:  # a uid of its own, which owns nothing of the grader's
        assert int(outside["Uid"].split()[0]) == kernel.sandbox.user.uid != os.getuid()
    inside = kernel.json("import json, os; print(json.dumps([os.getuid(), os.getgid()]))")
    assert inside == [1000, 1000]


def test_mounts_cannot_be_changed_from_inside(kernel):
    found = kernel.json(
        "import ctypes, json, subprocess\n"
        "runs = [subprocess.run(c, capture_output=True) for c in (\n"
        "    ['mount', '-o', 'remount,rw', '/'], ['umount', '/tmp'], ['umount', '-l', '/'],\n"
        "    ['unshare', '--user', '--map-root-user', 'true'])]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "calls = [libc.mount(None, b'/', None, ctypes.c_ulong(32 | 4096), None),\n"
        "         libc.umount2(b'/tmp', 2)]\n"
        "print(json.dumps([[r.returncode for r in runs], calls]))"
    )
    assert all(code != 0 for code in found[0]), found
    assert found[1] == [-1, -1]


def test_writes_land_only_in_the_submission_folder(kernel, course):
    outside = course["root"] / "outside.txt"
    found = kernel.json(
        "import json\n"
        "done = {}\n"
        f"for name, path in [('outside', {str(outside)!r}), ('usr', '/usr/x'),\n"
        "                   ('data', '/data/train/x'), ('etc', '/etc/passwd'), ('root', '/x'),\n"
        f"                   ('python', {sys.prefix + '/x'!r}), ('tmp', '/tmp/x'),\n"
        f"                   ('checkout', {str(PROJECT_ROOT / 'x')!r}), ('here', 'mine.txt')]:\n"
        "    try:\n"
        "        open(path, 'w').write('written by a kernel')\n"
        "        done[name] = 'written'\n"
        "    except OSError as error:\n"
        "        done[name] = type(error).__name__\n"
        "print(json.dumps(done))"
    )
    assert found.pop("here") == found.pop("tmp") == "written"
    found.pop("outside")  # under /tmp: the private /tmp took it, the host's file is untouched
    if PROJECT_ROOT.is_relative_to("/tmp"):  # a checkout under /tmp: the same (line below)
        found.pop("checkout")
    assert "written" not in found.values(), found
    assert outside.read_text() == "before" and not Path(sys.prefix, "x").exists()
    assert not (PROJECT_ROOT / "x").exists()
    assert (course["mine"] / "mine.txt").read_text() == "written by a kernel"
    assert not Path("/tmp/x").exists() or Path("/tmp/x").read_text() != "written by a kernel"


def test_the_course_and_the_checkout_are_out_of_sight(kernel, course):
    found = kernel.json(
        "import json, os, tlcourse\n"
        "checkout = os.path.dirname(os.path.dirname(tlcourse.__file__))\n"
        f"course = {str(course['course'])!r}\n"
        "print(json.dumps({\n"
        "    'course': sorted(os.listdir(course)),\n"
        "    'students': sorted(os.listdir(course + '/autograded')),\n"
        "    'checkout': sorted(os.listdir(checkout)),\n"
        f"    'solutions': os.path.exists({str(PROJECT_ROOT / 'solutions')!r}),\n"
        "    'root': sorted(os.listdir('/')),\n"
        "}))"
    )
    assert found["course"] == ["autograded"] and found["students"] == ["alice"]
    assert not {"solutions", "autograder", "tests"} & set(found["checkout"])
    assert found["solutions"] is False
    assert not {"home", "root-secrets", "srv", "var", "sys", "mnt", "opt"} & set(found["root"])


def test_the_data_is_bound_where_the_grader_says_and_nothing_beside_it(kernel):
    found = kernel.json(
        "import json, os\n"
        "print(json.dumps([os.environ['TLCOURSE_DATA'], sorted(os.listdir('/data')),\n"
        "    sorted(os.listdir('/data/train')), open('/data/train/data_batch_1').read()]))"
    )
    assert found == ["/data/train", ["train"], ["data_batch_1"], "training images"]


def test_its_cgroups_cannot_be_left(kernel):
    found = kernel.json(
        "import json, os\n"
        "done = []\n"
        "for name in ('', 'pids/', 'memory/', 'unified/'):\n"
        "    path = f'/sys/fs/cgroup/{name}cgroup.procs'\n"
        "    try:\n"
        "        open(path, 'w').write(str(os.getpid()))\n"
        "        done.append('moved')\n"
        "    except OSError as error:\n"
        "        done.append(type(error).__name__)\n"
        "print(json.dumps([done, os.path.exists('/sys')]))"
    )
    assert "moved" not in found[0] and found[1] is False
    cgroups = Path(f"/proc/{kernel.sandbox.kernel_pid}/cgroup").read_text()
    if kernel.sandbox.cgroups.paths:  # where the grader may make cgroups (root, here)
        assert "pids:" in cgroups and "/tlcourse-" in cgroups.split("pids:")[1].split("\n")[0]


def test_there_is_no_way_into_the_hosts_network(kernel):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        found = kernel.json(
            "import ctypes, json, os, socket\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "fd = os.open('/proc/1/ns/net', os.O_RDONLY)\n"
            "joined = libc.setns(fd, 0x40000000)\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), 2)\n"
            "    reached = 'reached'\n"
            "except OSError as error:\n"
            "    reached = type(error).__name__\n"
            "print(json.dumps([joined, reached, open('/proc/1/cmdline').read().split('\\0')[0],\n"
            "    [name for _, name in socket.if_nameindex()]]))"
        )
        with pytest.raises(TimeoutError):
            listener.accept()
    joined, reached, pid1, interfaces = found
    assert joined == -1 and reached != "reached"
    assert os.path.basename(pid1) == "bwrap"  # PID 1 is the sandbox's own
    assert interfaces == ["lo"]


def test_the_environment_holds_nothing_of_the_graders(kernel):
    names = kernel.json("import json, os; print(json.dumps(sorted(os.environ)))")
    assert CANARY not in names
    assert {"HOME", "PATH", "PYTHONSAFEPATH", "TLCOURSE_DATA"} <= set(names)
    assert not {"PYTHONPATH", "VIRTUAL_ENV", "TLCOURSE_CACHE"} & set(names)
    assert kernel.run("import os; print(os.environ['JPY_PARENT_PID'])").strip() == "1"


def test_a_module_planted_in_the_folder_shadows_nothing(kernel, course):
    (course["mine"] / "colorsys.py").write_text("raise ImportError('planted')\n")
    found = kernel.run("import colorsys; print(colorsys.__file__)")
    assert str(course["mine"]) not in found


# --------------------------------------------------------------------------- no survivor

SURVIVOR = r"""
import ctypes, os, signal, time
libc = ctypes.CDLL(None)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        libc.prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: no signal when the parent dies
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        for path in ("/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/pids/cgroup.procs"):
            try:
                open(path, "w").write(str(os.getpid()))
            except OSError:
                pass
        kept = [os.dup(1), os.dup(2)]  # the kernel's output, held open
        open("survivor.pid", "w").write(str(os.getpid()))
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
while not os.path.exists("survivor.pid"):
    time.sleep(0.05)
print("survivor started")
"""


def _with_a_survivor(tmp_path: Path) -> tuple[Kernel, set[int], int]:
    folder = tmp_path / "survivor"
    folder.mkdir()
    started = Kernel(folder)
    assert "survivor started" in started.run(SURVIVOR)
    sandbox = started.sandbox
    survivors = sandbox.processes() - {sandbox.pid, sandbox.info["child-pid"], sandbox.kernel_pid}
    assert len(survivors) == 1, survivors
    return started, survivors, sandbox.user.uid


def test_a_survivor_is_gone_once_its_kernel_is_shut_down(tmp_path):
    started, survivors, uid = _with_a_survivor(tmp_path)
    survivor = next(iter(survivors))
    assert status(survivor)["SigIgn"] != "0000000000000000"  # it ignores SIGTERM, SIGHUP
    started.shutdown()
    assert gone_within(survivors, 5)
    if uid != os.getuid():  # a uid of its own: nothing at all runs as it any more
        assert processes_of(uid) == []
    for path in (tmp_path / "survivor").iterdir():  # the folder is the grader's again
        assert path.lstat().st_uid == os.getuid()


def test_a_survivor_dies_with_its_sandbox_even_without_the_graders_cleanup(tmp_path):
    started, survivors, _ = _with_a_survivor(tmp_path)
    os.kill(started.km.provisioner.process.pid, signal.SIGKILL)  # bubblewrap alone
    assert gone_within(survivors, 5)  # its PID namespace ended with the sandbox's init
    started.shutdown()


# --------------------------------------------------------------------------- limits, folders


def test_a_fork_bomb_stops_at_the_process_limit_as_root(tmp_path):
    bomb = (
        "import json, os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as error:\n"
        "    print(json.dumps([type(error).__name__, n]))\n"
    )
    (error, forked), uid = in_sandbox(bomb, cwd=tmp_path, processes=40)
    assert error == "BlockingIOError" and 30 <= forked < 40
    assert processes_of(uid) == [] or uid == os.getuid()  # and every child is gone


def test_memory_file_size_and_tmp_are_bounded(tmp_path):
    script = (
        "import json\n"
        "found = {}\n"
        "try:\n"
        "    hog = bytearray(2 * 2**30)\n"
        "    found['memory'] = 'allocated'\n"
        "except MemoryError:\n"
        "    found['memory'] = 'MemoryError'\n"
        "for name, path in (('file', 'big.bin'), ('tmp', '/tmp/big.bin')):\n"
        "    try:\n"
        "        open(path, 'wb').write(b'x' * 3 * 2**20)\n"
        "        found[name] = 'written'\n"
        "    except OSError as error:\n"
        "        found[name] = error.strerror\n"
        "print(json.dumps(found))\n"
    )
    found, _ = in_sandbox(script, cwd=tmp_path, memory_mb=1024, file_mb=2)
    assert found == {"memory": "MemoryError", "file": "File too large", "tmp": "File too large"}
    found, _ = in_sandbox(script.replace("3 * 2**20", "5 * 2**20"), cwd=tmp_path, tmp_mb=2)
    assert found["tmp"] == "No space left on device" and found["file"] == "written"


def test_its_folder_is_lent_and_given_back_and_no_link_is_followed(tmp_path):
    folder, victim = tmp_path / "submission", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_text("the grader's")
    victim.chmod(0o600)
    (folder / "planted").symlink_to(victim)  # a link in the folder before the kernel starts
    script = (
        "import json, os\n"
        "open('made.txt', 'w').write('x')\n"
        "os.chmod('made.txt', 0o4755)\n"
        f"os.symlink({str(victim)!r}, 'made-link')\n"
        "print(json.dumps(os.stat('.').st_uid))"
    )
    before = victim.stat()
    owner, uid = in_sandbox(script, cwd=folder)
    after = victim.stat()
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    assert victim.read_text() == "the grader's"
    for path in [folder, *folder.iterdir()]:
        assert path.lstat().st_uid == os.getuid(), path
    assert not stat.S_IMODE((folder / "made.txt").stat().st_mode) & 0o4000
    if os.geteuid() == 0:
        assert uid != 0 and owner == 1000  # the folder was the sandbox uid's while it ran


def test_isolation_reports_what_this_machine_enforces():
    found = isolation()
    assert found["sandbox"].startswith("bubblewrap")
    for key in ("unprivileged_uid", "no_capabilities", "user_namespace", "pid_namespace"):
        assert found[key] is True, key
    assert found["mount_namespace"] and found["network_blocked"] and found["namespaces"]
    assert found["rlimits"]["processes"] == SandboxProvisioner().processes
    if os.geteuid() == 0:
        assert found["uid"] >= SandboxProvisioner().uid_first
        assert set(found["cgroups"]) == {"pids", "memory"}


# --------------------------------------------------------------------------- config, refusal


def test_the_course_config_reaches_the_provisioner_through_guarded_execute(tmp_path, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    from tlcourse.grading.preprocessors.execute import GuardedExecute

    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    work.mkdir()
    monkeypatch.setenv("TLCOURSE_DATA", str(data))
    monkeypatch.setenv("TLCOURSE_BUDGET", "grading")  # what the config would set for good
    config = PyFileConfigLoader("nbgrader_config.py", path=str(PROJECT_ROOT / "autograder"))
    config = config.load_config()
    config.SandboxProvisioner.cpu_seconds = 123  # as a line in the course's config would
    executor = GuardedExecute(config=config)
    km = executor.create_kernel_manager()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(km.start_kernel(cwd=str(work)))
        client = km.client()
        client.start_channels()
        loop.run_until_complete(client.wait_for_ready(timeout=60))
        client.stop_channels()
        provisioner = km.provisioner
        assert isinstance(provisioner, SandboxProvisioner)
        assert (provisioner.cpu_seconds, provisioner.memory_mb) == (123, 6144)
        assert provisioner.read_only == {str(data): str(data)}  # kernel_view()
        assert provisioner.environment["TLCOURSE_DATA"] == str(data)
        limits = Path(f"/proc/{provisioner.sandbox.kernel_pid}/limits").read_text()
        assert "Max cpu time              123                  128" in limits
    finally:
        loop.run_until_complete(km.shutdown_kernel(now=True))
        loop.close()


def test_without_bubblewrap_no_kernel_starts_and_the_message_says_how_to_install(
    tmp_path, monkeypatch
):
    config = Config()
    config.SandboxProvisioner.bwrap = str(tmp_path / "no" / "bwrap")
    with pytest.raises(SandboxUnavailable) as error:
        Kernel(tmp_path, config)
    for text in ("was not found", "apt-get install bubblewrap", "./install.sh", "--unsandboxed"):
        assert text in str(error.value)
    monkeypatch.setenv("PATH", str(tmp_path))  # bwrap by name, not on PATH
    with pytest.raises(SandboxUnavailable, match="on PATH"):
        SandboxProvisioner().settings()
    assert "--unsandboxed" in CliRunner().invoke(_cli(), ["grade", "--help"]).output


def test_unsandboxed_kernels_keep_their_limits_and_a_clean_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CANARY, "the grader's secret")
    config = Config()
    config.SandboxProvisioner.isolate = False
    config.SandboxProvisioner.cpu_seconds = 321
    started = Kernel(tmp_path, config)
    try:
        names = started.json("import json, os; print(json.dumps(sorted(os.environ)))")
        limits = Path(f"/proc/{started.sandbox.kernel_pid}/limits").read_text()
    finally:
        started.shutdown()
    assert CANARY not in names
    assert "Max cpu time              321                  326" in limits


def _cli():
    from tlcourse.cli import main

    return main


@pytest.mark.slow
def test_tlcourse_grade_refuses_without_bubblewrap_unless_unsandboxed(
    fresh_course, tmp_path, monkeypatch
):
    import shutil

    from grading_fixtures import solution

    course = Path(shutil.copytree(fresh_course, tmp_path / "course"))
    subs = tmp_path / "subs" / "ann" / "01-preprocessing"
    subs.mkdir(parents=True)
    (subs / "01-preprocessing.ipynb").write_text(solution("01-preprocessing").read_text())
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # no bwrap to be found
    args = ["grade", "01-preprocessing", "--course", str(course)]
    args += ["--submissions", str(tmp_path / "subs")]
    refused = CliRunner().invoke(_cli(), args)
    assert refused.exit_code != 0
    for text in ("nobody was graded", "apt-get install bubblewrap", "--unsandboxed"):
        assert text in refused.output, refused.output
    assert not (course / "grader" / "done").exists()
    graded = CliRunner().invoke(_cli(), [*args, "--unsandboxed"])
    assert graded.exit_code == 0, graded.output
    assert "ann: 10 / 10" in graded.output and "without isolation" in graded.output
    report = json.loads((course / "grader" / "reports" / "01-preprocessing.json").read_text())
    provenance = report["students"]["ann"]["provenance"]
    assert provenance["isolation"]["sandbox"] is None
    assert provenance["isolation"]["network_blocked"] is False


# --------------------------------------------------------------------------- cells


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_deleted_and_edited_test_cells_come_back_as_released():
    release = nbformat.read(RELEASE, as_version=4)
    nb = nbformat.read(RELEASE, as_version=4)
    position = nb.cells.index(_cell(nb, "test_encode_labels"))
    nb.cells.remove(_cell(nb, "test_encode_labels"))
    _cell(nb, "test_to_unit").source = "pass"
    _cell(nb, "test_split").metadata.nbgrader.points = 100
    notes = restore_graded_cells(nb, release)
    assert nb.cells.index(_cell(nb, "test_encode_labels")) == position
    assert _cell(nb, "test_to_unit").source == _cell(release, "test_to_unit").source
    assert _cell(nb, "test_split").metadata.nbgrader.points == 2
    assert len(notes) == 3 and any("'test_encode_labels' was missing" in n for n in notes)


def test_a_cell_cannot_award_itself_points_and_answers_are_kept():
    release = nbformat.read(RELEASE, as_version=4)
    nb = nbformat.read(RELEASE, as_version=4)
    _cell(nb, "to_unit").source = "def to_unit(images):\n    return images / 255\n"
    fake = nbformat.v4.new_code_cell("assert True")
    fake.metadata["nbgrader"] = {"grade": True, "grade_id": "free_points", "points": 50}
    nb.cells.append(fake)
    notes = restore_graded_cells(nb, release)
    assert "nbgrader" not in nb.cells[-1].metadata
    assert _cell(nb, "to_unit").source.endswith("return images / 255\n")
    assert notes == [
        "A cell claimed to be graded cell 'free_points', which this assignment does not have: "
        "it was graded as an ordinary cell."
    ]
    assert restore_graded_cells(nbformat.read(RELEASE, as_version=4), release) == []
