"""The evaluation's chunks (igrpo.eval.suites): each chunk samples from its own seed, so a suite's samples do not
depend on which suites or chunks ran before it; the sample store keeps whole lines only."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from igrpo.eval.backends import HFBackend
from igrpo.eval.store import SampleStore
from igrpo.eval.suites import Chunk, plan_chunks, run_chunks
from igrpo.tasks.arith import build_arith_task


@pytest.fixture(scope="module")
def setup():
    from igrpo.models.tiny import build_char_tokenizer, build_tiny_model

    tok = build_char_tokenizer()
    model = build_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_positions=256, seed=0)
    task = build_arith_task(["easy"], ["easy", "hard"], train_size=4, eval_size=5, seed=0)
    eval_cfg = OmegaConf.create({"samples_per_problem": 2, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12,
                                 "batch_size": 4, "greedy": True, "verifier": "exact", "suites": {}})
    return HFBackend(model, tok), task, eval_cfg


def test_chunks_cover_each_suite_in_order(setup):
    _, task, eval_cfg = setup
    assert plan_chunks(task, eval_cfg, ["easy", "hard"]) == [
        Chunk("easy", 0, 2, 2), Chunk("easy", 2, 4, 2), Chunk("easy", 4, 5, 2),
        Chunk("hard", 0, 2, 2), Chunk("hard", 2, 4, 2), Chunk("hard", 4, 5, 2)]
    assert Chunk("easy", 0, 2, 2).seed(0) != Chunk("easy", 2, 4, 2).seed(0) != Chunk("easy", 2, 4, 2).seed(1)


def test_a_suites_samples_do_not_depend_on_the_other_suites(setup):
    backend, task, eval_cfg = setup
    both = run_chunks(backend, task, eval_cfg, seed=0)
    hard_only = run_chunks(backend, task, eval_cfg, seed=0, names=["hard"])
    assert [r["completion"] for r in both.records["hard"]] == [r["completion"] for r in hard_only.records["hard"]]
    assert len({r["completion"] for r in both.records["hard"]}) > 1
    other_seed = run_chunks(backend, task, eval_cfg, seed=1, names=["hard"])
    assert [r["completion"] for r in other_seed.records["hard"]] != [r["completion"]
                                                                      for r in hard_only.records["hard"]]


def test_store_resumes_from_whole_chunks_and_drops_a_cut_line(setup, tmp_path):
    backend, task, eval_cfg = setup
    first = run_chunks(backend, task, eval_cfg, seed=0, names=["easy"], store=SampleStore(tmp_path))
    assert (first.reused, first.generated) == (0, 5)
    path = tmp_path / "easy.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][:10])  # killed while writing problem 3 (chunk 2:4)
    again = run_chunks(backend, task, eval_cfg, seed=0, names=["easy"], store=SampleStore(tmp_path))
    assert (again.reused, again.generated) == (2, 3)  # chunk 0:2 kept; chunk 2:4 (half on disk) and 4:5 redone
    assert again.metrics == first.metrics
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [0, 1, 2, 2, 3, 4]


def test_ranks_share_the_chunks_and_the_merged_store_gives_the_single_process_numbers(setup, tmp_path):
    backend, task, eval_cfg = setup
    alone = run_chunks(backend, task, eval_cfg, seed=0)
    for rank in (0, 1):  # what two processes of `accelerate launch python -m igrpo.eval` each do
        share = run_chunks(backend, task, eval_cfg, seed=0, store=SampleStore(tmp_path, writer=f"rank{rank}"),
                           shard=(rank, 2))
        assert share.generated == 5 and share.metrics == {}  # chunks 0, 2, 4 and 1, 3, 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["easy.rank0.jsonl", "easy.rank1.jsonl",
                                                          "hard.rank0.jsonl", "hard.rank1.jsonl"]
    merged = run_chunks(None, task, eval_cfg, seed=0, store=SampleStore(tmp_path))
    assert merged.metrics == alone.metrics and merged.reused == 10 and merged.generated == 0
    assert [r["completion"] for r in merged.records["hard"]] == [r["completion"] for r in alone.records["hard"]]


def test_a_suite_backend_gets_each_suites_pending_chunks_in_one_call():
    from igrpo.eval.suites import generation_calls

    chunks = [Chunk("a", 0, 4, 8), Chunk("a", 4, 8, 8), Chunk("b", 0, 4, 8), Chunk("a", 8, 9, 8)]
    assert generation_calls(chunks, "chunk") == [[c] for c in chunks]
    assert generation_calls(chunks, "suite") == [[chunks[0], chunks[1], chunks[3]], [chunks[2]]]
    assert generation_calls([], "suite") == []


def test_per_sample_seeds_are_distinct_stable_and_independent_of_chunking():
    from igrpo.eval.suites import sample_seed

    whole = Chunk("aime", 0, 4, 8).sample_seeds(7)
    halves = Chunk("aime", 0, 2, 8).sample_seeds(7) + Chunk("aime", 2, 4, 8).sample_seeds(7)
    assert whole == halves  # a sample's seed names its problem and index, not its chunk
    flat = [s for row in whole for s in row]
    assert len(set(flat)) == len(flat)  # no two samples share noise, across problems or within one
    assert whole[1][0] == sample_seed(7, "aime", 1, 0) != sample_seed(8, "aime", 1, 0) != sample_seed(7, "amc", 1, 0)
    assert all(0 <= s < 2**31 for s in flat)  # vLLM's per-request seed range
