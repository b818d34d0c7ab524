"""Run generated function code safely: a static check, then a limited worker process.

Generated code (a teacher's function base, an emergency function written by the small
model) never runs unchecked:

1. :func:`check_source` parses it with :mod:`ast` and allows only a whitelist of syntax
   nodes, builtin names, attribute names and modules (``math``, ``itertools``, parts of
   ``functools`` and ``collections``, ``fractions``, ``heapq``, ``bisect``). No name or
   attribute starting with ``_`` (so no dunder escapes such as
   ``().__class__.__bases__[0].__subclasses__()``), no ``open``/``exec``/``eval``/
   ``compile``/``getattr``/``globals``/``type``..., no ``str.format`` (its fields can reach
   attributes), no classes, ``global``, ``with``, decorators or ``async``, no assignment to
   attributes (``math.ceil = ...`` would change what every other function in the worker
   sees), no ``return``/``break``/``continue`` leaving a ``finally`` block (it would swallow
   the CPU limit). Each violation is reported with its line; a source nested too deeply
   to parse is refused as well.
2. :class:`SandboxWorker` runs code that passed in a separate process
   (``python -s -S -B -P ld_agents/ld/_sandbox_worker.py``: standard library only, cwd a
   fresh temp dir, an environment of ``PATH``, ``LC_ALL`` and a fixed ``PYTHONHASHSEED``,
   so that set orders are the same in every worker) under OS limits, with restricted builtins
   (the whitelist above and an ``__import__`` that serves only the pure modules). The
   worker is long-lived: functions are loaded once and each call is one JSON message round
   trip. A call that runs over its wall-clock or CPU budget, exhausts memory or kills the
   process is answered with an error :class:`CallResult` and the worker is restarted (its
   functions reloaded); the caller goes on.

What is enforced at the OS level (see :attr:`SandboxWorker.enforcement` for what took
effect on this machine): ``RLIMIT_AS`` (memory), ``RLIMIT_CPU`` (per call, via SIGXCPU: a
second signal in one call, the first caught by the code, ends the worker; and a lifetime
cap), ``RLIMIT_FSIZE=0`` (no file growth), ``RLIMIT_NOFILE`` (a handful of
descriptors), ``RLIMIT_NPROC=0`` (no fork; binds only for a non-root user, so a root parent's
worker drops to ``nobody``), a private network namespace when ``unshare`` is permitted,
plus a wall-clock kill from the parent. Not enforced: no seccomp filter (system calls are
not filtered; the static check and the restricted namespace are what keep ``os``/``socket``
out of reach), reads of world-readable files are only prevented by the absence of
``open``/``io`` in the namespace, and on systems where ``unshare`` is refused the network
is blocked only by that same absence. Windows and macOS lack parts of this (``RLIMIT_AS``,
namespaces): the worker reports what it could not apply.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ld_agents.errors import SandboxError
from ld_envs.errors import InvalidArgument

logger = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
#: the worker's interpreter flags: no user site, no ``site``, no bytecode written, and
#: (Python 3.11+) no script folder on ``sys.path``; the isolated mode's ``-E`` is left out
#: so that the worker reads ``PYTHONHASHSEED`` from :data:`WORKER_ENV`, its whole environment
WORKER_FLAGS = ("-s", "-S", "-B", *(("-P",) if sys.version_info >= (3, 11) else ()))
#: the worker's exit status when a call swallowed its CPU limit (its ``CPU_EXIT``)
WORKER_CPU_EXIT = 75
#: the worker's whole environment: a fixed hash seed, so that a function's set and dict
#: orders are the same in every worker (validated in one, played in another)
WORKER_ENV = {"PATH": "/nonexistent", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}

#: Modules generated code may import: ``None`` = any public name, else the allowed names.
ALLOWED_MODULES: dict[str, frozenset[str] | None] = {
    "math": None,
    "itertools": None,
    "functools": frozenset({"reduce", "lru_cache", "cache", "cmp_to_key"}),
    "collections": frozenset({"Counter", "deque", "defaultdict", "OrderedDict"}),
    "fractions": frozenset({"Fraction"}),
    "heapq": None,
    "bisect": None,
}

#: Builtins available to generated code (everything else is absent at run time too).
SAFE_BUILTINS: frozenset[str] = frozenset(
    [
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
)

#: Builtins named in refusals with a specific reason (all are absent anyway).
FORBIDDEN_NAMES: dict[str, str] = {
    **{
        n: "runs or compiles arbitrary code"
        for n in ("exec", "eval", "compile", "__import__", "breakpoint")
    },
    **{n: "reaches the interpreter's namespaces" for n in ("globals", "locals", "vars", "dir")},
    **{n: "reads or sets arbitrary attributes" for n in ("getattr", "setattr", "delattr")},
    **{n: "touches files or the terminal" for n in ("open", "input", "print", "help")},
    **{n: "ends the interpreter" for n in ("exit", "quit")},
    **{n: "reaches types and their internals" for n in ("type", "object", "super", "memoryview")},
}

#: Methods generated code may call on values (lists, dicts, sets, strings, Fractions...)
#: and public names of the allowed modules (``math.sqrt``).
SAFE_ATTRIBUTES: frozenset[str] = frozenset(
    # list / dict / set / deque / Counter
    [
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "index",
        "count",
        "sort",
        "reverse",
        "copy",
        "clear",
        "get",
        "items",
        "keys",
        "values",
        "setdefault",
        "update",
        "add",
        "discard",
        "union",
        "intersection",
        "difference",
        "symmetric_difference",
        "issubset",
        "issuperset",
        "isdisjoint",
        "appendleft",
        "popleft",
        "extendleft",
        "most_common",
        "elements",
        "rotate",
        "join",
        "split",
        "rsplit",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "startswith",
        "endswith",
        "replace",
        "find",
        "isdigit",
        "isalpha",
        "splitlines",
        "numerator",
        "denominator",
        "real",
        "imag",
        "is_integer",
        "limit_denominator",
        "bit_length",
        "reduce",
        "lru_cache",
        "cache",
        "cmp_to_key",
    ]
)
#: whole-module imports and the public names generated code may read from them
_MODULE_ATTRS: dict[str, frozenset[str]] = {
    name: frozenset(a for a in dir(__import__(name)) if not a.startswith("_"))
    for name in ("math", "itertools", "heapq", "bisect")
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module,
    ast.FunctionDef,
    ast.Lambda,
    ast.arguments,
    ast.arg,
    ast.Return,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.For,
    ast.While,
    ast.If,
    ast.Break,
    ast.Continue,
    ast.Pass,
    ast.Expr,
    ast.Assert,
    ast.Raise,
    ast.Try,
    ast.ExceptHandler,
    ast.Delete,
    ast.Import,
    ast.ImportFrom,
    ast.alias,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.keyword,
    ast.NamedExpr,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Starred,
    ast.Name,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Load,
    ast.Store,
    ast.Del,
    ast.And,
    ast.Or,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.LShift,
    ast.RShift,
    ast.BitOr,
    ast.BitXor,
    ast.BitAnd,
    ast.MatMult,
    ast.Invert,
    ast.Not,
    ast.UAdd,
    ast.USub,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Is,
    ast.IsNot,
    ast.In,
    ast.NotIn,
)
_TOP_LEVEL = (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.Expr)
#: Source longer than this is refused before parsing.
MAX_SOURCE_CHARS = 20_000


@dataclass(frozen=True)
class Violation:
    """One reason the static check refuses a source: where and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name the source binds itself (parameters, assignments, defs, imports...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def check_source(source: str, required: Iterable[str] = ()) -> list[Violation]:
    """Statically check generated code; return its violations (empty when it may run).

    ``required`` names functions the source must define at its top level.
    """
    if not isinstance(source, str):
        return [Violation(0, f"source must be a string, got {type(source).__name__}")]
    if len(source) > MAX_SOURCE_CHARS:
        return [Violation(0, f"source is {len(source)} characters, over {MAX_SOURCE_CHARS}")]
    try:
        return _check_parsed(ast.parse(source), required)
    except SyntaxError as exc:
        return [Violation(exc.lineno or 0, f"syntax error: {exc.msg}")]
    except (RecursionError, MemoryError, ValueError) as exc:  # nesting too deep to parse
        return [Violation(0, f"source is nested too deeply to check ({type(exc).__name__})")]


def _check_parsed(tree: ast.Module, required: Iterable[str]) -> list[Violation]:
    """The violations of a parsed source (see :func:`check_source`)."""
    found: list[Violation] = []

    def bad(node: ast.AST, message: str) -> None:
        found.append(Violation(getattr(node, "lineno", 0), message))

    bound = _bound_names(tree)
    for stmt in tree.body:
        if not isinstance(stmt, _TOP_LEVEL):
            bad(
                stmt,
                f"{type(stmt).__name__} is not allowed at the top level (only imports, "
                "function definitions and constant assignments)",
            )
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            bad(node, f"syntax {type(node).__name__} is not allowed")
            continue
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            bad(node, f"decorators are not allowed (on {node.name})")
        if isinstance(node, (ast.FunctionDef, ast.arg)):
            name = node.name if isinstance(node, ast.FunctionDef) else node.arg
            if name.startswith("_"):
                bad(node, f"name {name!r} starts with '_'")
        elif isinstance(node, ast.Name):
            _check_name(node, bound, bad)
        elif isinstance(node, ast.Attribute):
            if not isinstance(node.ctx, ast.Load):
                bad(
                    node,
                    f"assigning or deleting the attribute {node.attr!r} is not allowed (it "
                    "would change modules or classes that other functions share)",
                )
            elif node.attr.startswith("_"):
                bad(node, f"attribute {node.attr!r} starts with '_' (dunder/private access)")
            elif node.attr in ("format", "format_map"):
                bad(node, f"str.{node.attr} is not allowed (its fields can read attributes)")
            elif node.attr not in SAFE_ATTRIBUTES and not _is_module_attr(node):
                bad(node, f"attribute {node.attr!r} is not in the sandbox's whitelist")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node, bad)
        elif isinstance(node, ast.ExceptHandler) and node.type is None:
            bad(
                node,
                "a bare 'except:' is not allowed (it would swallow the CPU limit); name "
                "the exception",
            )
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            bad(node, "f-string format specs are not allowed")
        elif isinstance(node, ast.Try):
            for jump in _jumps_out(node.finalbody):
                bad(
                    jump,
                    f"'{type(jump).__name__.lower()}' in a 'finally' block is not allowed (it "
                    "would swallow the CPU limit)",
                )
        elif isinstance(node, ast.alias) and node.asname is not None:
            _check_alias(node, bad)
    defined = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
    for name in required:
        if name not in defined:
            found.append(Violation(0, f"no top-level function named {name!r}"))
    return sorted(found, key=lambda v: v.line)


