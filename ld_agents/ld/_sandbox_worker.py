"""The sandbox worker process: runs checked function code under OS limits.

Started by :mod:`ld_agents.ld.sandbox` as ``python -s -S -B -P _sandbox_worker.py
LIMITS_JSON`` (no ``site``: only the standard library is importable; an environment the
parent sets whole, with a fixed ``PYTHONHASHSEED``). It must not import ld_gym: it is a
standalone script that trusts nothing it reads from stdin. It keeps its own references to
what generated code can reach too, and exits at its next CPU-limit signal once orphaned.

Start-up, in this order, before any untrusted code is read:

1. pre-import the whitelisted pure modules (later imports need no file access);
2. resource limits: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (a lifetime cap; each call
   lowers the soft limit to "used so far + per-call budget"), ``RLIMIT_FSIZE=0`` (no file
   writes), ``RLIMIT_NOFILE`` (no new descriptors beyond the pipes), ``RLIMIT_NPROC=0``
   (no new processes: effective once the worker is not root), ``RLIMIT_CORE=0``;
3. a private network namespace (``unshare(CLONE_NEWNET)``, or with ``CLONE_NEWUSER`` when
   unprivileged) when the kernel allows it: no interface but a down loopback;
4. as root: drop to the ``nobody`` user (65534) so that ``RLIMIT_NPROC`` binds and no
   file is writable;
5. report what took effect in the first message (the parent logs and exposes it).

Protocol: one JSON object per line both ways. Requests ``{"op": "load", "key", "source",
"name"}``, ``{"op": "call", "key", "args", "cpu"}``, ``{"op": "ping"}``; replies
``{"ok": true, "value": ...}`` or ``{"ok": false, "kind": ..., "message": ...}``.
"""

import os
import sys

# Python 3.10 has no -P: drop the script's own folder from the import path before
# anything else is imported, so that only the standard library is importable (only when
# run as the worker: a test that imports this file keeps its own path)
if __name__ == "__main__":
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != _HERE]

# Modules untrusted code may import, and (for partial modules) the names it may take.
import bisect
import collections
import ctypes
import fractions
import functools
import heapq
import itertools
import json
import math
import resource
import signal
import traceback

PURE_MODULES = {
    "math": math,
    "itertools": itertools,
    "functools": functools,
    "collections": collections,
    "fractions": fractions,
    "heapq": heapq,
    "bisect": bisect,
}

SAFE_BUILTIN_NAMES = [
    "abs",
    "all",
    "any",
    "bool",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "frozenset",
    "int",
    "isinstance",
    "len",
    "list",
    "map",
    "max",
    "min",
    "pow",
    "range",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "ArithmeticError",
    "AssertionError",
    "Exception",
    "IndexError",
    "KeyError",
    "LookupError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
]

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
NOBODY = 65534


class CpuLimitExceeded(BaseException):
    """Raised in the worker by SIGXCPU when a call spends its CPU budget."""


#: the worker's own references to what generated code can also reach (its modules are
#: shared, so the worker never looks these up through them while running)
_ceil = math.ceil
_PARENT = os.getppid()


#: the exit status of a worker whose call swallowed its CPU limit (read as "cpu")
CPU_EXIT = 75
#: SIGXCPU signals since the current call's budget was set
_signals = [0]


def _on_sigxcpu(signum, frame):
    if os.getppid() != _PARENT:  # orphaned (the parent died mid-call): stop spinning
        os._exit(3)
    _signals[0] += 1
    if _signals[0] > 1:  # the first one was swallowed (a finally that raised): stop here
        os._exit(CPU_EXIT)
    raise CpuLimitExceeded("CPU-time limit reached")


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0 or name not in PURE_MODULES:
        raise ImportError(f"import of {name!r} is not allowed in the sandbox")
    return PURE_MODULES[name]


def _safe_builtins():
    import builtins

    table = {n: getattr(builtins, n) for n in SAFE_BUILTIN_NAMES}
    table["__import__"] = _restricted_import
    return table


