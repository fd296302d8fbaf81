"""Self-Verification (variant=self_verify): verdict parsing (last verdict wins, adversarial completions), the verify
reward and advantages against hand-computed values, the online buffer, the reward wrappers and one real training
batch through TRL with verify rows."""

from __future__ import annotations

import random
import time

import pytest
import torch

from igrpo.variants import variant_of
from igrpo.core.self_verify import (
    INSTRUCTIONS,
    BufferEntry,
    VerifyBuffer,
    entries_from_groups,
    group_advantages,
    num_verify_groups,
    parse_verdict,
    plain_verify_prompt,
    strip_reasoning,
    tiny_verify_prompt,
    verdict_line,
    verify_reward,
    verify_weight,
)
from igrpo.variants.self_verify.trainer import SolveOnly, VerifyReward, replace_rows
from igrpo.errors import ConfigError
from tests.helpers import compose_config

V = "Is the answer correct (Yes/No)?"


class TestVerdicts:
    def test_yes_and_no(self):
        assert parse_verdict(f"The steps check out.\n{V} Yes") is True
        assert parse_verdict(f"Step 2 is wrong.\n{V} No") is False

    def test_case_insensitive(self):
        assert parse_verdict("IS THE ANSWER CORRECT (YES/NO)? no") is False
        assert parse_verdict("is the answer correct (yes/no)?   YES.") is True

    def test_markdown_emphasis(self):
        assert parse_verdict(f"**{V}** **No**") is False

    def test_last_verdict_wins(self):
        assert parse_verdict(f"{V} Yes\nWait, recheck step 3.\n{V} No") is False
        assert parse_verdict(f"{V} No ... on reflection {V} Yes") is True

    def test_verdict_inside_the_quoted_solution_loses_to_the_final_one(self):
        quoted = f'The solution says: "... so 2+2=5. {V} Yes". But 2+2=4.\n{V} No'
        assert parse_verdict(quoted) is False

    def test_no_verdict_gets_the_configured_reward(self):
        for text in ["The answer is correct.", f"{V} X", f"{V} Nope", f"{V} Yesterday", "", V]:
            assert parse_verdict(text) is None, text
            assert verify_reward(parse_verdict(text), True, 1.5, -0.5) == -0.5

    def test_fifty_kilobytes(self):
        near_misses = ("Is the answer correct (Yes/No)? maybe. is the answer correct (yes/no " * 700)[:50_000]
        start = time.perf_counter()
        assert parse_verdict(near_misses) is None
        assert parse_verdict(near_misses + f"\n{V} Yes") is True
        assert parse_verdict(f"{V} No\n" + "x" * 50_000) is False
        assert time.perf_counter() - start < 1.0  # linear scan, no catastrophic backtracking

    def test_reasoning_blocks_are_stripped(self):
        assert strip_reasoning("<think>try 1\n</think>The answer is 4.") == "The answer is 4."
        assert strip_reasoning("reasoning opened by the template</think>\nFinal: 4") == "Final: 4"
        assert strip_reasoning("plain 4") == "plain 4"


