"""Grading a solution against a gold answer, with a failure taxonomy, and voting keys.

Extraction. The answer is the content of the LAST complete `\\boxed{...}` or `\\fbox{...}` in the
text (braces balanced; `\\{` and `\\}` are escaped braces, not groups), or of the short form
`\\boxed x` (the rest of the line up to a `$`). A box that is never closed (a generation cut inside
it) is skipped in favour of the previous complete one. Nested boxes give the innermost last one.

Equivalence. math-verify (`parse` + `verify`, HuggingFace) decides: both the extracted answer and
the gold are parsed as `\\boxed{<answer>}` with its LaTeX and plain-expression extractors, then
compared by `verify(gold, prediction)` (numbers to 6 decimals, sets, intervals, tuples, matrices,
`x = 5` vs `5`, `\\text{}` units, `^\\circ`, `\\%`; "033" = "33" = "33.0"). Identical normalized
strings are RIGHT without parsing; a gold that math-verify cannot parse is compared as a normalized
string.

Time limit without signals. math-verify's own timeouts use `signal.alarm`, which works only in the
main thread, so they are switched off (`parsing_timeout=None`, `timeout_seconds=None`). Instead each
call is sent to a grading worker: one child Python process per parent process, started on first use
(about 1 s: it imports SymPy), fed JSON lines on stdin. When a call runs past `timeout_s` (default
3 s, the paper's grader's) the worker is killed, the call returns `Outcome.TIMEOUT`, and the next
call starts a fresh worker. A thread with `join(timeout)` was tried first and rejected: SymPy
evaluates `10^{10^{8}}` as one C-level big-integer power that holds the GIL, so a 2 s limit did not
return within 60 s, and a timed-out thread cannot be stopped. Calls from several threads share the
worker one at a time (waiting for it is not counted in `timeout_s`); a forked child gets its own.
`timeout_s=None` grades in the calling process, unbounded (for callers that run their own killable
workers). POSIX only (the pipes are polled with `select`). Outcomes are deterministic except where a
computation is close to the time limit.

Outcome precedence (one outcome per solution): RIGHT whenever the extracted answer is equivalent to
the gold (a truncated solution that had already boxed the right answer counts, as in the paper's
scoring); otherwise TRUNCATED when the caller says the generation hit the token cap; otherwise
NO_BOXED, UNPARSABLE (math-verify extracts nothing from the boxed content: `???`, `a+`,
`\\frac{1}{}`, an empty box), TIMEOUT, or WRONG. Boxed words that SymPy reads as products of
symbols (`hello` → h·e·l·l·o) are WRONG, not UNPARSABLE: math-verify parses them. `Grade.correct` is
`outcome is Outcome.RIGHT`.

Voting keys. `answer_key` maps an answer to a string so that answers math-verify deems equal
usually share a key (votes are counted per key). The approach: parse with math-verify; a number
(no free symbols, `\\pi` allowed) becomes its value rounded to 6 decimals (verify's own
`float_rounding`), so `\\frac12`, `1/2`, `0.5` share a key (a percent sign is dropped first:
`50\\%` votes with `50`, one of the two values verify accepts for it); sets are sorted; tuples,
intervals and matrices keep their order; `x = 5` is keyed as `5`; other expressions are keyed by
the `srepr` of their expansion with decimals made exact (`0.5x` = `\\frac{x}{2}`). When parsing
fails or times out, the key is the normalized string. Keys are an approximation of `verify`'s
relation (which is not transitive): `\\frac{\\sqrt2}{2}` and `0.707107` share a key, `0.7071` does
not.
"""

from __future__ import annotations

import atexit
import dataclasses
import decimal
import enum
import functools
import json
import logging
import os
import pathlib
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Grade",
    "Outcome",
    "answer_key",
    "extract_boxed",
    "grade",
    "normalize_answer",
]

DEFAULT_TIMEOUT_S = 3.0
"""Per-call time limit in seconds: the paper's grader (Qwen2.5-Math `math_equal`) used 3 s."""

_KEY_DECIMALS = 6  # math-verify's default float_rounding: keys agree with verify on decimals
_EXTRACTORS = (LatexExtractionConfig(), ExprExtractionConfig())
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