def _set_limits(cfg):
    applied = {}
    mem = int(cfg["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    applied["RLIMIT_AS"] = mem
    life = int(cfg["lifetime_cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (life, life + 5))
    applied["RLIMIT_CPU"] = life
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    applied["RLIMIT_FSIZE"] = 0
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nofile = int(cfg["max_open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    applied["RLIMIT_NOFILE"] = nofile
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    applied["RLIMIT_NPROC"] = 0
    return applied


def _isolate_network():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return "libc not loadable"
    flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) == 0:
        return "private network namespace"
    return "not isolated: unshare failed (" + os.strerror(ctypes.get_errno()) + ")"


def _drop_root():
    if os.geteuid() != 0:
        return "uid " + str(os.geteuid()) + " (not root)"
    try:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError as exc:
        return "still root: " + str(exc)
    return "dropped root to uid " + str(NOBODY)


class Worker:
    def __init__(self, cfg):
        self.cfg = cfg
        self.functions = {}
        self.builtins = _safe_builtins()
        self.max_output = int(cfg["max_output_bytes"])

    def _cpu_budget(self, seconds):
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = _ceil(spent + max(seconds, 0.001))
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        _signals[0] = 0
        resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))

    def _release_cpu(self):
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))

    def load(self, msg):
        # each function gets its own copy of the builtins table
        namespace = {"__builtins__": dict(self.builtins), "__name__": "ld_function"}
        code = compile(msg["source"], "<function " + msg["name"] + ">", "exec")
        self._cpu_budget(float(msg.get("cpu", 1.0)))
        try:
            exec(code, namespace)
        finally:
            self._release_cpu()
        fn = namespace.get(msg["name"])
        if not callable(fn):
            return {
                "ok": False,
                "kind": "load",
                "message": "source defines no function " + repr(msg["name"]),
            }
        self.functions[msg["key"]] = fn
        return {"ok": True, "value": None}

    def call(self, msg):
        fn = self.functions.get(msg["key"])
        if fn is None:
            return {"ok": False, "kind": "not_loaded", "message": "no function " + msg["key"]}
        self._cpu_budget(float(msg.get("cpu", 1.0)))
        try:
            value = fn(*msg["args"])
        finally:
            self._release_cpu()
        return {"ok": True, "value": value}

    def handle(self, msg):
        op = msg.get("op")
        if op == "ping":
            return {"ok": True, "value": "pong"}
        if op == "load":
            return self.load(msg)
        if op == "call":
            return self.call(msg)
        return {"ok": False, "kind": "protocol", "message": "unknown op " + repr(op)}

    def encode(self, reply):
        try:
            text = json.dumps(reply, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            return json.dumps(
                {
                    "ok": False,
                    "kind": "output",
                    "message": "output is not JSON data: " + str(exc)[:300],
                }
            )
        except RecursionError:
            return json.dumps(
                {"ok": False, "kind": "output", "message": "output is nested too deeply"}
            )
        if len(text) > self.max_output:
            return json.dumps(
                {
                    "ok": False,
                    "kind": "output",
                    "message": "output is "
                    + str(len(text))
                    + " bytes, over the limit of "
                    + str(self.max_output),
                }
            )
        return text


_DEFAULT_TEXT = {"memory": "out of memory (RLIMIT_AS)"}


def _text(exc):
    """``str(exc)`` cut to 500 characters, or a note where it cannot be made (an int of
    too many digits, a value nested too deeply, a ``__str__`` that raises)."""
    try:
        return str(exc)[:500]
    except BaseException:  # any failure here is the exception's own
        return "(its message cannot be shown)"


def _error(kind, exc, restart=False):
    try:
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if f.filename.startswith("<function")]
        where = (" (line " + str(frames[-1].lineno) + ")") if frames else ""
    except BaseException:  # a traceback too deep to walk
        where = ""
    return {
        "ok": False,
        "kind": kind,
        "restart": restart,
        "message": type(exc).__name__ + ": " + (_text(exc) or _DEFAULT_TEXT.get(kind, "")) + where,
    }


def main():
    cfg = json.loads(sys.argv[1])
    out = sys.stdout
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing
    sys.setrecursionlimit(int(cfg["recursion_limit"]))
    report = {"limits": _set_limits(cfg), "network": _isolate_network(), "user": _drop_root()}
    report["pid"] = os.getpid()
    out.write(json.dumps({"ok": True, "value": report}) + "\n")
    out.flush()
    worker = Worker(cfg)
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            reply = worker.handle(msg)
        except CpuLimitExceeded as exc:
            reply = _error("cpu", exc, restart=True)
        except MemoryError as exc:
            reply = _error("memory", exc, restart=True)
        except RecursionError as exc:
            reply = _error("exception", exc)
        except SyntaxError as exc:
            reply = {"ok": False, "kind": "load", "message": "SyntaxError: " + str(exc)}
        except Exception as exc:
            reply = _error("exception", exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, GeneratorExit...
            reply = _error("exception", exc, restart=True)
        try:
            text = worker.encode(reply)
        except MemoryError:
            text = json.dumps(
                {
                    "ok": False,
                    "kind": "memory",
                    "restart": True,
                    "message": "MemoryError while encoding the output",
                }
            )
        reply = None
        out.write(text + "\n")
        out.flush()


if __name__ == "__main__":
    main()