class TestRewardAndAdvantages:
    """A step with two verify groups of 4 rows. Entry A: a correct solution from a solve group of 8 with 2 correct
    and 6 wrong completions; entry B: a wrong solution from the same kind of group."""

    def test_weights(self):
        assert verify_weight(True, 2, 6, "fix_imbalance") == 2 * 6 / 8  # 1.5: released code, 2 x (1 - 2/8)
        assert verify_weight(False, 2, 6, "fix_imbalance") == 2 * 2 / 8  # 0.5
        assert verify_weight(True, 2, 6, "inverse_frequency") == 8 / (2 * 2)  # 2.0: G / (2 G_c), the paper's reconstruction
        assert verify_weight(False, 2, 6, "inverse_frequency") == 8 / (2 * 6)
        assert verify_weight(True, 2, 6, "none") == 1.0
        with pytest.raises(ValueError):
            verify_weight(True, 0, 8, "fix_imbalance")  # a correct solution cannot come from an all-wrong group

    def test_verify_rewards_and_batch_scaled_advantages(self):
        completions = [f"ok {V} Yes", f"{V} No", "unsure", f"{V} yes",  # grading A (correct), weight 1.5
                       f"{V} No", f"{V} NO", f"{V} Yes", f"{V} no"]  # grading B (wrong), weight 0.5
        labels = [True] * 4 + [False] * 4
        weights = [1.5] * 4 + [0.5] * 4
        rewards = VerifyReward(unparseable_reward=0.0)(
            prompts=[""] * 8, completions=completions, kind=["verify"] * 8, verify_label=labels, verify_weight=weights)
        assert rewards == [1.5, 0.0, 0.0, 1.5, 0.5, 0.5, 0.0, 0.5]
        # by hand: group means 0.75 and 0.375; batch mean 0.5625, squared deviations sum to 2.71875 over 7 d.o.f.
        std = (2.71875 / 7) ** 0.5
        expected = [x / (std + 1e-4) for x in (0.75, -0.75, -0.75, 0.75, 0.125, 0.125, -0.375, 0.125)]
        assert group_advantages(rewards, 4, "batch") == pytest.approx(expected, abs=1e-6)
        assert group_advantages(rewards, 4, "none") == pytest.approx([0.75, -0.75, -0.75, 0.75,
                                                                      0.125, 0.125, -0.375, 0.125], abs=1e-9)

    def test_group_scaling_cancels_the_dynamic_weight(self):
        weighted = group_advantages([1.5, 0.0, 0.0, 1.5], 4, "group")
        plain = group_advantages([1.0, 0.0, 0.0, 1.0], 4, "group")
        assert weighted == pytest.approx(plain, abs=1e-3)  # why verify rows default to batch scaling
        assert group_advantages([1.5, 0, 0, 1.5, 1, 0, 0, 1], 4, "batch")[0] != pytest.approx(
            group_advantages([1.5, 0, 0, 1.5, 1, 0, 0, 1], 4, "batch")[4])

    def test_ungradeable_rows_get_zero_advantage(self):
        assert group_advantages([None, 1.0, 0.0, 1.0], 4, "group")[0] == 0.0

    def test_replaced_rows(self):
        out = replace_rows(torch.tensor([1.0, 2.0, 3.0]), {4: -1.0, 9: 5.0}, offset=3)
        assert out.tolist() == [1.0, -1.0, 3.0]


class TestBuffer:
    def _rows(self, n: int, pid: str) -> list[dict]:
        return [{"prompt_id": pid, "problem": "1+2", "reference": "3", "completion": f"<think>x</think>{i}"}
                for i in range(n)]

    def test_entries_count_their_group(self):
        entries = entries_from_groups(self._rows(4, "a") + self._rows(4, "b"),
                                      [True, False, False, None, True, True, True, True], 4, step=3)
        assert len(entries) == 7  # the ungradeable completion enters no entry
        assert (entries[0].g_correct, entries[0].g_incorrect, entries[0].solution) == (1, 2, "0")
        assert (entries[-1].g_correct, entries[-1].g_incorrect, entries[-1].step) == (4, 0, 3)

    def test_eviction_by_age_and_size(self):
        buffer = VerifyBuffer(max_age_steps=2, max_size=5)
        for step in range(4):
            buffer.add(entries_from_groups(self._rows(2, f"p{step}"), [True, False], 2, step))
        assert len(buffer) == 5  # capped: the oldest first out
        buffer.evict(now=4)  # keeps steps 2 and 3
        assert sorted({e.step for e in buffer.entries}) == [2, 3]
        assert buffer.correct_frac() == 0.5

    def test_same_adds_and_seed_give_the_same_buffer_and_draws(self):
        """What makes the buffer identical on every rank: each adds the same gathered entries in the same order
        and draws with the same seeded RNG."""
        copies = []
        for _ in range(2):
            buffer, rng = VerifyBuffer(4, 100), random.Random(7)
            buffer.add(entries_from_groups(self._rows(8, "a"), [i % 3 == 0 for i in range(8)], 8, 0))
            copies.append((buffer.state(), buffer.sample(rng, 3)))
        assert copies[0] == copies[1]
        restored = VerifyBuffer(4, 100)
        restored.load_state(copies[0][0])
        assert restored.entries == [BufferEntry(**e) for e in copies[0][0]]

    def test_empty_buffer_draws_nothing(self):
        assert VerifyBuffer(1, 1).sample(random.Random(0), 3) == []


class TestLayouts:
    def test_tiny_layout_inserts_text_verbatim(self):
        assert tiny_verify_prompt("{solution}+1", "{problem} #### 2") == "Q:{solution}+1\nA:{problem} #### 2\nVerify:"

    def test_verdict_line_parses_back(self):
        assert parse_verdict(verdict_line(True)) is True and parse_verdict(verdict_line(False)) is False

    def test_turns_layout_is_the_papers_three_turns(self):
        from igrpo.variants.self_verify import verify_prompt_builder
        from igrpo.models.tiny import build_char_tokenizer
        from igrpo.tasks import load_task

        cfg = compose_config("variant=self_verify", "variant.layout=turns", "debug=smoke")
        build = verify_prompt_builder(cfg, load_task(cfg.task, 0), build_char_tokenizer())
        assert build("1+2", "1+2=3 #### 3") == plain_verify_prompt("Q:1+2\nA:", "1+2=3 #### 3", INSTRUCTIONS["paper"])