def _check_name(node: ast.Name, bound: set[str], bad: Any) -> None:
    name = node.id
    if name.startswith("_"):
        bad(node, f"name {name!r} starts with '_'")
    elif name in FORBIDDEN_NAMES:
        bad(node, f"{name!r} is not allowed: it {FORBIDDEN_NAMES[name]}")
    elif isinstance(node.ctx, ast.Load) and name not in bound and name not in SAFE_BUILTINS:
        bad(node, f"name {name!r} is neither defined in the source nor an allowed builtin")
    elif isinstance(node.ctx, ast.Store) and name in SAFE_BUILTINS:
        bad(node, f"rebinding the builtin {name!r} is not allowed")


def _jumps_out(body: list[ast.stmt]) -> list[ast.stmt]:
    """The ``return``, ``break`` and ``continue`` statements that leave ``body`` (a
    ``finally`` block): not those of a loop inside it, nor any in a function it defines."""
    found: list[ast.stmt] = []
    todo: list[tuple[ast.AST, bool]] = [(node, False) for node in body]
    while todo:
        node, in_loop = todo.pop()
        if isinstance(node, ast.Return) or (
            isinstance(node, (ast.Break, ast.Continue)) and not in_loop
        ):
            found.append(node)
        elif isinstance(node, (ast.For, ast.While)):  # its break/continue stay inside
            todo.extend((child, True) for child in node.body)
            todo.extend((child, in_loop) for child in node.orelse)
        elif not isinstance(node, (ast.FunctionDef, ast.Lambda)):
            todo.extend((child, in_loop) for child in ast.iter_child_nodes(node))
    return found


