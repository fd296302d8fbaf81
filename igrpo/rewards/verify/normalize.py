"""Pure, value-preserving normalisation of answers, and the cheap structural checks that run before any parsing.

Everything here is deterministic and linear in the answer's length, so a grade never depends on machine load:
inputs that would take sympy long to parse are refused by their *shape* (length, nesting, exponent and factorial
literals), not by a timeout. The time budget of the worker process is the last line of defence, for inputs whose
cost cannot be seen from their text.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

# Exponent literals of 5+ digits (2^{999999999}, x**12345) and numeric exponent towers (10^{10^{10}}, 9**9**9**9).
# A symbolic tower such as 2^{2^n} is a legitimate answer and stays allowed.
_POW = r"(?:\^|\*\*)\s*\{?\s*\(?\s*"
HUGE_EXPONENT = re.compile(_POW + r"[-+]?\d{5,}")
NUMERIC_TOWER = re.compile(_POW + r"\d+\s*\}?\s*" + _POW + r"\d")
# Factorials of 6+ digit numbers: sympy evaluates 1000000! for ~6 s (99999! takes milliseconds).
HUGE_FACTORIAL = re.compile(r"(?<![\d.])\d{6,}\s*!")
# A factorial of a factorial: (9999!)! is a number with ~10^5 digits factorialised (measured: 4 s and more).
NESTED_FACTORIAL = re.compile(r"!\s*[)}\]]+\s*!")
# Scientific exponents beyond this are written as a power of ten instead of a decimal string of that length.
_MAX_DECIMAL_EXPONENT = 20

# Normalisation that never changes the value of an answer.
_DOLLARS = re.compile(r"\\\$|\$")  # currency \$ and math-mode delimiters
_SPACING = re.compile(r"\\left\b|\\right\b|(?<!\\)\\[!,;: ]|~")  # not the "\\ " row break of a matrix
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
_PERCENT = re.compile(r"\\?%")  # "50\%" is graded as 50, matching math_verify's own "$50\%$" -> 50
# A percent word after a value, bare or in a text wrapper: "28 percent", "28 pct", "28 per cent", "28 percentage",
# "28\text{ percent}". The same percentage as "28\%", so it goes the same way (both sides are cleaned alike).
_PERCENT_NAME = r"(?:per\s?cent(?:age)?|pct)\.?"
_PERCENT_WORD = re.compile(r"(?<=[\d})])\s*(?:\\(?:text|textrm|textnormal|mathrm|mbox)\s*\{\s*" + _PERCENT_NAME
                           + r"\s*\}|" + _PERCENT_NAME + r"(?![A-Za-z]))", re.IGNORECASE)
# Thousands grouped with a thin negative space and a space, as MATH solutions write them: "11,\! 111,\! 100" and
# "32,\! 349" become "11,111,100" and "32,349" before the spacing is dropped (else "32, 349" would be a list).
_SPACED_THOUSANDS = re.compile(r"(?<=\d),\s*\\!\s*(?=\d{3}(?!\d))")
# A whole answer grouped in thousands. The first group is never 0: "0,111" is math_verify's decimal comma, 0.111.
_THOUSANDS = re.compile(r"[-+]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
# Scientific notation: 1e3, -2.5E-4, 1.2e+05 (a mantissa with digits, an e, an integer exponent; "3e" is 3 times e).
SCIENTIFIC = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_CHOICE = re.compile(r"\(([A-Za-z])\)|([A-E])")  # multiple-choice letter: "(b)", "(B)", "B"
_WORD = re.compile(r"[A-Za-z]{2,}")  # "east", "yes", "undefined"; spaces were removed by key()
# A value followed by a unit in a text wrapper: "5\text{ m}", "12 \mbox{cm}", "3\,\mathrm{kg}".
_TRAILING_UNIT = re.compile(r"^(?P<value>.*?\S)\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*(?P<unit>[^{}]*?)\s*\}$")
# Unit spellings that name the same unit (singular form; plurals are folded by unit_key).
_UNIT_ALIASES = {
    "meter": "m", "metre": "m", "centimeter": "cm", "centimetre": "cm", "millimeter": "mm", "millimetre": "mm",
    "kilometer": "km", "kilometre": "km", "second": "s", "sec": "s", "minute": "min", "hour": "h", "hr": "h",
    "gram": "g", "kilogram": "kg", "degree": "deg", "inch": "in", "foot": "ft", "feet": "ft", "unit": "unit",
}


def brace_depth(text: str) -> int:
    """Deepest nesting of ``{([`` brackets (mixed kinds count together, so ``[0,1)`` is depth 1)."""
    depth = deepest = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "})]":
            depth -= 1
    return deepest


def bare_group_depth(text: str) -> int:
    """Deepest nesting of *bare* groups: brackets that are not a LaTeX command's argument.

    math_verify's parse time grows by ~50-60 ms per bare level on an idle core (``((((1))))``, ``{{{{1}}}}``),
    while argument groups (``\\frac{..}{..}``, ``\\sqrt{..}``, ``x^{..}``) cost almost nothing; so the structural
    cap counts only bare levels.
    """
    stack: list[bool] = []  # True for a bare group
    deepest = 0
    prev = ""  # last non-space character before the bracket, or a marker for "after a command name"
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            j = i + 1
            while j < len(text) and text[j].isalpha():
                j += 1
            if j == i + 1:  # an escaped symbol (\{ \} \, ...): a set brace is a bare group of its own
                j += 1
                if text[i + 1:j] == "{":
                    stack.append(True)
                    deepest = max(deepest, sum(stack))
                elif text[i + 1:j] == "}" and stack:
                    stack.pop()
                prev = text[j - 1] if j - 1 < len(text) else ""
            else:
                prev = "\\cmd"
            i = j
            continue
        if ch in "{([":
            is_argument = ch == "{" and (prev in ("\\cmd", "}", "^", "_"))
            stack.append(not is_argument)
            deepest = max(deepest, sum(stack))
        elif ch in "})]" and stack:
            stack.pop()
        if not ch.isspace():
            prev = ch
        i += 1
    return deepest


def strip_redundant_braces(text: str) -> str:
    """Drop LaTeX grouping braces that change nothing: ``{{X}}`` -> ``{X}``, and a ``{X}`` around the whole answer.

    Escaped set braces ``\\{ \\}`` are never touched. Each pass is linear; a pass removes every doubled pair at
    once, so ``{{{{{1}}}}}`` takes two passes (doubles, then the whole-answer pair).
    """
    while True:
        stripped = _strip_braces_once(text)
        if stripped == text:
            return text
        text = stripped


def _strip_braces_once(text: str) -> str:
    match: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2  # skip the escaped character (\{, \}, \\)
            continue
        if text[i] == "{":
            stack.append(i)
        elif text[i] == "}":
            if not stack:
                return text  # unbalanced: leave it to the unbalanced-brace check
            match[stack.pop()] = i
        i += 1
    if stack:
        return text
    drop: set[int] = set()
    for open_i, close_i in match.items():
        inner = match.get(open_i + 1)
        if inner is not None and inner == close_i - 1:  # {{X}}: the outer pair wraps exactly one group
            drop.update((open_i, close_i))
    whole = match.get(0)
    if whole == len(text) - 1 and len(text) >= 2:
        drop.update((0, whole))
    if not drop:
        return text
    return "".join(ch for k, ch in enumerate(text) if k not in drop)


def expand_scientific(text: str) -> str:
    """``1e3`` -> ``1000``, ``2.5E-4`` -> ``0.00025``: math_verify would read ``1e3`` as 1*e*3 (= ``3e``).

    Only a whole answer in scientific notation is rewritten. Exponents beyond ±20 become ``m\\cdot10^{k}`` rather
    than a decimal string as long as the exponent (``1e99999`` would otherwise be 100,000 characters).
    """
    if not SCIENTIFIC.fullmatch(text):
        return text
    mantissa, _, exponent = text.lower().partition("e")
    if abs(int(exponent)) > _MAX_DECIMAL_EXPONENT:
        return f"{mantissa}\\cdot10^{{{int(exponent)}}}"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return format(value.normalize() if "." in format(value, "f") else value, "f")


def split_unit(text: str) -> tuple[str, str | None]:
    """``5\\text{ m}`` -> (``5``, ``m``); an answer without a trailing unit wrapper -> (text, None).

    A text wrapper holding the whole answer (``\\text{east}``) is an answer, not a unit.
    """
    found = _TRAILING_UNIT.match(text)
    if not found or not found.group("unit"):
        return text, None
    return found.group("value").strip(), found.group("unit")


def unit_key(unit: str) -> str:
    """Canonical unit spelling: case-folded, plural folded, common spellings aliased (``meters`` -> ``m``)."""
    unit = re.sub(r"\s+", " ", unit.strip().lower()).rstrip(".")
    if len(unit) > 3 and unit.endswith("es") and unit[:-2] in _UNIT_ALIASES:
        unit = unit[:-2]
    elif len(unit) > 2 and unit.endswith("s"):
        unit = unit[:-1]
    return _UNIT_ALIASES.get(unit, unit)


def units_conflict(pred_unit: str | None, gold_unit: str | None) -> bool:
    """Both sides name a unit and they differ (``m`` vs ``km``). A unit on one side only is ignored, as before."""
    return pred_unit is not None and gold_unit is not None and unit_key(pred_unit) != unit_key(gold_unit)


def strip_percent(text: str) -> str:
    """``28\\%``, ``28 %``, ``28 percent``, ``28 pct``, ``28\\text{ percent}`` -> ``28``: a percentage is graded as its
    number (``50\\%`` equals ``50``, not ``0.5``), whichever way it is written."""
    return _PERCENT.sub("", _PERCENT_WORD.sub("", text))


def clean_answer(text: str) -> str:
    """Value-preserving cleanup; the result is what math_verify sees."""
    text = _DOLLARS.sub("", text.strip())
    text = _SPACED_THOUSANDS.sub(",", text)
    text = _SPACING.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = strip_percent(_DEGREES.sub("", text)).replace("{,}", ",").strip()
    text = re.sub(r"\.\s*$", "", text).strip()  # sentence-final period: "12." is 12
    text = strip_redundant_braces(text)
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    return expand_scientific(text)


def key(cleaned: str) -> str:
    """Comparison key for the fast path: no ``\\text{}``-style wrappers, no whitespace."""
    for _ in range(3):  # nested wrappers such as \textbf{\text{B}}
        cleaned = _TEXT_WRAPPER.sub(r"\1", cleaned)
    return re.sub(r"\s+", "", cleaned)


def text_answer(answer_key: str) -> str | None:
    """Canonical form of a plain-text answer (choice letter or word), None for anything mathematical."""
    choice = _CHOICE.fullmatch(answer_key)
    if choice:
        return (choice.group(1) or choice.group(2)).upper()
    return answer_key.lower() if _WORD.fullmatch(answer_key) else None


def is_number(answer_key: str) -> bool:
    return bool(_NUMBER.fullmatch(answer_key))


_INT = r"[-+]?\d+"
_FRACTION = re.compile(rf"(?P<sign>[-+]?)(?:\\frac\{{(?P<num>{_INT})\}}\{{(?P<den>{_INT})\}}|\\frac(?P<n1>\d)(?P<d1>\d)"
                       rf"|(?P<num2>\d+)/(?P<den2>\d+))")


def rational_value(answer_key: str) -> Fraction | None:
    """The exact value of an integer, decimal or simple fraction (``-\\frac{3}{4}``, ``\\frac12``, ``3/4``), else None."""
    if is_number(answer_key):
        return Fraction(Decimal(answer_key))
    found = _FRACTION.fullmatch(answer_key)
    if not found:
        return None
    num, den = (found.group("num") or found.group("n1") or found.group("num2"),
                found.group("den") or found.group("d1") or found.group("den2"))
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return -value if found.group("sign") == "-" else value


def fast_decision(pred: str, gold: str) -> bool | None:
    """Decide cleaned answers without sympy where that is safe, else None."""
    a, b = key(pred), key(gold)
    if a == b:
        return True
    if is_number(a) and is_number(b):
        return Decimal(a) == Decimal(b)  # exact: "0.5" == "0.50", "-3" == "-3.0"
    value_a, value_b = rational_value(a), rational_value(b)
    if value_a is not None and value_b is not None:
        if value_a == value_b:
            return True  # "\\frac{1}{2}" == "0.5" == "2/4"
        if "." not in a + b:
            return False  # two exact fractions that differ
        # a decimal against a fraction: math_verify's rounding decides ("0.333333" is 1/3, "0.3333" is not)
    text_a, text_b = text_answer(a), text_answer(b)
    if text_a is not None and text_b is not None:
        return text_a == text_b  # as words, not as products of symbols ("east" is not "teas")
    return None


def unbalanced_braces(text: str) -> bool:
    """LaTeX groups that never close (``\\frac{1}{``) cannot parse; escaped ``\\{ \\}`` are set braces."""
    plain = text.replace("\\{", "").replace("\\}", "")
    depth = 0
    for ch in plain:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return True
    return depth != 0


def structural_problem(text: str, max_depth: int, max_bare_depth: int) -> str | None:
    """Why ``text`` (a cleaned answer) is refused before parsing, or None: a deterministic, linear-time cap.

    The reasons are the shapes whose parse or evaluation cost grows without bound: nesting (all brackets, and bare
    groups, the expensive kind), huge exponent or factorial literals, numeric exponent towers and nested factorials.
    """
    if brace_depth(text) > max_depth:
        return "nested too deep"
    if bare_group_depth(text) > max_bare_depth:
        return "bare groups nested too deep"
    for name, pattern in (("huge exponent", HUGE_EXPONENT), ("exponent tower", NUMERIC_TOWER),
                          ("huge factorial", HUGE_FACTORIAL), ("nested factorial", NESTED_FACTORIAL)):
        if pattern.search(text):
            return name
    return None
