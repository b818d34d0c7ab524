"""The sandbox: hostile code is refused statically or contained at run time."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

import pytest

from ld_agents.ld.sandbox import (
    ALLOWED_MODULES,
    SAFE_BUILTINS,
    WORKER_CPU_EXIT,
    WORKER_SCRIPT,
    CallResult,
    Limits,
    SandboxWorker,
    _Loaded,
    check_source,
    run_isolated,
)
from ld_envs.errors import InvalidArgument

GOOD = "def good(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def worker():
    w = SandboxWorker(Limits(wall_seconds=4.0, cpu_seconds=1.0, memory_bytes=256 * 2**20))
    w.start()
    assert w.load("good", GOOD).ok
    yield w
    w.close()


def still_usable(worker: SandboxWorker) -> bool:
    """The worker answers a good function correctly (after any restart)."""
    res = worker.call("good", [2, 3])
    return res.ok and res.value == 5


def load_unchecked(worker: SandboxWorker, key: str, source: str) -> CallResult:
    """Bypass the static check (to test the run-time layers alone)."""
    res = worker._request({"op": "load", "key": key, "name": key, "source": source, "cpu": 1})
    if res.ok:
        worker._loaded[key] = _Loaded(key, source)
    return res


# --------------------------------------------------------------------------- static check

REFUSED = {
    "file write": ("def f():\n    open('/tmp/x', 'w').write('x')\n", 2, "open"),
    "import os": ("import os\ndef f():\n    return os.getcwd()\n", 1, "'os'"),
    "from os": ("from os import system\ndef f():\n    return system('id')\n", 1, "'os'"),
    "subprocess": ("def f():\n    import subprocess\n    return 1\n", 2, "'subprocess'"),
    "socket": ("import socket\ndef f():\n    return 1\n", 1, "'socket'"),
    "__import__": ("def f():\n    return __import__('os')\n", 2, "__import__"),
    "dunder chain": (
        "def f():\n    return ().__class__.__bases__[0].__subclasses__()\n",
        2,
        "__class__",
    ),
    "getattr dunder": ("def f(x):\n    return getattr(x, '__globals__')\n", 2, "getattr"),
    "eval": ("def f():\n    return eval('1')\n", 2, "eval"),
    "exec": ("def f():\n    exec('x = 1')\n", 2, "exec"),
    "compile": ("def f():\n    return compile('1', 'x', 'eval')\n", 2, "compile"),
    "globals": ("def f():\n    return globals()\n", 2, "globals"),
    "generator frame": (
        "def f(x):\n    g = (i for i in x)\n    return g.gi_frame\n",
        3,
        "gi_frame",
    ),
    "format fields": ("def f(x):\n    return '{0.__class__}'.format(x)\n", 2, "format"),
    "class": ("def f():\n    class A:\n        pass\n    return A\n", 2, "ClassDef"),
    "global": ("X = 1\ndef f():\n    global X\n    return X\n", 3, "Global"),
    "bare except": (
        "def f():\n    try:\n        return 1\n    except:\n        return 2\n",
        4,
        "bare",
    ),
    "top-level loop": ("while True:\n    pass\ndef f():\n    return 1\n", 1, "top level"),
    "unknown name": ("def f():\n    return breakpoint()\n", 2, "breakpoint"),
    "module attribute": ("import math\ndef f():\n    return math.__loader__\n", 3, "__loader__"),
    "patch a module": ("import math\nmath.ceil = None\ndef f():\n    return 1\n", 2, "'ceil'"),
    "patch a class": (
        "from collections import Counter\ndef f():\n    Counter.most_common = len\n",
        3,
        "'most_common'",
    ),
    "delete an attribute": ("import math\ndef f():\n    del math.pi\n", 3, "'pi'"),
    "return in finally": (
        "def f():\n    try:\n        return 1\n    finally:\n        return 2\n",
        5,
        "'return' in a 'finally'",
    ),
    "continue in finally": (
        "def f():\n    while True:\n        try:\n            pass\n"
        "        finally:\n            continue\n",
        6,
        "'continue' in a 'finally'",
    ),
    "dunder alias": ("from math import pi as __builtins__\ndef f():\n    return 1\n", 1, "'_'"),
    "builtin alias": ("from math import pi as len\ndef f():\n    return 1\n", 1, "'len'"),
    "nested too deeply": ("def f():\n    return " + "-" * 5000 + "1\n", 0, "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_static_check_refuses_hostile_code_with_its_line(case):
    """Each hostile pattern is refused by the static check, naming the offending line."""
    source, line, word = REFUSED[case]
    violations = check_source(source, required=["f"])
    assert violations, f"{case} was not refused"
    assert any(v.line == line and word in v.message for v in violations), violations


def test_static_check_accepts_plain_pure_code():
    """Pure code using the whitelisted modules and builtins passes."""
    source = (
        "import itertools\nfrom math import sqrt\nfrom fractions import Fraction\n"
        "def f(xs):\n    best = max(xs, key=lambda v: sqrt(v))\n"
        "    pairs = list(itertools.combinations(xs, 2))\n"
        "    return {'best': best, 'pairs': len(pairs), 'half': float(Fraction(1, 2))}\n"
    )
    assert check_source(source, required=["f"]) == []
    assert set(ALLOWED_MODULES) >= {"math", "itertools", "functools"}


def test_static_check_allows_what_leaves_no_finally_block():
    """A loop's own break inside a finally block, and a function it defines, may jump."""
    source = (
        "def f(xs):\n    try:\n        return 1\n    finally:\n        for x in xs:\n"
        "            break\n        g = lambda: 2\n"
    )
    assert check_source(source, required=["f"]) == []