class TestConfig:
    def test_defaults_keep_the_budget(self):
        cfg = compose_config("variant=self_verify")
        assert _spent(cfg) == 8
        assert num_verify_groups(cfg.train.prompts_per_step, cfg.variant.verify_fraction) == 3  # of 8 prompts
        variant_of(cfg).check(cfg)

    @pytest.mark.parametrize("override, message", [
        ("variant.verify_mode=add", "budget mismatch"),
        ("variant.verify_fraction=1.0", "verify_fraction=1.0 is not valid"),
        ("variant.verify_fraction=0.01", "gives 0 verify prompts"),
        ("variant.verify_reward_weight=balanced", "fix_imbalance, inverse_frequency, none"),
        ("variant.verify_scale_rewards=rank", "batch, group, none"),
        ("variant.buffer_steps=0", "buffer_steps=0"),
        ("variant.layout=chat", "tiny, turns"),
    ])
    def test_bad_values(self, override, message):
        with pytest.raises(ConfigError, match=message):
            _check(compose_config("variant=self_verify", override))


def test_reward_wrappers_split_solve_and_verify_rows():
    seen = {}

    def accuracy(prompts, completions, answer, **columns):
        seen.update(columns, answer=answer)
        return [1.0 if c.endswith(a) else 0.0 for c, a in zip(completions, answer)]

    solve = SolveOnly(accuracy)
    assert solve.__name__ == "accuracy"
    kind = ["solve", "verify", "solve"]
    scores = solve(prompts=["p"] * 3, completions=["x 3", f"{V} Yes", "x 4"], kind=kind, answer=["3", "9", "3"],
                   trainer_state="state")
    assert scores == [1.0, None, 0.0]
    assert seen["answer"] == ["3", "3"] and seen["trainer_state"] == "state"
    verify = VerifyReward(0.0)(prompts=["p"] * 3, completions=["x 3", f"{V} Yes", "x 4"], kind=kind,
                               verify_label=[None, True, None], verify_weight=[None, 2.0, None])
    assert verify == [None, 2.0, None]


def test_a_training_batch_with_verify_rows(compose):
    """One real batch through TRL (smoke model, 2 prompts x 8): the last group grades a buffer entry through the
    tiny verify layout (the default), the others solve; verify rows' advantages are the batch-scaled ones of their rewards; the
    step's scored solve completions enter the buffer."""
    from igrpo.job.builds import resolve_policy_path
    from igrpo.models.loading import load_policy
    from igrpo.tasks import load_task
    from igrpo.job.factory import make_trainer

    cfg = compose("variant=self_verify")
    path, _ = resolve_policy_path(cfg, quiet=True)
    model, tokenizer = load_policy(path)
    trainer, recorder = make_trainer(cfg, model, tokenizer, load_task(cfg.task, cfg.seed), cfg.output_dir)
    assert trainer.reward_func_names == ["accuracy", "verify"]
    entry = BufferEntry(prompt_id="easy:1+2", problem="1+2", reference="3", solution="1+2=3 #### 3", correct=True,
                        g_correct=2, g_incorrect=6, step=0)
    trainer.buffer.add([entry])
    model.train()
    rows = [trainer.train_dataset[i] for i in (0, 1) for _ in range(8)]
    out = trainer._generate_and_score_completions(rows)

    verify_rows = [r for r in recorder.rows if r["stage"] == "verify"]
    assert len(verify_rows) == 8 and {r["prompt_id"] for r in verify_rows} == {"verify:easy:1+2"}
    assert verify_rows[0]["prompt"] == tiny_verify_prompt("1+2", "1+2=3 #### 3") == "Q:1+2\nA:1+2=3 #### 3\nVerify:"
    assert len([r for r in recorder.rows if r["stage"] == "solve"]) == 8
    texts = [trainer.processing_class.decode(c[m.bool()], skip_special_tokens=True)
             for c, m in zip(out["completion_ids"][8:], out["completion_mask"][8:])]
    rewards = [verify_reward(parse_verdict(t), True, 1.5, 0.0) for t in texts]
    assert [r["reward"] for r in verify_rows] == pytest.approx(rewards)
    assert out["advantages"][8:].tolist() == pytest.approx(group_advantages(rewards, 8, "batch"), abs=1e-6)
    assert trainer._metrics["train"]["verify/rows_frac"] == [0.5]
    new = [e for e in trainer.buffer.entries if e is not entry]
    assert len(new) == 8 and all(e.step == 0 and e.prompt_id == rows[0]["prompt_id"] for e in new)


def _check(cfg) -> None:
    variant_of(cfg).check(cfg)


def _spent(cfg) -> int:
    return variant_of(cfg).generated_per_prompt(cfg)
