"""Final-answer extraction and exact comparison.

Completions and reference solutions end with a final answer in an extractable form. We accept, in order of
precedence: ``#### <answer>`` (GSM8K style and our embedded task), a box, and ``the answer is <answer>``.

Boxes as real data writes them (Hendrycks MATH train has all of these): ``\\boxed{...}`` with nested braces,
``\\fbox{...}``, and ``\\boxed 2`` without braces (TeX's one-token argument; the answer then runs to the next
``$``, newline or space, as in ``$\\boxed 2$`` and ``\\boxed 9$``). When a text holds several boxes, the answer
is the last box of the last sentence that names the answer ("the final answer is ...", "... is our answer"),
else the last box: solutions often box an intermediate result or restate a rejected draft's box before
the real one, and a check written after the answer ("Check: \\boxed{3} fails") must not replace it.

Several boxes joined only by a separator are one answer, a list: ``\\boxed{1}, \\boxed{2}, \\boxed{3}``,
``$\\boxed{2}$ or $\\boxed{-2}$``, ``\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}``, ``$x = \\boxed{1}$ or
$x = \\boxed{2}$`` give ``1, 2, 3``, ``2, -2``, ``(2, 2), (6, 2)`` and ``1, 2``. Between two joined boxes there is
nothing but math delimiters, spacing, one separator (a comma, a semicolon, "and", "or") and a ``name =`` label;
any other word, a sentence end or a blank line keeps them apart. The same rule serves every task: a question
with several answers needs the whole list, and on a single-answer question a list never equals the reference,
so a hedge written as several boxes earns nothing (where keeping only the last box would pay
``\\boxed{17} or \\boxed{16}`` when the reference is 16).

``the answer is <answer>`` (the fallback when there is no ``####`` and no box) reads to the end of its sentence:
a period followed by a space or the end of the text, or a line break. A decimal point (``7.78``), a period inside
braces (``\\sqrt{10.5}``) or inside math (``$...$``, ``\\(...\\)``, ``\\[...\\]``, whose delimiters are dropped)
does not end it. Model output is only ever parsed as text, never evaluated.
"""

from __future__ import annotations

import bisect
import re

_HASH_ANSWER = re.compile(r"####\s*([^\n#]*)")
_ANSWER_IS = re.compile(r"\banswer is\b[:\s]*", re.IGNORECASE)
# math delimiters around an answer, opener -> closer (longest openers first)
_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_SENTENCE_INSIDE = re.compile(r"\.\s")  # inline math holds no sentence end; "$5. She paid $" is money
_BOX_START = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# a sentence that states the answer: the box inside it wins over later boxes
_ANNOUNCES_ANSWER = re.compile(r"\banswers?\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<![0-9\\])[.!?](?=\s|$)|\n\s*\n")
# What may stand between two boxes that form one answer (after _between_text): one separator and a "name =" label.
_BOX_JOINER = re.compile(r"\s*(?:,|;|,?\s*\b(?:and|or)\b)?\s*(?:[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?\s*=)?\s*",
                         re.IGNORECASE)
_BETWEEN_NOISE = re.compile(r"\$|\\[()\[\]]|\\(?:q?quad|[,;:! ]|\\)(?![A-Za-z])|~|&")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_TEXT_COMMAND = re.compile(r"\\(?:text|textrm|textnormal|textbf|textit|mbox|mathrm)\s*\{([^{}]*)\}")
_MAX_SCAN_CHARS = 20_000  # answers sit at the end; never scan a pathological 100k-char completion whole


def _box_at(text: str, start: int) -> tuple[str | None, int]:
    """(content, end) of the box whose command starts at ``start``; content None when it is unreadable
    (unbalanced braces, nothing after a brace-less ``\\boxed``)."""
    i = text.index("\\", start) + 1
    while i < len(text) and text[i].isalpha():
        i += 1
    j = i
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        depth, k = 1, j + 1
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    content = text[j + 1:k].strip()
                    return (content or None), k + 1
            k += 1
        return None, len(text)
    if j == i:  # "\boxedX": not a box command
        return None, i
    match = re.match(r"[^\s$]+", text[j:])
    if not match:
        return None, j
    content = match.group(0).rstrip(".,;")
    return (content or None), j + match.end()


def _all_boxes(text: str) -> list[tuple[int, int, str]]:
    """Every readable box in ``text`` as (start, end, content), in order."""
    found: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        match = _BOX_START.search(text, pos)
        if not match:
            return found
        content, end = _box_at(text, match.start())
        if content is not None:
            found.append((match.start(), end, content))
        pos = max(end, match.end())


def boxes(text: str) -> list[tuple[int, str]]:
    """Every readable box in ``text`` as (position, content), in order."""
    return [(start, content) for start, _, content in _all_boxes(text)]


class _Sentences:
    """Sentence bounds around positions of one text, found in one pass (a text with thousands of boxes stays linear)."""

    def __init__(self, text: str) -> None:
        self.text = text
        found = list(_SENTENCE_END.finditer(text))
        self.starts = [m.start() for m in found]
        self.ends = [m.end() for m in found]

    def bounds(self, pos: int) -> tuple[int, int]:
        """(begin, end) of the sentence holding ``pos``: after the last sentence end before it, up to the next."""
        k = bisect.bisect_right(self.ends, pos)
        begin = self.ends[k - 1] if k else 0
        if pos and _SENTENCE_END.match(self.text, pos - 1, pos):  # a period right before the box: "so.\boxed{3}"
            begin = pos
        j = bisect.bisect_left(self.starts, pos)
        return begin, self.starts[j] if j < len(self.starts) else len(self.text)


