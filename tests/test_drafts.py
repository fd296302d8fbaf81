import random

import pytest

from igrpo.core.drafts import (
    TEMPLATES,
    all_zero,
    build_refinement_prompt,
    check_budget,
    draft_content,
    fit_draft,
    resolve_template,
    select_draft,
    truncate_draft,
)
from igrpo.errors import ConfigError


class TestSelectDraft:
    def test_best_picks_highest_reward(self):
        assert select_draft([0.0, 1.0, 0.5]) == 1

    def test_ties_go_to_lowest_index(self):
        assert select_draft([0.0, 1.0, 1.0, 0.0]) == 1

    def test_all_zero_rewards_pick_first(self):
        assert select_draft([0.0, 0.0, 0.0]) == 0

    def test_shortest_tie_break(self):
        assert select_draft([1.0, 0.0, 1.0, 1.0], tie_break="shortest", lengths=[30, 5, 10, 10]) == 2

    def test_shortest_needs_lengths(self):
        with pytest.raises(ValueError):
            select_draft([1.0, 1.0], tie_break="shortest")

    def test_ungradeable_ranks_below_scored(self):
        assert select_draft([None, 0.0, None]) == 1
        assert select_draft([None, None]) == 0

    def test_worst_prefers_formatted(self):
        assert select_draft([0.0, 1.0, 0.5], rule="worst", formatted=[False, True, True]) == 2
        assert select_draft([0.0, 1.0], rule="worst", formatted=[False, False]) == 0

    def test_random_is_reproducible(self):
        picks = [select_draft([0, 1, 0, 1], rule="random", rng=random.Random(3)) for _ in range(3)]
        assert len(set(picks)) == 1

    def test_first(self):
        assert select_draft([0.0, 1.0], rule="first") == 0

    def test_unknown_rule_is_one_line_error(self):
        with pytest.raises(ConfigError, match="best, worst, random, first"):
            select_draft([1.0], rule="median")

    def test_empty(self):
        with pytest.raises(ValueError):
            select_draft([])


def test_all_zero():
    assert all_zero([0.0, None, 0.0])
    assert not all_zero([0.0, 1.0])


class TestTruncation:
    def test_short_draft_untouched(self):
        assert truncate_draft([1, 2, 3], 5) == ([1, 2, 3], False)

    def test_tail_keeps_the_end(self):
        assert truncate_draft(list(range(10)), 3, "tail") == ([7, 8, 9], True)

    def test_head_keeps_the_start(self):
        assert truncate_draft(list(range(10)), 3, "head") == ([0, 1, 2], True)

    def test_exact_length_not_truncated(self):
        assert truncate_draft([1, 2, 3], 3) == ([1, 2, 3], False)

    def test_bad_cap(self):
        with pytest.raises(ValueError):
            truncate_draft([1], 0)

    def test_bad_side(self):
        with pytest.raises(ConfigError):
            truncate_draft([1], 1, "middle")


class TestTemplates:
    def test_tiny_template_layout(self):
        assert build_refinement_prompt("tiny", "1+2", "1+2=3 #### 3") == "Q:1+2\nDraft:1+2=3 #### 3\nA:"

    def test_draft_with_braces_is_inserted_verbatim(self):
        draft = "x = {problem} and {draft} \\boxed{3}"
        out = build_refinement_prompt("paper", "What is 1+2?", draft)
        assert draft in out and out.startswith("What is 1+2?")

    def test_literal_template(self):
        assert build_refinement_prompt("P={problem} D={draft}", "p", "d") == "P=p D=d"

    def test_literal_template_needs_draft_slot(self):
        with pytest.raises(ConfigError, match="tiny, paper"):
            resolve_template("no slot here")

    def test_paper_template_treats_draft_as_guidance(self):
        assert "guidance, not ground truth" in TEMPLATES["paper"]