class _DropTimeoutDisabledNotice(logging.Filter):
    """math-verify logs a warning the first time its signal timeouts are off; ours replace them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


_NOTICE_FILTER = _DropTimeoutDisabledNotice()
for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_NOTICE_FILTER)


class Outcome(enum.Enum):
    """What happened to one solution (see the module docstring for the precedence)."""

    RIGHT = "right"
    WRONG = "wrong"
    NO_BOXED = "no_boxed"
    TRUNCATED = "truncated"
    UNPARSABLE = "unparsable"
    TIMEOUT = "timeout"


@dataclasses.dataclass(frozen=True)
class Grade:
    """The verdict on one solution.

    Attributes:
        outcome: the category.
        extracted: the content of the last box (None when there is none).
        correct: `outcome is Outcome.RIGHT`.
    """

    outcome: Outcome
    extracted: str | None
    correct: bool


class _Timeout(Exception):
    pass


def extract_boxed(text: str) -> str | None:
    """The content of the last complete `\\boxed{...}` / `\\fbox{...}` / `\\boxed x`, stripped.

    Returns:
        The content (possibly "" for an empty box), or None when the text has no complete box.
    """
    commands = list(_BOX_COMMAND.finditer(text))
    if not commands:
        return None
    closing = _matching_braces(text)
    for command in reversed(commands):
        start = command.end()
        while start < len(text) and text[start] in " \t":
            start += 1
        if start < len(text) and text[start] == "{":
            if start in closing:  # else never closed (cut inside the box): try the previous box
                return text[start + 1 : closing[start]].strip()
            continue
        # Short form `\boxed 5` (Hendrycks' MATH convention): up to a `$` or the end of the line.
        rest = re.split(r"[$\n]", text[command.end() :], maxsplit=1)[0].strip().rstrip(".")
        if rest.strip():
            return rest.strip()
    return None


def _matching_braces(text: str) -> dict[int, int]:
    """Index of each `{` → index of its `}`, in one pass (`\\{`, `\\}`, `\\\\` are escapes)."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            closing[stack.pop()] = index
        index += 1
    return closing


# `\,` `\!` `\;` `\:` `\ ` are spacing (not the `\\` row break): `1\,000` is 1000, `10,\!000` 10000.
_SPACING = r"(?<!\\)\\[,;:! ]"
_DROPPED = re.compile(rf"\\left|\\right|{_SPACING}|\\displaystyle|\s+")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?")