def test_static_check_requires_the_named_function():
    """A source that does not define the function it should is refused."""
    assert any("no top-level function named 'g'" in v.message for v in check_source(GOOD, ["g"]))


def test_worker_refuses_statically_bad_code_without_running_it(worker):
    """load() answers kind='refused' and the name is never defined in the worker."""
    res = worker.load("evil", "import os\ndef evil():\n    return os.getcwd()\n")
    assert res.kind == "refused" and "line 1" in res.message
    assert worker.call("evil", []).kind == "not_loaded"


# --------------------------------------------------------------------------- run time


def test_long_lived_worker_runs_calls_without_restarting(worker):
    """Many calls go through one process (no restart per call)."""
    starts = worker.starts
    assert [worker.call("good", [i, 1]).value for i in range(50)] == [i + 1 for i in range(50)]
    assert worker.starts == starts


def test_infinite_loop_is_killed_and_worker_recovers(worker):
    """A hanging call comes back as a cpu/timeout error and the worker is usable after."""
    assert worker.load("spin", "def spin():\n    while True:\n        pass\n").ok
    starts = worker.starts
    res = worker.call("spin", [])
    assert not res.ok and res.kind in ("cpu", "timeout"), res
    assert still_usable(worker)
    assert worker.starts > starts


def test_loop_swallowing_exceptions_is_still_killed(worker):
    """Catching every Exception does not let a loop outlive its limits."""
    src = (
        "def sly():\n    while True:\n        try:\n            while True:\n                pass\n"
        "        except Exception:\n            pass\n"
    )
    assert worker.load("sly", src).ok
    res = worker.call("sly", [])
    assert res.kind in ("cpu", "timeout"), res
    assert still_usable(worker)


@pytest.mark.parametrize(
    "body", ["return [0] * (10 ** 10)", "return 'x' * (10 ** 10)", "return list(range(10 ** 9))"]
)
def test_memory_bomb_is_contained(worker, body):
    """A memory bomb hits RLIMIT_AS (or the clock) and the worker recovers."""
    assert worker.load("bomb", f"def bomb():\n    {body}\n").ok
    res = worker.call("bomb", [])
    assert not res.ok and res.kind in ("memory", "timeout", "cpu"), res
    assert still_usable(worker)


def test_recursion_bomb_is_an_exception(worker):
    """Unbounded recursion raises RecursionError, reported with its line."""
    assert worker.load("deep", "def deep(n):\n    return deep(n + 1)\n").ok
    res = worker.call("deep", [0])
    assert res.kind == "exception" and "RecursionError" in res.message and "line 2" in res.message
    assert still_usable(worker)


def test_huge_output_is_refused(worker):
    """A reply over max_output_bytes is an 'output' error, not a flood."""
    assert worker.load("big", "def big():\n    return list(range(10 ** 6))\n").ok
    res = worker.call("big", [])
    assert res.kind == "output" and "over the limit" in res.message
    assert still_usable(worker)


def test_non_json_output_is_refused(worker):
    """Returning a set (not JSON data) is an 'output' error."""
    assert worker.load("aset", "def aset():\n    return {1, 2}\n").ok
    res = worker.call("aset", [])
    assert res.kind == "output" and "JSON" in res.message


def test_exception_in_function_is_reported_not_raised(worker):
    """A function that raises gives an error result naming the exception and line."""
    assert worker.load("boom", "def boom(x):\n    y = 1\n    return x['missing']\n").ok
    res = worker.call("boom", [{}])
    assert res.kind == "exception" and "KeyError" in res.message and "line 3" in res.message


