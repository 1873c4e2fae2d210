"""The benchmark's pieces on a tiny corpus: the structure of what it reports, never its
timings (the machine is shared and noisy)."""

from __future__ import annotations

import itertools
import json
import os

import pytest
from click.testing import CliRunner

from qa import bench
from qa.bench import corpus, load, run
from qa.cli import cli
from qa.config import Config

TINY = (
    "The harbour of Lindqvist opened in 1874. Its first keeper was Mara Olsen, who kept a "
    "diary for forty years. The diary records 212 ships and three storms. In 1901 a new "
    "lighthouse replaced the old lamp. Olsen said the new light could be seen from the "
    "island of Brask. The harbour closed in 1968, when the railway took its trade.\n"
)


def test_percentile():
    assert load.percentile([], 50) == 0.0
    assert load.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert load.percentile([1.0, 2.0], 100) == 2.0


def test_distinct_questions_never_repeat():
    questions = list(itertools.islice(corpus.distinct_questions([TINY]), 2000))
    assert len(set(questions)) == len(questions)
    assert all(q.endswith("?") or q.endswith(")") for q in questions)


def test_scale_corpus_writes_prose(tmp_path):
    info = corpus.scale_corpus(tmp_path / "corpus", 300)
    assert info["sentences"] >= 300
    assert info["documents"] == len(list((tmp_path / "corpus").glob("*.txt")))


@pytest.fixture
def tiny_plan(monkeypatch):
    plan = {
        "floor_questions": (3, 3),
        "single_questions": (5, 5),
        "concurrent_seconds": (1, 1),
        "sustained_seconds": (1.2, 1.2),
        "scale_sentences": (400, 400),
        "scale_questions": (5, 5),
        "clients": (4, 4),
        "scale_hnsw_min": (100, 100),
    }
    monkeypatch.setattr(run, "PLAN", plan)


def test_run_bench_reports_every_part(tmp_path, tiny_plan):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "harbour.txt").write_text(TINY, encoding="utf-8")
    results = bench.run_bench(
        Config(seeds_dir=seeds, threads=4, embed_threads=1),
        quick=True,
        work=tmp_path / "work",
        echo=lambda m: None,
        parts=("http", "scale", "sustained"),
    )
    for key in ("p50_ms", "p95_ms", "p99_ms", "throughput_qps", "errors"):
        assert key in results["single"]
    assert results["single"]["errors"] == 0
    assert {"clients", "throughput_qps", "errors", "p99_ms"} <= set(results["concurrent"])
    assert results["cold_start"]["serve_first_answer_s"] > 0
    assert results["build"]["sentences"] == 6
    assert results["build"]["index_kind"] == "IndexFlatIP"
    scale = results["scale"]
    assert scale["build"]["index_kind"] == "IndexRefineFlat"  # HNSW on 8-bit codes, rescored
    assert 0 <= scale["recall"]["recall"] <= 1
    # the ratio compares the same questions on both corpora
    same = scale["article_same_questions"]
    assert same["questions"] == scale["single"]["questions"] and same["errors"] == 0
    ratio = results["targets"]["scale_p50_over_article_p50"]["value"]
    assert ratio == round(scale["single"]["p50_ms"] / same["p50_ms"], 2)
    assert {"rss_early_mib", "rss_end_mib", "rss_growth", "errors"} <= set(results["sustained"])
    for target in results["targets"].values():
        assert set(target) == {"value", "limit", "ok"}
    assert "scale_recall_at_10" in results["targets"]

    text = bench.table(results)
    assert "/api/ask 1 client p50" in text and "scale recall@10" in text
    out = tmp_path / "bench" / "results.json"
    bench.write_results(results, out)
    assert json.loads(out.read_text())["single"] == results["single"]


def test_bench_command_help():
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    assert "--quick" in result.output


def test_the_bench_times_the_readers_run_as_stored_and_as_served():
    """The reader's own run, the stored uint8 weights against the weights as this CPU
    serves them: both timed only where they differ (int8, VNNI), and the table says which."""
    from qa.bench.floors import reader_runs
    from qa.config import DEFAULT_READER
    from qa.onnxgraph import exact_signed_products

    texts = [TINY]
    questions = list(itertools.islice(corpus.distinct_questions(texts), 4))
    r = reader_runs(DEFAULT_READER, questions, texts)
    assert r["rows"] == 3 and r["questions"] == 4
    runs = [v for k, v in r.items() if k.endswith("_threads")]
    assert runs and all(v["file_ms"] > 0 for v in runs)
    served = all("served_ms" in v for v in runs)
    assert served == (r["served"] == "int8 weights")
    if not exact_signed_products():
        assert not served  # AVX2 without VNNI: the file, as stored
    text = bench.table({"reader": r})
    assert "reader runs, 3 rows, a run each, as stored (uint8)" in text and r["served"] in text


def test_the_bench_times_the_question_encoders_run_as_stored_and_as_served():
    """The question encoder's own run, one question a run, likewise: the stored uint8
    weights, and the int8 ones only where this CPU serves them; the table says which."""
    from qa.bench.floors import encoder_runs
    from qa.config import DEFAULT_MODEL, DEFAULT_QUESTIONS
    from qa.onnxgraph import exact_signed_products

    questions = list(itertools.islice(corpus.distinct_questions([TINY]), 4))
    r = encoder_runs(DEFAULT_QUESTIONS, DEFAULT_MODEL, questions)
    assert r["questions"] == 4
    runs = [v for k, v in r.items() if k.endswith("_threads")]
    assert len(runs) == len({1, os.cpu_count() or 1}) and all(v["file_ms"] > 0 for v in runs)
    served = [v["served_ms"] for v in runs if "served_ms" in v]
    assert len(served) in (0, len(runs)) and all(t > 0 for t in served)
    assert (r["served"] == "int8 weights") == bool(served)
    if not exact_signed_products():
        assert not served and r["served"] == "the file's uint8 weights"
    text = bench.table({"encoder": r})
    assert "question encoder run, as stored (uint8)" in text
    assert "question encoder weights served" in text and r["served"] in text