class TestBudget:
    def test_matched(self):
        check_budget(8, 4, 4)

    def test_mismatch_is_error(self):
        with pytest.raises(ConfigError, match="budget mismatch"):
            check_budget(8, 4, 6)

    def test_mismatch_allowed(self):
        check_budget(8, 4, 6, allow_mismatch=True)

    def test_zero_drafts(self):
        with pytest.raises(ConfigError, match="num_drafts=0"):
            check_budget(8, 0, 8)

    def test_rounds_count_against_the_budget(self):
        check_budget(8, 2, 4, rounds=2)
        with pytest.raises(ConfigError, match="budget mismatch"):
            check_budget(8, 2, 6, rounds=2)

    def test_zero_rounds(self):
        with pytest.raises(ConfigError, match="variant.rounds=0 is not valid"):
            check_budget(8, 4, 4, rounds=0)

    def test_single_refinement_has_no_group(self):
        with pytest.raises(ConfigError, match="num_refinements=1"):
            check_budget(2, 1, 1)


def test_best_of_n_success_probability_matches_formula():
    """With binary rewards and per-draft success rate V, P(best draft correct) = 1 - (1 - V)^N."""
    rng = random.Random(0)
    trials = 20_000
    for v, n in [(0.2, 4), (0.5, 2), (0.1, 8)]:
        hits = 0
        for _ in range(trials):
            rewards = [1.0 if rng.random() < v else 0.0 for _ in range(n)]
            hits += rewards[select_draft(rewards)] == 1.0
        assert hits / trials == pytest.approx(1 - (1 - v) ** n, abs=0.015)


class TestDraftContent:
    def test_full_is_the_whole_completion(self):
        text = "let me think</think>\nThe answer is 3."
        assert draft_content(text, "full") == (text, False)

    def test_answer_section_is_after_the_last_think_close_without_tags(self):
        text = "wait <think> no</think> still</think>\n\n**Answer** $\\boxed{3}$ <think>"
        assert draft_content(text, "answer_section") == ("**Answer** $\\boxed{3}$", False)

    def test_answer_section_without_think_close_falls_back_to_the_text_and_says_so(self):
        kept, fell_back = draft_content("<think>still thinking about 3", "answer_section")
        assert fell_back and kept == "still thinking about 3" and "<think>" not in kept

    def test_unknown_mode_is_one_line_error(self):
        with pytest.raises(ConfigError, match="full, answer_section"):
            draft_content("x", "summary")


class TestFitDraft:
    """Characters as tokens: render places the draft in a 10-character frame."""

    @staticmethod
    def render(ids):
        return "QQQQ[" + "".join(chr(i) for i in ids) + "]AAAA"

    def test_no_cap_only_max_draft_tokens(self):
        fitted = fit_draft([ord(c) for c in "abcdef"], self.render, len, max_draft_tokens=4)
        assert (fitted.prompt, fitted.draft_tokens, fitted.prompt_tokens, fitted.truncated) == (
            "QQQQ[cdef]AAAA", 4, 14, True)

    def test_draft_cut_to_what_the_budget_leaves(self):
        fitted = fit_draft([ord(c) for c in "abcdef"], self.render, len, max_draft_tokens=100, max_prompt_tokens=13)
        assert fitted.prompt == "QQQQ[def]AAAA" and fitted.prompt_tokens == 13 and fitted.truncated
        head = fit_draft([ord(c) for c in "abcdef"], self.render, len, 100, "head", max_prompt_tokens=13)
        assert head.prompt == "QQQQ[abc]AAAA"

    def test_fitting_draft_untouched(self):
        fitted = fit_draft([ord(c) for c in "abc"], self.render, len, 100, max_prompt_tokens=13)
        assert fitted.prompt == "QQQQ[abc]AAAA" and not fitted.truncated

    def test_no_room_gives_no_prompt(self):
        fitted = fit_draft([ord(c) for c in "abc"], self.render, len, 100, max_prompt_tokens=10)
        assert fitted.prompt is None and fitted.draft_tokens == 0 and fitted.truncated

    def test_tokens_merging_across_the_edge_are_counted_again(self):
        """A tokenizer that counts 'aa' pairs as two extra tokens: the cut to the room left (4) is still over the
        cap (18 > 14), and the longest draft that fits (2: 12 + 2) is found."""
        def count(text):
            return len(text) + 2 * text.count("aa")

        fitted = fit_draft([ord("a")] * 6, self.render, count, 100, max_prompt_tokens=14)
        assert count(fitted.prompt) <= 14 and fitted.prompt_tokens == count(fitted.prompt) and fitted.truncated
        assert fitted.draft_tokens == 2 and fitted.prompt == "QQQQ[aa]AAAA"