def test_runtime_namespace_has_no_import_or_open_even_unchecked(worker):
    """With the static check bypassed, the restricted builtins still deny os and open."""
    assert load_unchecked(worker, "imp", "def imp():\n    return __import__('os').getcwd()\n").ok
    res = worker.call("imp", [])
    assert res.kind == "exception" and "not allowed" in res.message
    assert load_unchecked(worker, "opn", "def opn():\n    return open('/etc/hostname').read()\n").ok
    res = worker.call("opn", [])
    assert res.kind == "exception" and "NameError" in res.message


ESCAPE = """
def {name}(arg):
    for cls in ().__class__.__bases__[0].__subclasses__():
        if cls.__name__ == "_wrap_close":
            g = cls.__init__.__globals__
            try:
{body}
            except Exception as exc:
                return "blocked: " + exc.__class__.__name__
    return "no os module reachable"
"""


def _escape(name: str, body: str) -> str:
    return ESCAPE.format(name=name, body="\n".join(" " * 16 + ln for ln in body.splitlines()))


def test_fork_is_blocked_at_os_level_even_after_a_dunder_escape(worker):
    """Reaching os through a dunder escape (static check bypassed), fork still fails."""
    body = "pid = g['fork']()\nif pid == 0:\n    g['_exit'](0)\nreturn 'forked'"
    assert load_unchecked(worker, "forker", _escape("forker", body)).ok
    res = worker.call("forker", [None])
    assert res.ok and res.value.startswith("blocked"), res
    assert still_usable(worker)


def test_file_write_is_blocked_at_os_level_even_after_a_dunder_escape(worker, tmp_path):
    """Through os itself, creating or growing a file fails (nobody user, RLIMIT_FSIZE=0)."""
    target = tmp_path / "written"
    os.chmod(tmp_path, 0o777)  # even a world-writable folder: FSIZE still stops the bytes
    body = (
        "fd = g['open'](arg, g['O_WRONLY'] | g['O_CREAT'], 0o666)\n"
        "g['write'](fd, b'pwned')\nreturn 'wrote'"
    )
    assert load_unchecked(worker, "writer", _escape("writer", body)).ok
    res = worker.call("writer", [str(target)])
    assert res.ok and res.value.startswith("blocked"), res
    assert not target.exists() or target.stat().st_size == 0


def test_network_is_unreachable_when_a_namespace_is_available(worker):
    """With a private network namespace, even a real socket cannot connect anywhere."""
    if not str(worker.enforcement.get("network", "")).startswith("private"):
        pytest.skip(f"no network namespace here: {worker.enforcement.get('network')}")
    body = (
        "sock = g['__builtins__']['__import__']('socket')\n"
        "s = sock.create_connection(('127.0.0.1', 22), 1)\nreturn 'connected'"
    )
    assert load_unchecked(worker, "net", _escape("net", body)).ok
    res = worker.call("net", [None])
    assert res.ok and res.value.startswith("blocked"), res


SWALLOWS_BY_RAISING = """
def stubborn():
    while True:
        try:
            try:
                while True:
                    pass
            finally:
                raise ValueError()
        except ValueError:
            pass
"""


def test_a_cpu_limit_swallowed_by_a_raising_finally_still_stops_the_call(worker):
    """A finally block that raises replaces the CPU-limit exception, which an outer except
    then catches (the static check cannot see this): the next signal stops the worker,
    and the call answers 'cpu' well before the wall clock."""
    assert check_source(SWALLOWS_BY_RAISING, ["stubborn"]) == []
    assert worker.load("stubborn", SWALLOWS_BY_RAISING).ok
    res = worker.call("stubborn", [])
    assert res.kind == "cpu", res
    assert res.seconds < worker.limits.wall_seconds
    assert still_usable(worker)


def test_a_dying_worker_is_a_crash_with_its_status_not_a_timeout(worker):
    """A worker that exits mid-call is reported as a crash at once, with its exit status."""
    assert load_unchecked(worker, "quit7", _escape("quit7", "g['_exit'](7)")).ok
    res = worker.call("quit7", [None])
    assert res.kind == "crash" and "exit status 7" in res.message, res
    assert res.seconds < worker.limits.wall_seconds
    assert still_usable(worker)


def test_an_exception_whose_message_cannot_be_made_is_still_an_exception(worker):
    """str() of the exception fails in the worker (an int of 5,001 digits): the call is an
    'exception' naming its type, and the worker is not restarted."""
    assert worker.load("huge", "def huge():\n    raise ValueError(10 ** 5000)\n").ok
    starts = worker.starts
    res = worker.call("huge", [])
    assert res.kind == "exception" and "ValueError" in res.message, res
    assert worker.starts == starts