def normalize_answer(answer: str) -> str:
    """Drop what does not change an answer: spaces, `\\left`, `$`, `\\text{}`, degrees, end dot.

    Used to match identical answers without parsing and as the voting key of unparsable answers.
    """
    text = answer.strip().rstrip(".").strip().strip("$")
    text = _TEXT.sub(r"\1", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _DROPPED.sub("", text)
    return text.rstrip(".")


def grade(
    solution_text: str,
    gold: str,
    *,
    truncated: bool = False,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> Grade:
    """Grade one solution against the gold answer (the paper's correctness, via math-verify).

    Args:
        solution_text: the generated solution (the last box is its answer).
        gold: the reference answer as written in the dataset (LaTeX or plain; AIME: an integer).
        truncated: the generation stopped at the token cap (no EOS), as the caller knows it.
        timeout_s: time limit for parsing and comparing, in seconds; None runs unbounded in the
            calling thread.

    Returns:
        The `Grade`: RIGHT, or the failure category (precedence in the module docstring).
    """
    if not isinstance(gold, str) or not gold.strip():
        raise ValueError(f"gold must be a non-empty string, got {gold!r}")
    extracted = extract_boxed(solution_text)
    if extracted is None:
        return Grade(Outcome.TRUNCATED if truncated else Outcome.NO_BOXED, None, False)
    mine, theirs = _integer(extracted), _integer(gold)
    if mine is not None and theirs is not None:
        verdict = Outcome.RIGHT if mine == theirs else Outcome.WRONG  # as math-verify decides
    else:
        try:
            verdict = Outcome(_bounded("judge", extracted, gold.strip(), timeout_s=timeout_s))
        except _Timeout:
            verdict = Outcome.TIMEOUT
    if verdict is Outcome.RIGHT:
        return Grade(Outcome.RIGHT, extracted, True)
    return Grade(Outcome.TRUNCATED if truncated else verdict, extracted, False)


def answer_key(
    text: str, *, extract: bool = True, timeout_s: float | None = DEFAULT_TIMEOUT_S
) -> str | None:
    """A canonical string for voting: equivalent answers share it (approach: module docstring).

    Args:
        text: a solution (its last box is the answer) or, with `extract=False`, the answer itself.
        extract: take the answer from the last box of `text`.
        timeout_s: time limit for parsing, in seconds (on timeout the normalized string is the key);
            None runs unbounded in the calling thread.

    Returns:
        The key, or None when there is no answer (no box, or an empty one): such a solution does
        not vote.
    """
    answer = extract_boxed(text) if extract else text.strip()
    if answer is None or not normalize_answer(answer):
        return None
    number = _integer(answer)
    if number is not None:
        return f"num:{number}"  # `_number_key`'s key, without a trip to the worker
    try:
        key = _key_of(answer, timeout_s)
    except _Timeout:
        key = None
    return str(key) if key is not None else "str:" + normalize_answer(answer)


@functools.lru_cache(maxsize=1 << 14)
def _key_of(answer: str, timeout_s: float | None) -> object:
    """The worker's key of an answer, remembered: a search meets the same answers again and again
    (a timeout raises, so it is not remembered)."""
    return _bounded("key", answer, timeout_s=timeout_s)


_INTEGER = re.compile(r"[-+]?\d+")


def _integer(answer: str) -> int | None:
    """A plain integer answer ("033", "-5", "\\text{12}"), read without math-verify (which
    reads it the same): the common case (AIME, most of MATH, the toy backend) skips the worker's
    round trip (~5 ms a call on a loaded CPU), the host overhead of a search round."""
    text = normalize_answer(answer)
    return int(text) if _INTEGER.fullmatch(text) else None


def _bounded(operation: str, *args: str, timeout_s: float | None) -> object:
    """Run `_OPERATIONS[operation](*args)` in the grading worker for at most `timeout_s` seconds."""
    if timeout_s is None:
        return _OPERATIONS[operation](*args)
    return _WORKER.call(operation, args, timeout_s)


class _Worker:
    """The grading child process: JSON lines in, JSON lines out; killed and replaced on timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = 0  # the pid that started `_process` (a forked child must not use its pipes)
        self._stderr: IO[bytes] | None = None
        self._buffer = b""

    def call(self, operation: str, args: tuple[str, ...], timeout_s: float) -> object:
        with self._lock:
            process = self._ensure_started()
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps([operation, *args]).encode() + b"\n")
                process.stdin.flush()
                reply = json.loads(self._read_line(time.monotonic() + timeout_s))
            except (_Timeout, _WorkerDied, BrokenPipeError):
                # Past the limit, or the worker died (e.g. out of memory): both are a timeout.
                self._stop()
                raise _Timeout from None
        if "error" in reply:
            raise RuntimeError(f"grading worker failed on {operation}{args!r}: {reply['error']}")
        return reply["value"]

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._owner == os.getpid():
            return self._process
        self._process = None  # inherited across fork: the parent's, leave it alone
        self._buffer = b""
        self._stderr = tempfile.TemporaryFile()
        root = str(pathlib.Path(__file__).resolve().parents[1])
        boot = f"import sys; sys.path.insert(0, {root!r}); import backends.grading as g; g._serve()"
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-c", boot],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._owner = os.getpid()
        try:
            ready = self._read_line(time.monotonic() + _STARTUP_TIMEOUT_S)
        except (_Timeout, _WorkerDied):
            ready = b""
        if ready != b"ready":
            self._stderr.seek(0)
            detail = self._stderr.read().decode(errors="replace").strip().splitlines()[-1:]
            self._stop()
            raise RuntimeError(f"grading worker failed to start: {' '.join(detail) or ready!r}")
        return self._process

    def _read_line(self, deadline: float) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        descriptor = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([descriptor], [], [], remaining)[0]:
                raise _Timeout
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                raise _WorkerDied
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _stop(self) -> None:
        process, self._process, self._buffer = self._process, None, b""
        if process is not None and self._owner == os.getpid():
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class _WorkerDied(Exception):
    pass


def _serve() -> None:
    """The worker's loop: one JSON request per stdin line, one JSON reply per stdout line."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else that prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    replies.write(b"ready\n")
    replies.flush()
    for line in sys.stdin.buffer:
        operation, *args = json.loads(line)
        try:
            reply = {"value": _OPERATIONS[operation](*args)}
        except Exception as error:  # reported to the caller, who raises it
            reply = {"error": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


# Three gaps of math-verify 0.9.0, closed before parsing: a number wrapped in \text, \textbf or
# \mathbf (AoPS writes `\textbf{(073)}`) becomes a Symbol named "073"; a final dot (`\boxed{104.}`)
# makes the whole answer unparsable; a thin space between digits is a product (`1\,000` → 1·0 = 0).
_WRAPPED_NUMBER = re.compile(
    r"\\(?:text|textbf|mathbf|boldsymbol|bm)\{\s*\(?\s*([-+]?\d+(?:\.\d+)?)\s*\)?\s*\}"
)
_FINAL_DOT = re.compile(r"(?<![.\\])\.\s*$")


def _parse(answer: str) -> tuple[sympy.Basic | sympy.MatrixBase, ...]:
    """math-verify's reading of an answer (empty when it extracts nothing); no signal timeout."""
    answer = _WRAPPED_NUMBER.sub(r"\1", re.sub(_SPACING, "", answer.strip()))
    answer = _FINAL_DOT.sub("", answer)
    return tuple(
        parse(
            "\\boxed{" + answer + "}",
            extraction_config=_EXTRACTORS,
            fallback_mode="no_fallback",
            parsing_timeout=None,
        )
    )


@functools.lru_cache(maxsize=1024)
def _parse_gold(gold: str) -> tuple[sympy.Basic | sympy.MatrixBase, ...]:
    # Every solution of a problem is graded against the same gold: parse it once.
    return _parse(gold)


def _judge(extracted: str, gold: str) -> str:
    """The `Outcome` value of an extracted answer against the gold (a string: it crosses a pipe)."""
    normalized = normalize_answer(extracted)
    if normalized and normalized == normalize_answer(gold):
        return Outcome.RIGHT.value
    prediction = _parse(extracted)
    if not prediction:
        return Outcome.UNPARSABLE.value
    reference = _parse_gold(gold)
    if not reference:
        return Outcome.WRONG.value  # gold unreadable by math-verify: the string test above decided
    equal = verify(list(reference), list(prediction), timeout_seconds=None)
    return (Outcome.RIGHT if equal else Outcome.WRONG).value


def _parsed_key(answer: str) -> str | None:
    """The canonical key of a parsed answer; None (the caller keys the string) if parsing fails."""
    # verify equates `10\%` with 10 and with 0.1; keying the bare number groups `10\%` with 10.
    parsed = _parse(answer.replace("\\%", "").replace("%", ""))
    if not parsed:
        return None
    try:
        return _canonical(parsed[0])
    except Exception:  # SymPy raises many types on odd objects; the string key still votes
        return None


def _canonical(value: sympy.Basic | sympy.MatrixBase) -> str:
    """A string equal for values math-verify calls equal (approximately; see module docstring)."""
    if isinstance(value, sympy.MatrixBase):
        rows = ";".join(",".join(_canonical(x) for x in value.row(i)) for i in range(value.rows))
        return f"Matrix[{rows}]"
    if isinstance(value, sympy.FiniteSet):
        return "Set{" + ",".join(sorted(_canonical(x) for x in value.args)) + "}"
    if isinstance(value, sympy.Tuple):
        return "Tuple(" + ",".join(_canonical(x) for x in value.args) + ")"
    if isinstance(value, sympy.Interval):
        ends = f"{_canonical(value.start)},{_canonical(value.end)}"
        return f"Interval{'(' if value.left_open else '['}{ends}{')' if value.right_open else ']'}"
    if isinstance(value, sympy.Union):
        return "Union{" + ",".join(sorted(_canonical(x) for x in value.args)) + "}"
    if isinstance(value, sympy.Eq) and isinstance(value.lhs, sympy.Symbol):
        return _canonical(value.rhs)  # `x = 5` is the answer 5 (as verify treats it)
    if isinstance(value, sympy.Expr) and not value.free_symbols:
        return _number_key(value)
    exact = value.xreplace({f: sympy.Rational(str(f)) for f in value.atoms(sympy.Float)})
    if isinstance(exact, sympy.Expr):
        exact = sympy.expand(exact.doit())
    return "sym:" + sympy.srepr(exact)


_OPERATIONS: dict[str, Callable[..., str | None]] = {"judge": _judge, "key": _parsed_key}
_STARTUP_TIMEOUT_S = 60.0  # importing SymPy in the worker takes ~1 s; generous for loaded machines
_WORKER = _Worker()
atexit.register(_WORKER.close)


def _number_key(value: sympy.Expr) -> str:
    """`num:<value to 6 decimals>` (`num:0.5`, `num:33`, complex `num:6,-5`), infinities by name."""
    if value.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        return "num:" + str(value.doit())
    scale = sympy.Integer(10) ** _KEY_DECIMALS
    real, imaginary = (int(sympy.N(part * scale, 50).round()) for part in value.as_real_imag())
    parts = [real] if imaginary == 0 else [real, imaginary]
    return "num:" + ",".join(_decimal(part) for part in parts)


def _decimal(scaled: int) -> str:
    text = f"{decimal.Decimal(scaled).scaleb(-_KEY_DECIMALS):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
