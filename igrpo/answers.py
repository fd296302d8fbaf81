"""Final-answer extraction and exact comparison.

Completions end with a final answer in a fixed, extractable form. We accept, in order of precedence:
``#### <answer>`` (GSM8K style and our embedded task), ``\\boxed{<answer>}`` (MATH style, nested braces
allowed) and ``the answer is <answer>``. The *last* occurrence wins, because models often restate a
draft's answer before correcting it. Model output is only ever parsed as text, never evaluated.
"""

from __future__ import annotations

import re

_HASH_ANSWER = re.compile(r"####\s*([^\n#]*)")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?([^\n$]+?)\$?\s*(?:\.|$)", re.IGNORECASE | re.MULTILINE)
_MAX_SCAN_CHARS = 20_000  # answers sit at the end; never scan a pathological 100k-char completion whole


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces, or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    begin = i
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[begin:i].strip()
        i += 1
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
    boxed = _last_boxed(tail)
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
