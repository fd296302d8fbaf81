"""Task data types shared by every task."""

from __future__ import annotations

from dataclasses import dataclass, field

from igrpo.core.drafts import resolve_template


@dataclass(frozen=True)
class Problem:
    """One problem: its text, a worked solution (for warm starts) and the reference final answer."""

    id: str
    problem: str
    answer: str
    solution: str = ""
    level: str = ""


def escape_braces(text: str) -> str:
    """Literal text inside a ``str.format`` template (the refinement templates are filled with ``format``)."""
    return text.replace("{", "{{").replace("}", "}}")


@dataclass
class TaskData:
    """Training problems plus named held-out eval suites (the paper's benchmark columns).

    A prompt is ``chat_prefix + prompt_template(problem) + chat_suffix``: ``prompt_template`` is the user
    message (its literal ``{problem}`` is replaced; other braces, e.g. ``\\boxed{}``, are kept as written) and
    the chat frame is empty unless the model's chat template is used (``igrpo.tasks.prompts``).
    """

    train: list[Problem]
    eval_suites: dict[str, list[Problem]]
    prompt_template: str = "{problem}"
    extra: dict = field(default_factory=dict)
    chat_prefix: str = ""  # the chat template's text before the user message (system turn, role headers)
    chat_suffix: str = ""  # the text after it, up to where the assistant's reply starts

    def user_message(self, problem: Problem) -> str:
        return self.prompt_template.replace("{problem}", problem.problem)

    def prompt(self, problem: Problem) -> str:
        """The plain (draft-free) prompt for a problem, chat-formatted when the model uses a chat template."""
        return self.chat_prefix + self.user_message(problem) + self.chat_suffix

    def frame(self, template: str) -> str:
        """A user-message template framed by the task's chat template (unchanged for plain prompts)."""
        return self.chat_prefix + template + self.chat_suffix

    def refinement_template(self, template: str) -> str:
        """A refinement template (name or literal) as the iGRPO Stage-2 prompt for this task: the named template
        is the user message, so with a chat template it is framed like every plain prompt. Returned as a literal
        template (still filled by ``igrpo.core.drafts.build_refinement_prompt``); unchanged without a chat frame."""
        if not (self.chat_prefix or self.chat_suffix):
            return template
        return escape_braces(self.chat_prefix) + resolve_template(template) + escape_braces(self.chat_suffix)