def _check_alias(node: ast.alias, bad: Any) -> None:
    """An import's ``as`` name follows the rules of other names it binds."""
    name = node.asname or ""
    if name.startswith("_"):
        bad(node, f"name {name!r} starts with '_'")
    elif name in FORBIDDEN_NAMES:
        bad(node, f"{name!r} is not allowed: it {FORBIDDEN_NAMES[name]}")
    elif name in SAFE_BUILTINS:
        bad(node, f"rebinding the builtin {name!r} is not allowed")


def _is_module_attr(node: ast.Attribute) -> bool:
    """``math.sqrt`` style access to a public name of a whole-module import."""
    if not isinstance(node.value, ast.Name):
        return False
    return node.attr in _MODULE_ATTRS.get(node.value.id, frozenset())


def _check_import(node: ast.Import | ast.ImportFrom, bad: Any) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name not in ALLOWED_MODULES:
                bad(
                    node,
                    f"import of {alias.name!r} is not allowed; allowed: "
                    f"{', '.join(sorted(ALLOWED_MODULES))}",
                )
            elif ALLOWED_MODULES[alias.name] is not None:
                bad(
                    node,
                    f"import the allowed names from {alias.name!r} with 'from {alias.name} "
                    f"import ...' ({', '.join(sorted(ALLOWED_MODULES[alias.name] or ()))})",
                )
            elif alias.asname is not None:
                bad(
                    node,
                    f"'import {alias.name} as {alias.asname}': import modules under their own name",
                )
        return
    module = node.module or ""
    if node.level or module not in ALLOWED_MODULES:
        bad(
            node,
            f"import from {module!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_MODULES))}",
        )
        return
    names = ALLOWED_MODULES[module]
    for alias in node.names:
        if alias.name == "*" or alias.name.startswith("_"):
            bad(node, f"'from {module} import {alias.name}' is not allowed")
        elif names is not None and alias.name not in names:
            bad(node, f"{module}.{alias.name} is not allowed; allowed: {', '.join(sorted(names))}")


