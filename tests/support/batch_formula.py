"""A parser and evaluator for the Azure Batch autoscale formula language (the subset the
documentation's examples use): statements `name = expr;`, `//` comments, numbers,
`TimeInterval_*` constants, service variables (`$PendingTasks`) with `GetSample(n)` /
`GetSample(interval)` / `GetSamplePercent(interval)`, the functions max/min/avg/sum/len,
`time()` (now, the evaluator's clock) and `time("2026-01-01T08:00:00Z")` (a timestamp, which
can only be compared), arithmetic, comparisons, `&&`/`||` and `cond ? a : b`. Anything else
is a syntax error.

Samples are one per 30 seconds, newest first. Target node counts are truncated to whole
nodes as the service does with a fractional target.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TOKEN = re.compile(
    r'\s*(?:(//[^\n]*)|("[^"\\\n]*")|(\d+(?:\.\d+)?)|(\$?[A-Za-z_][A-Za-z0-9_]*)|'
    r"(&&|\|\||==|!=|<=|>=|[-+*/<>?:;(),.=!]))"
)
SAMPLE_SECONDS = 30
CONSTANTS = {"TimeInterval_Second": 1, "TimeInterval_Minute": 60, "TimeInterval_Hour": 3600}
FUNCTIONS = {
    "max": lambda *a: max(_flat(a)),
    "min": lambda *a: min(_flat(a)),
    "avg": lambda *a: sum(_flat(a)) / len(_flat(a)),
    "sum": lambda *a: sum(_flat(a)),
    "len": lambda *a: len(_flat(a)),
    "time": None,  # the evaluator's: it knows the time
}
OUTPUTS = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
DEALLOCATION = ("requeue", "terminate", "taskcompletion", "retaineddata")


def _flat(values) -> list[float]:
    out: list[float] = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


class FormulaError(ValueError):
    pass


@dataclass
class Interval:
    seconds: float


@dataclass(frozen=True, order=True)
class Timestamp:
    at: datetime


@dataclass
class Call:
    name: str
    args: list[Any]


@dataclass
class Method:
    target: str
    name: str
    args: list[Any]


@dataclass
class Formula:
    statements: list[tuple[str, Any]] = field(default_factory=list)

    def assigned(self) -> dict[str, Any]:
        return dict(self.statements)


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FormulaError(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        if match.group(1):
            continue
        tokens.append(next(g for g in match.groups()[1:] if g))
    return tokens


class Parser:
    def __init__(self, tokens: list[str]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise FormulaError(f"expected {expected or 'a token'}, got {token!r}")
        self.i += 1
        return token

    def formula(self) -> Formula:
        out = Formula()
        while self.peek() is not None:
            name = self.take()
            if not re.fullmatch(r"\$?[A-Za-z_]\w*", name):
                raise FormulaError(f"a statement must assign a variable, got {name!r}")
            self.take("=")
            out.statements.append((name, self.ternary()))
            self.take(";")
        return out

    def ternary(self):
        cond = self.binary(0)
        if self.peek() == "?":
            self.take("?")
            yes = self.ternary()
            self.take(":")
            return ("?", cond, yes, self.ternary())
        return cond

    LEVELS = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/"))

    def binary(self, level: int):
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in self.LEVELS[level]:
            op = self.take()
            left = (op, left, self.binary(level + 1))
        return left

    def unary(self):
        if self.peek() in ("-", "!"):
            return ("u" + self.take(), self.unary())
        return self.primary()

    def primary(self):
        token = self.take()
        if token == "(":
            value = self.ternary()
            self.take(")")
            return value
        if re.fullmatch(r"\d+(\.\d+)?", token):
            return float(token)
        if token.startswith('"'):
            return ("str", token[1:-1])
        if self.peek() == "(":
            if token not in FUNCTIONS:
                raise FormulaError(f"unknown function {token}")
            return Call(token, self.args())
        if self.peek() == ".":
            self.take(".")
            method = self.take()
            if method not in ("GetSample", "GetSamplePercent"):
                raise FormulaError(f"unknown method {method}")
            return Method(token, method, self.args())
        return ("var", token)

    def args(self) -> list[Any]:
        self.take("(")
        out = []
        while self.peek() != ")":
            out.append(self.ternary())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return out


def parse(text: str) -> Formula:
    return Parser(tokenize(text)).formula()


class Evaluator:
    """Evaluates a parsed formula against sample histories (newest first)."""

    def __init__(
        self,
        samples: dict[str, Sequence[float]],
        current: dict[str, float] | None = None,
        now: datetime | None = None,
    ):
        self.samples = samples
        self.env: dict[str, Any] = dict(current or {})
        self.now = now or datetime.now(UTC)

    def run(self, formula: Formula) -> dict[str, Any]:
        for name, expr in formula.statements:
            if name == "$NodeDeallocationOption":
                if expr not in [("var", d) for d in DEALLOCATION]:
                    raise FormulaError(f"$NodeDeallocationOption must be one of {DEALLOCATION}")
                self.env[name] = expr[1]
                continue
            self.env[name] = self.value(expr)
        return self.env

    def targets(self, formula: Formula) -> tuple[int, int]:
        env = self.run(formula)
        return (
            int(max(0, env.get("$TargetDedicatedNodes", 0))),
            int(max(0, env.get("$TargetLowPriorityNodes", 0))),
        )

    def value(self, expr):
        if isinstance(expr, float):
            return expr
        if isinstance(expr, Call):
            if expr.name == "time":
                return self.time(expr)
            return FUNCTIONS[expr.name](*[self.value(a) for a in expr.args])
        if isinstance(expr, Method):
            return self.method(expr)
        op = expr[0]
        if op == "str":
            return expr[1]
        if op == "var":
            name = expr[1]
            if name in CONSTANTS:
                return Interval(CONSTANTS[name])
            if name not in self.env:
                raise FormulaError(f"{name} is used before it is assigned")
            return self.env[name]
        if op == "?":
            return self.value(expr[2]) if self.value(expr[1]) else self.value(expr[3])
        if op in ("u-", "u!"):
            v = self.value(expr[1])
            return -v if op == "u-" else (not v)
        left, right = self.value(expr[1]), self.value(expr[2])
        if isinstance(left, Timestamp) or isinstance(right, Timestamp):
            if not (isinstance(left, Timestamp) and isinstance(right, Timestamp)):
                raise FormulaError("a timestamp can only be compared with a timestamp")
            if op not in ("<", ">", "<=", ">=", "==", "!="):
                raise FormulaError(f"timestamps cannot be combined with {op}")
        if isinstance(left, str) or isinstance(right, str):
            raise FormulaError("a string is only an argument of time()")
        if isinstance(left, Interval) or isinstance(right, Interval):
            scale = left.seconds if isinstance(left, Interval) else right.seconds
            other = right if isinstance(left, Interval) else left
            if op != "*":
                raise FormulaError("a time interval can only be multiplied")
            return Interval(scale * other)
        return {
            "+": lambda: left + right,
            "-": lambda: left - right,
            "*": lambda: left * right,
            "/": lambda: left / right,
            "<": lambda: left < right,
            ">": lambda: left > right,
            "<=": lambda: left <= right,
            ">=": lambda: left >= right,
            "==": lambda: left == right,
            "!=": lambda: left != right,
            "&&": lambda: bool(left and right),
            "||": lambda: bool(left or right),
        }[op]()

    def time(self, expr: Call) -> Timestamp:
        if not expr.args:
            return Timestamp(self.now)
        (arg,) = [self.value(a) for a in expr.args]
        if not isinstance(arg, str):
            raise FormulaError("time() takes a date string")
        try:
            parsed = datetime.fromisoformat(arg.replace("Z", "+00:00"))
        except ValueError:
            raise FormulaError(f"time({arg!r}): not a date") from None
        if parsed.tzinfo is None:
            raise FormulaError(f"time({arg!r}): no time zone")
        return Timestamp(parsed.astimezone(UTC))

    def method(self, expr: Method):
        if expr.target not in self.samples:
            raise FormulaError(f"no samples of {expr.target}")
        history = list(self.samples[expr.target])
        (arg,) = [self.value(a) for a in expr.args]
        if expr.name == "GetSample":
            if isinstance(arg, Interval):
                count = max(1, int(arg.seconds // SAMPLE_SECONDS))
                got = history[:count]
                if not got:
                    raise FormulaError(f"{expr.target} has no samples in the interval")
                return got
            if not history:
                raise FormulaError(f"{expr.target} has no samples")
            return history[0] if int(arg) == 1 else history[: int(arg)]
        if not isinstance(arg, Interval):
            raise FormulaError("GetSamplePercent takes a time interval")
        wanted = max(1, int(arg.seconds // SAMPLE_SECONDS))
        return 100.0 * min(len(history), wanted) / wanted