def _between_text(between: str) -> str:
    """The text between two boxes without math delimiters, spacing commands and ``\\text{}`` wrappers."""
    for _ in range(2):  # \text{\ and\ }
        between = _TEXT_COMMAND.sub(r" \1 ", between)
        between = _BETWEEN_NOISE.sub(" ", between)
    return between


def boxes_joined(between: str) -> bool:
    """Whether two boxes with ``between`` between them form one answer (see the module docstring)."""
    if len(between) > 200 or _PARAGRAPH_BREAK.search(between):
        return False
    return _BOX_JOINER.fullmatch(_between_text(between)) is not None


def final_boxed(text: str) -> str | None:
    """The answer a text boxes (see the module docstring for several boxes), or None."""
    found = _all_boxes(text)
    if not found:
        return None
    chosen = len(found) - 1
    if len(found) > 1:
        sentences, announces = _Sentences(text), {}
        for k in range(len(found) - 1, -1, -1):
            begin, end = sentences.bounds(found[k][0])
            if (begin, end) not in announces:  # many boxes in one sentence: search it once
                announces[(begin, end)] = _ANNOUNCES_ANSWER.search(text, begin, end) is not None
            if announces[(begin, end)]:
                # the last box of that sentence (with the boxes joined to it: "$\boxed{2}$ or $\boxed{-2}$")
                chosen = max(i for i, (start, _, _) in enumerate(found) if begin <= start < end)
                break
    first = chosen
    while first > 0 and boxes_joined(text[found[first - 1][1]:found[first][0]]):
        first -= 1
    parts: list[str] = []
    for _, _, content in found[first:chosen + 1]:
        if not parts or parts[-1] != content:  # \boxed{3}, \boxed{3} is one answer, 3
            parts.append(content)
    return ", ".join(parts)


def _last_boxed(text: str) -> str | None:
    """Kept for callers of the earlier name: the final boxed answer."""
    return final_boxed(text)


def _math_opener(text: str, i: int) -> tuple[str, str] | None:
    for opener, closer in _MATH_DELIMITERS:
        if text.startswith(opener, i):
            return opener, closer
    return None


def _closing(text: str, start: int, closer: str) -> int:
    """Index of the first ``closer`` at or after ``start`` that is not escaped (``\\$`` is a dollar sign), or -1."""
    i = text.find(closer, start)
    while i > 0 and closer == "$" and text[i - 1] == "\\":
        i = text.find(closer, i + 1)
    return i


def _answer_after(text: str, start: int) -> str | None:
    """The answer that starts at ``start`` (after "answer is"): up to the end of its sentence, see the docstring."""
    out: list[str] = []
    depth, i, n = 0, start, len(text)
    while i < n:
        ch = text[i]
        math = _math_opener(text, i) if depth == 0 else None
        if math:
            opener, closer = math
            close = _closing(text, i + len(opener), closer)
            if close < 0 or (opener == "$" and _SENTENCE_INSIDE.search(text[i + 1:close].rstrip())):
                i += len(opener)  # an unclosed delimiter, or a dollar sign ("$5. She paid $3"): drop it, read on
                continue
            out.append(text[i + len(opener):close])
            i = close + len(closer)
            continue
        if ch == "\n" or (depth == 0 and ch == "." and (i + 1 == n or text[i + 1].isspace())):
            break  # a line break, or a sentence end that is not a decimal point ("3.14") nor inside braces
        if ch == "\\" and i + 1 < n:  # an escaped character (\{, \$, \\) or a command's backslash
            out.append(text[i:i + 2])
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
        out.append(ch)
        i += 1
    answer = "".join(out).strip().strip('"').strip().rstrip(".").strip()
    return answer or None


def said_answer(text: str) -> str | None:
    """The answer of the last "the answer is ..." in ``text`` that names one, or None."""
    for match in reversed(list(_ANSWER_IS.finditer(text))):
        answer = _answer_after(text, match.end())
        if answer:
            return answer
    return None


def extract_final_answer(text: str) -> str | None:
    """Return the final answer written in ``text``, stripped, or None when there is none."""
    if not text:
        return None
    tail = text[-_MAX_SCAN_CHARS:]
    hashes = _HASH_ANSWER.findall(tail)
    if hashes:
        answer = hashes[-1].strip().rstrip(".")
        return answer or None
    boxed = final_boxed(tail)
    if boxed:
        return boxed
    return said_answer(tail)


_GROUPED_NUMBER = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d*)?")  # 1,234,567.5 (a first group of 0 is no group)


def normalize_answer(answer: str) -> str:
    """Canonical text for exact comparison: no spaces, no thousands separators, no trailing zeros of a decimal.

    A comma is dropped only as a thousands separator (``1,000``): in ``1, 6`` or ``2,5`` it separates answers,
    so a list never equals the number its digits spell (``16``, ``25``)."""
    norm = answer.strip().replace(" ", "").rstrip(".")
    if _GROUPED_NUMBER.fullmatch(norm):
        norm = norm.replace(",", "")
    if norm.startswith("+"):
        norm = norm[1:]
    if re.fullmatch(r"-?\d+\.\d*", norm):
        norm = norm.rstrip("0").rstrip(".")
    if norm in ("-0", ""):
        norm = norm.replace("-", "") or norm
    return norm


def is_gradeable(gold: str | None) -> bool:
    """A reference answer we can compare against: present and non-empty after normalisation."""
    return gold is not None and normalize_answer(str(gold)) != ""


def answers_match(predicted: str | None, gold: str) -> bool:
    """Exact match after normalisation. ``predicted=None`` (no answer written) never matches."""
    if predicted is None:
        return False
    return normalize_answer(predicted) == normalize_answer(gold)
