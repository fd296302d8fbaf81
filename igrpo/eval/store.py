"""Graded samples on disk, one JSONL per suite, so a killed evaluation resumes where it stopped.

Each line is one problem's record (``igrpo.eval.suites.grade_chunk``); a chunk's lines are appended and
fsynced as soon as the chunk is graded. A chunk counts as done when all its problems are on disk; a line cut
short by a kill is dropped on open (the file is truncated to its last complete line), so the chunk is
generated again, with the same seed and so the same samples.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from igrpo.eval.suites import Chunk


class SampleStore:
    """``writer=None``: one process writes ``<suite>.jsonl``. With several processes each rank writes its own
    ``<suite>.rank<r>.jsonl`` (``writer="rank<r>"``); reading always merges every file of the suite."""

    def __init__(self, directory: str | Path, writer: str | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.writer = writer
        self._by_suite: dict[str, dict[int, dict]] = {}

    def path(self, suite: str) -> Path:
        return self.dir / (f"{suite}.jsonl" if self.writer is None else f"{suite}.{self.writer}.jsonl")

    def _files(self, suite: str) -> list[Path]:
        return sorted(p for p in self.dir.glob(f"{suite}*.jsonl")
                      if p.name == f"{suite}.jsonl" or (p.name.startswith(f"{suite}.rank") and
                                                        p.name[len(suite) + 5:-6].isdigit()))

    def _records(self, suite: str) -> dict[int, dict]:
        """{problem index: record} of a suite over all its files, read once."""
        if suite not in self._by_suite:
            self._by_suite[suite] = {}
            for path in self._files(suite):
                data = path.read_bytes()
                complete = data[: data.rfind(b"\n") + 1]
                if len(complete) != len(data) and path == self.path(suite):  # a line cut short by a kill
                    with path.open("r+b") as handle:
                        handle.truncate(len(complete))
                for line in complete.decode("utf-8").splitlines():
                    if line.strip():
                        record = json.loads(line)
                        self._by_suite[suite][int(record["index"])] = record
        return self._by_suite[suite]

    def completed(self, chunk: Chunk) -> list[dict] | None:
        """The chunk's records when every one of its problems is on disk, else None."""
        records = self._records(chunk.suite)
        rows = [records.get(i) for i in range(chunk.start, chunk.end)]
        if any(r is None or len(r["correct"]) != chunk.k for r in rows):
            return None
        return rows

    def write(self, chunk: Chunk, records: list[dict]) -> None:
        with self.path(chunk.suite).open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r) + "\n" for r in records))
            handle.flush()
            os.fsync(handle.fileno())
        self._records(chunk.suite).update({int(r["index"]): r for r in records})