def test_set_orders_are_the_same_in_every_worker():
    """Workers share a fixed hash seed, so a function returning a set's order gives one
    answer in all of them (it is validated in one worker and played in another)."""
    source = "def order():\n    return list({'size', 'pursuers', 'evader', 'restricted', 'a'})\n"
    answers = []
    for _ in range(3):
        with SandboxWorker() as w:
            assert w.load("order", source).ok
            answers.append(w.call("order", []).value)
    assert answers[0] == answers[1] == answers[2], answers


def test_a_function_whose_reload_fails_is_dropped_and_says_why():
    """After a restart, a function whose reload spends its CPU budget (which kills the
    fresh worker) is dropped; the others are reloaded and a call to it answers 'load'."""
    w = SandboxWorker(Limits(wall_seconds=4.0, cpu_seconds=1.0))
    try:
        assert w.load("good", GOOD).ok
        assert w.load("later", "def later(x):\n    return x\n").ok
        assert w.load("spin", "def spin():\n    while True:\n        pass\n").ok
        # as if its top level cost more in the next process (it did, by hash order)
        w._loaded["later"] = _Loaded(
            "later",
            "import itertools\nX = [i for i in itertools.count()]\ndef later(x):\n    return x\n",
        )
        assert w.call("spin", []).kind in ("cpu", "timeout")
        res = w.call("later", [1])
        assert res.kind == "load" and "reload" in res.message, res
        assert still_usable(w)
        assert "later" not in w.loaded()
    finally:
        w.close()


ORPHAN = """
import sys, threading, time
from ld_agents.ld.sandbox import SandboxWorker, Limits, _Loaded
w = SandboxWorker(Limits(wall_seconds=600.0, cpu_seconds=1.0))
w.start()
src = ("def stubborn():\\n    while True:\\n        try:\\n            while True:\\n"
       "                pass\\n        finally:\\n            continue\\n")
w._request({"op": "load", "key": "stubborn", "name": "stubborn", "source": src, "cpu": 1})
w._loaded["stubborn"] = _Loaded("stubborn", src)
threading.Thread(target=w.call, args=("stubborn", []), daemon=True).start()
print(w.enforcement["pid"], flush=True)
time.sleep(2.5)
import os
os._exit(0)
"""


def test_a_worker_whose_parent_dies_mid_call_exits():
    """A call that swallows its CPU limit (the static check refuses this; bypassed here)
    keeps running when the parent dies; the orphaned worker exits at its next SIGXCPU."""
    proc = subprocess.run(
        [sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=120
    )
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.2)
    gone = not os.path.exists(f"/proc/{pid}")
    if not gone:
        os.kill(pid, 9)
    assert gone, "the orphaned worker was still running 30 s after its parent died"


def test_enforcement_report_lists_the_limits(worker):
    """The worker reports the rlimits it set and its network/user isolation."""
    limits = worker.enforcement["limits"]
    assert limits["RLIMIT_FSIZE"] == 0 and limits["RLIMIT_NPROC"] == 0
    assert limits["RLIMIT_AS"] == 256 * 2**20
    assert {"network", "user"} <= set(worker.enforcement)


def test_arguments_arrive_as_json_copies(worker):
    """Tuples arrive as lists, and the caller's objects are never mutated."""
    src = "def grab(x):\n    x.append(9)\n    return x\n"
    assert worker.load("grab", src).ok
    data = [1, (2, 3)]
    assert worker.call("grab", [data]).value == [1, [2, 3], 9]
    assert data == [1, (2, 3)]


def test_unknown_function_is_not_loaded_error(worker):
    """Calling a name that was never loaded is an error result, not an exception."""
    res = worker.call("nope", [])
    assert res.kind == "not_loaded" and "good" in res.message


def test_non_json_arguments_raise_invalid_argument(worker):
    """Arguments that are not JSON data are the caller's bug: InvalidArgument."""
    with pytest.raises(InvalidArgument, match="JSON"):
        worker.call("good", [object(), 1])


def test_run_isolated_uses_a_fresh_process_per_call():
    """run_isolated checks, loads and calls in a new process and returns the value."""
    res = run_isolated(GOOD, "good", [1, 2])
    assert res.ok and res.value == 3
    assert run_isolated("import os\ndef good():\n    return 1\n", "good", []).kind == "refused"