# --------------------------------------------------------------------------- worker


#: the integer limits' ranges, and why the lower bounds are where they are
_INT_LIMITS: dict[str, tuple[int, int, str]] = {
    "memory_bytes": (64 * 2**20, 2**48, " (the interpreter needs 64 MiB)"),
    "max_output_bytes": (1024, 2**30, " (error replies need room)"),
    "max_open_files": (4, 2**16, " (the worker's own pipes)"),
    "recursion_limit": (50, 10**5, " (the worker's own JSON decoding)"),
    "lifetime_cpu_seconds": (1, 10**7, ""),
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Limits:
    """Limits of one sandbox worker and of each call into it."""

    #: wall-clock seconds one call (or one load) may take before the worker is killed
    wall_seconds: float = 5.0
    #: CPU seconds one call may use (SIGXCPU in the worker; one-second granularity)
    cpu_seconds: float = 2.0
    #: address-space limit of the worker process (RLIMIT_AS)
    memory_bytes: int = 768 * 2**20
    #: largest JSON reply a call may return
    max_output_bytes: int = 2**20
    #: file descriptors the worker may hold (RLIMIT_NOFILE)
    max_open_files: int = 8
    #: the worker's Python recursion limit
    recursion_limit: int = 400
    #: CPU seconds over the worker's lifetime before the OS kills it (RLIMIT_CPU hard cap)
    lifetime_cpu_seconds: int = 3600
    #: seconds the worker may take to start
    start_seconds: float = 20.0

    def __post_init__(self) -> None:
        for name in ("wall_seconds", "cpu_seconds", "start_seconds"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value < 10**6:
                raise InvalidArgument(
                    f"Limits.{name} must be a number of seconds in (0, 1e6), got {value!r}"
                )
        for name, (low, high, why) in _INT_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidArgument(
                    f"Limits.{name} must be a whole number in [{low}, {high}]{why}, got {value!r}"
                )
        if self.lifetime_cpu_seconds < self.cpu_seconds:
            raise InvalidArgument(
                f"Limits.lifetime_cpu_seconds ({self.lifetime_cpu_seconds}) must be at least "
                f"cpu_seconds ({self.cpu_seconds})"
            )

    def worker_config(self) -> dict[str, Any]:
        return {
            "memory_bytes": self.memory_bytes,
            "lifetime_cpu_seconds": self.lifetime_cpu_seconds,
            "max_output_bytes": self.max_output_bytes,
            "max_open_files": self.max_open_files,
            "recursion_limit": self.recursion_limit,
        }


#: kinds of :class:`CallResult` errors
ERROR_KINDS = (
    "refused",  # the static check refused the source
    "load",  # the source failed to define the function
    "exception",  # the function raised
    "timeout",  # wall-clock limit: the worker was killed and restarted
    "cpu",  # CPU-time limit: the worker was restarted
    "memory",  # memory limit: the worker was restarted
    "crash",  # the worker died (segfault, OS kill): restarted
    "output",  # the return value is not JSON data or is too large
    "not_loaded",  # no function under that name in this worker
)


@dataclass(frozen=True)
class CallResult:
    """The outcome of a load or a call: a value, or an error the caller can act on.

    The LD policy treats ``ok=False`` at a stage as an illegal choice for that stage (for
    pursuit: ``NO_CHOICE`` for the env to count).
    """

    ok: bool
    value: Any = None
    kind: str | None = None
    message: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"ok: {self.value!r}" if self.ok else f"{self.kind}: {self.message}"


def _jsonable(value: Any) -> Any:
    """Arguments go to the worker as JSON: tuples become lists, numpy scalars ints."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON data")


_ENFORCEMENT_LOGGED = False
#: reloads after a restart that may time out or crash before the function is dropped
RELOAD_TRIES = 2
#: what :meth:`SandboxWorker._read` returns when the worker closed its output (it died)
_EOF: dict[str, Any] = {"ok": False, "kind": "crash", "message": "end of output"}


@dataclass
class _Loaded:
    name: str
    source: str


@dataclass
class SandboxWorker:
    """A long-lived sandbox process: load checked functions once, then call them.

    >>> with SandboxWorker() as worker:                                # doctest: +SKIP
    ...     worker.load("dist", "def dist(a, b):\\n    return abs(a - b)\\n")
    ...     worker.call("dist", [3, 5]).value
    2

    Calls are serialised (one at a time; a lock makes the object thread-safe). Keys are
    free-form strings (a function base uses ``"<stage>/<name>"`` or just the name).
    """

    limits: Limits = field(default_factory=Limits)
    #: what the worker reported at its last start (limits, network, user)
    enforcement: dict[str, Any] = field(default_factory=dict, init=False)
    #: how many times the worker process was (re)started
    starts: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._buf = b""
        self._loaded: dict[str, _Loaded] = {}
        #: functions dropped because their reload after a restart failed: key -> why
        self._dropped: dict[str, str] = {}
        self._reload_failures: dict[str, int] = {}
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- process

    def _start(self) -> None:
        """Start the process and load its functions again. A function whose reload fails
        is dropped (:meth:`call` then says why); one whose reload kills the process is
        dropped and the process started again without it."""
        while True:
            self._spawn()
            if self._reload():
                return

    def _reload(self) -> bool:
        """Load every kept function into a fresh process; False when one killed it."""
        for key, item in list(self._loaded.items()):
            msg = {"op": "load", "key": key, "name": item.name, "source": item.source}
            reply = self._request({**msg, "cpu": self.limits.cpu_seconds}, start=False)
            if reply.ok:
                self._reload_failures.pop(key, None)
                continue
            failures = self._reload_failures[key] = self._reload_failures.get(key, 0) + 1
            # a timeout or crash may be the machine's load: one more try before dropping
            if reply.kind not in ("timeout", "crash") or failures >= RELOAD_TRIES:
                logger.warning("reloading %s after a restart failed (%s); dropped", key, reply)
                del self._loaded[key]
                self._reload_failures.pop(key, None)
                self._dropped[key] = f"its reload after a worker restart failed: {reply}"
            if self._proc is None:
                return False
        return True

    def _spawn(self) -> None:
        self._kill()
        self._tmp = tempfile.TemporaryDirectory(prefix="ld-sandbox-")
        os.chmod(self._tmp.name, 0o755)
        cmd = [sys.executable, *WORKER_FLAGS, str(WORKER_SCRIPT)]
        cmd.append(json.dumps(self.limits.worker_config()))
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self._tmp.name,
            env=WORKER_ENV,
            close_fds=True,
        )
        self._buf = b""
        self.starts += 1
        hello = self._read(self.limits.start_seconds)
        if hello is None or not hello.get("ok"):
            self._kill()
            raise SandboxError(f"the sandbox worker failed to start: {hello!r}")
        self.enforcement = hello["value"]
        global _ENFORCEMENT_LOGGED
        if not _ENFORCEMENT_LOGGED:
            _ENFORCEMENT_LOGGED = True
            logger.info("sandbox worker enforcement: %s", self.enforcement)
        else:
            logger.debug("sandbox worker (re)started: pid %s", self.enforcement.get("pid"))

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
                logger.error("sandbox worker %s did not exit after SIGKILL", proc.pid)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _read(self, timeout: float) -> dict[str, Any] | None:
        """One reply line, or ``None`` on timeout / worker death."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return _EOF
            self._buf += chunk
            if len(self._buf) > self.limits.max_output_bytes + 4096:
                return {"ok": False, "kind": "output", "message": "reply over the size limit"}
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def _request(self, msg: dict[str, Any], start: bool = True) -> CallResult:
        """Send one message and read its reply; (re)start the process first unless
        ``start`` is False (then a dead process answers ``crash``)."""
        if self._proc is None or self._proc.poll() is not None:
            if not start:
                self._kill()
                return CallResult(False, kind="crash", message="the worker is not running")
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        t0 = time.perf_counter()
        try:
            self._proc.stdin.write(json.dumps(msg).encode() + b"\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            return CallResult(False, kind="crash", message="the worker had died; restarted")
        reply = self._read(self.limits.wall_seconds)
        seconds = time.perf_counter() - t0
        if reply is None or reply is _EOF:
            if reply is _EOF:  # the worker closed its output: wait for its exit status
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=2)
            alive = self._proc.poll() is None
            code = self._proc.returncode
            self._kill()
            if alive:
                return CallResult(
                    False,
                    kind="timeout",
                    seconds=seconds,
                    message=(
                        f"no answer within {self.limits.wall_seconds:g} s wall-clock; the worker "
                        "was killed and will restart"
                    ),
                )
            if code == WORKER_CPU_EXIT:  # a second CPU-limit signal: the first was swallowed
                return CallResult(
                    False,
                    kind="cpu",
                    seconds=seconds,
                    message="CPU-time limit reached (and caught by the code): the worker was "
                    "stopped and will restart",
                )
            return CallResult(
                False,
                kind="crash",
                seconds=seconds,
                message=(f"the worker died (exit status {code}); it will restart"),
            )
        if reply.get("restart"):
            self._kill()
        if reply.get("ok"):
            return CallResult(True, value=reply.get("value"), seconds=seconds)
        return CallResult(
            False,
            kind=reply.get("kind", "exception"),
            message=str(reply.get("message", "")),
            seconds=seconds,
        )

    # ----------------------------------------------------------------- API

    def start(self) -> SandboxWorker:
        """Start the process now (it also starts on first use)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
        return self

    def load(self, key: str, source: str, name: str | None = None) -> CallResult:
        """Check ``source`` statically, then define function ``name`` (default ``key``).

        A refused source answers ``kind="refused"`` listing its violations; nothing runs.
        """
        name = key if name is None else name
        violations = check_source(source, required=[name])
        if violations:
            return CallResult(False, kind="refused", message="; ".join(map(str, violations)))
        with self._lock:
            reply = self._request(
                {
                    "op": "load",
                    "key": key,
                    "name": name,
                    "source": source,
                    "cpu": self.limits.cpu_seconds,
                }
            )
            self._dropped.pop(key, None)
            if reply.ok:
                self._loaded[key] = _Loaded(name, source)
            else:
                self._loaded.pop(key, None)
            return reply

    def call(self, key: str, args: Sequence[Any]) -> CallResult:
        """Call a loaded function with JSON-able ``args``; never raises for its faults."""
        missing = self._missing(key)
        if missing is not None:
            return missing
        try:
            payload = _jsonable(list(args))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"sandbox call arguments must be JSON data: {exc}") from exc
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()  # a restart may drop the function (its reload failed)
                missing = self._missing(key)
                if missing is not None:
                    return missing
            return self._request(
                {"op": "call", "key": key, "args": payload, "cpu": self.limits.cpu_seconds}
            )

    def _missing(self, key: str) -> CallResult | None:
        """The answer to a call of a function that is not loaded (or was dropped)."""
        if key in self._dropped:
            return CallResult(False, kind="load", message=f"{key!r}: {self._dropped[key]}")
        if key not in self._loaded:
            return CallResult(
                False,
                kind="not_loaded",
                message=(f"no function {key!r} is loaded; loaded: {sorted(self._loaded)}"),
            )
        return None

    def loaded(self) -> list[str]:
        """Keys of the functions loaded in this worker."""
        return list(self._loaded)

    def unload(self, key: str) -> None:
        """Forget a function (it is not reloaded after a restart)."""
        with self._lock:
            self._loaded.pop(key, None)
            self._dropped.pop(key, None)

    def close(self) -> None:
        """Stop the process; safe to call twice."""
        with self._lock:
            self._kill()

    def __getstate__(self) -> dict[str, Any]:
        """Pickles as its limits and loaded sources; the copy starts its own process."""
        return {"limits": self.limits, "loaded": dict(self._loaded)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.limits = state["limits"]
        self.enforcement = {}
        self.starts = 0
        self.__post_init__()
        self._loaded = dict(state["loaded"])

    def __enter__(self) -> SandboxWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        with contextlib.suppress(Exception):
            self._kill()


def run_isolated(
    source: str, name: str, args: Sequence[Any], limits: Limits | None = None
) -> CallResult:
    """Check, load and call one function in a fresh worker process, then stop it.

    The slow way (a process start per call); :class:`SandboxWorker` is the fast one.
    """
    worker = SandboxWorker(limits or Limits())
    try:
        loaded = worker.load(name, source)
        if not loaded.ok:
            return loaded
        return worker.call(name, args)
    finally:
        worker.close()
