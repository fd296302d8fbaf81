"""Final-answer extraction and exact comparison.

Completions and reference solutions end with a final answer in an extractable form. We accept, in order of
precedence: ``#### <answer>`` (GSM8K style and our embedded task), a box, and ``the answer is <answer>``.

Boxes as real data writes them (Hendrycks MATH train has all of these): ``\\boxed{...}`` with nested braces,
``\\fbox{...}``, and ``\\boxed 2`` without braces (TeX's one-token argument; the answer then runs to the next
``$``, newline or space, as in ``$\\boxed 2$`` and ``\\boxed 9$``). When a text holds several boxes, the answer
is the last box of the last sentence that names the answer ("the final answer is ...", "... is our answer"),
else the last box: solutions often box an intermediate result or restate a rejected draft's box before
the real one, and a check written after the answer ("Check: \\boxed{3} fails") must not replace it.
Model output is only ever parsed as text, never evaluated.
"""

from __future__ import annotations

import re

_HASH_ANSWER = re.compile(r"####\s*([^\n#]*)")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?([^\n$]+?)\$?\s*(?:\.|$)", re.IGNORECASE | re.MULTILINE)
_BOX_START = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
# a sentence that states the answer: the box inside it wins over later boxes
_ANNOUNCES_ANSWER = re.compile(r"\banswers?\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<![0-9\\])[.!?](?=\s|$)|\n\s*\n")
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


def boxes(text: str) -> list[tuple[int, str]]:
    """Every readable box in ``text`` as (position, content), in order."""
    found: list[tuple[int, str]] = []
    pos = 0
    while True:
        match = _BOX_START.search(text, pos)
        if not match:
            return found
        content, end = _box_at(text, match.start())
        if content is not None:
            found.append((match.start(), content))
        pos = max(end, match.end())


def _sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, pos)]
    begin = starts[-1] if starts else 0
    after = _SENTENCE_END.search(text, pos)
    return begin, after.start() if after else len(text)


def final_boxed(text: str) -> str | None:
    """The answer a text boxes (see the module docstring for several boxes), or None."""
    found = boxes(text)
    if not found:
        return None
    if len(found) == 1:
        return found[0][1]
    for pos, content in reversed(found):
        begin, end = _sentence_bounds(text, pos)
        if _ANNOUNCES_ANSWER.search(text[begin:end]):
            # the last box of that sentence (e.g. "the answer is $\boxed{2}$ or $\boxed{-2}$" keeps the last)
            return [c for p, c in found if begin <= p < end][-1]
    return found[-1][1]


def _last_boxed(text: str) -> str | None:
    """Kept for callers of the earlier name: the final boxed answer."""
    return final_boxed(text)


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
    said = _ANSWER_IS.findall(tail)
    if said:
        return said[-1].strip() or None
    return None


def normalize_answer(answer: str) -> str:
    """Canonical text for exact comparison: no spaces, no thousands separators, no trailing zeros of a decimal."""
    norm = answer.strip().replace(" ", "").replace(",", "").rstrip(".")
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