def test_close_is_idempotent_and_worker_restarts_on_use():
    """close() twice is safe; a closed worker starts again on the next load."""
    w = SandboxWorker()
    w.close()
    w.close()
    assert w.load("good", GOOD).ok and w.call("good", [1, 1]).value == 2
    w.close()


@pytest.mark.parametrize(
    "field,value",
    [
        ("wall_seconds", 0),
        ("wall_seconds", float("nan")),
        ("cpu_seconds", float("inf")),
        ("cpu_seconds", "2"),
        ("memory_bytes", 1024),
        ("memory_bytes", 2**70),
        ("max_open_files", 1),
        ("max_output_bytes", 4),
        ("recursion_limit", 4),
        ("lifetime_cpu_seconds", 0),
        ("lifetime_cpu_seconds", True),
    ],
)
def test_limits_validate_their_fields(field, value):
    """Out-of-range limits (that would leave the worker unable to start or run) fail
    naming the field."""
    with pytest.raises(InvalidArgument, match=field):
        Limits(**{field: value})


def test_limits_refuse_a_lifetime_below_one_call():
    """A lifetime CPU cap below one call's budget is refused, naming both."""
    with pytest.raises(InvalidArgument, match=r"lifetime_cpu_seconds.*cpu_seconds"):
        Limits(cpu_seconds=3.0, lifetime_cpu_seconds=2)


def test_call_result_str_is_readable():
    """A CallResult prints as 'ok: value' or 'kind: message'."""
    assert str(CallResult(True, value=[1])) == "ok: [1]"
    assert str(CallResult(False, kind="timeout", message="slow")) == "timeout: slow"
    assert json.loads(json.dumps(CallResult(True, value=1).value)) == 1


def test_worker_pickles_without_its_process(worker):
    """A pickled worker keeps its loaded functions and starts its own process."""
    import pickle

    copy = pickle.loads(pickle.dumps(worker))
    try:
        assert copy.call("good", [4, 5]).value == 9
        assert copy.enforcement["pid"] != worker.enforcement["pid"]
    finally:
        copy.close()


# --------------------------------------------------------------------------- the two whitelists


def _worker_module() -> Any:
    """The worker script as a module (it only imports the standard library at import)."""
    spec = importlib.util.spec_from_file_location("sandbox_worker_copy", WORKER_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def whitelist_differences(
    what: str, static: Iterable[str], worker_copy: Iterable[str]
) -> list[str]:
    """What one whitelist allows and the other does not, in words (empty when equal)."""
    static, worker_copy = set(static), set(worker_copy)
    out = []
    if static - worker_copy:
        out.append(
            f"{what}: allowed by the static check (ld_agents/ld/sandbox.py) but missing in the "
            f"worker (ld_agents/ld/_sandbox_worker.py): {sorted(static - worker_copy)}"
        )
    if worker_copy - static:
        out.append(
            f"{what}: in the worker (ld_agents/ld/_sandbox_worker.py) but not allowed by the "
            f"static check (ld_agents/ld/sandbox.py): {sorted(worker_copy - static)}"
        )
    return out


def test_worker_whitelists_agree_with_the_static_check():
    """The worker's copies of the builtins and modules whitelists, and of the exit status
    of a swallowed CPU limit, equal sandbox.py's."""
    w = _worker_module()
    problems = whitelist_differences("builtins", SAFE_BUILTINS, w.SAFE_BUILTIN_NAMES)
    problems += whitelist_differences("modules", ALLOWED_MODULES, w.PURE_MODULES)
    problems += [
        f"modules: the worker serves {module.__name__!r} under the name {name!r}"
        for name, module in w.PURE_MODULES.items()
        if module.__name__ != name
    ]
    if len(set(w.SAFE_BUILTIN_NAMES)) != len(w.SAFE_BUILTIN_NAMES):
        problems.append("builtins: the worker lists a name twice")
    if w.CPU_EXIT != WORKER_CPU_EXIT:  # the status the parent reads as "cpu"
        problems.append(f"exit status: the worker's CPU_EXIT {w.CPU_EXIT} != {WORKER_CPU_EXIT}")
    assert not problems, "the sandbox's two whitelists differ:\n" + "\n".join(problems)


def test_whitelist_check_names_the_difference():
    """A name on one side only is reported with the side it is on."""
    problems = whitelist_differences("builtins", {"len", "open"}, {"len", "eval"})
    assert len(problems) == 2
    assert "['open']" in problems[0] and "missing in the worker" in problems[0]
    assert "['eval']" in problems[1] and "not allowed by the static check" in problems[1]
    assert whitelist_differences("modules", {"math"}, {"math"}) == []
