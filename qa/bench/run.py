"""The whole benchmark run: every figure measured side by side in one run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..cards import card_hash
from ..config import Config
from ..embed import load_embedder
from ..questions import question_folder
from .corpus import QuestionFeed, corpus_texts, distinct_questions, scale_corpus
from .floors import (
    bare_cold_start,
    bare_encode_floor,
    encoder_runs,
    reader_runs,
    recall_at_k,
)
from .load import concurrent_clients, first_answer, single_client, sustained
from .report import check_targets, machine, write_results
from .server import build_index_process, start_server

# How long each part runs: (full, quick)
PLAN = {
    "floor_questions": (200, 20),
    "reader_questions": (100, 10),
    "single_questions": (300, 30),
    "concurrent_seconds": (20, 3),
    "sustained_seconds": (60, 6),
    "scale_sentences": (100_000, 3_000),
    "scale_questions": (200, 30),
    "clients": (16, 16),
    # quick runs use HNSW from this size on, so that its recall is measured too
    "scale_hnsw_min": (None, 1_000),
}


def run_bench(
    config: Config,
    quick: bool = False,
    work: Path | None = None,
    echo: Callable[[str], None] = print,
    parts: tuple[str, ...] = ("floor", "reader", "http", "cold", "scale", "sustained"),
    scale_cache: Path | None = None,
    scale_refresh: bool = False,
) -> dict[str, Any]:
    """Run the benchmark and return the results (see "Performance and the benchmark" in
    the README). ``config`` gives the documents, the model and the server's settings."""
    seeds, model = Path(config.seeds_dir), config.model
    threads, embed_threads = config.threads, config.embed_threads
    plan: dict[str, Any] = {name: values[1 if quick else 0] for name, values in PLAN.items()}
    own_work = work is None
    work = Path(work or tempfile.mkdtemp(prefix="qa-bench-"))
    env = dict(os.environ, QA_RATE_LIMIT="0", PYTHONUNBUFFERED="1")
    encoder = question_folder(config)  # None: the embedding model embeds the questions
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "settings": {
            "model": model,
            "backend": config.backend,
            "server_threads": threads,
            "embed_threads": embed_threads,
            "embed_lanes": config.embed_lanes or os.cpu_count(),
            "reader": card_hash(config.reader),
            "questions": card_hash(encoder) if encoder else None,
        },
    }
    try:
        article_seeds = work / "seeds"
        shutil.copytree(seeds, article_seeds, dirs_exist_ok=True)
        feed = QuestionFeed(distinct_questions(corpus_texts(article_seeds)))
        echo("building the index of the article ...")
        results["build"] = build_index_process(article_seeds, work / "index", env)

        if "floor" in parts:
            echo("floor: bare PyTorch encode of one question ...")
            questions = [feed.next() for _ in range(plan["floor_questions"])]
            results["floor"] = bare_encode_floor(model, questions, embed_threads)

        if "reader" in parts:
            echo("the reader's run: the stored weights and the weights as served ...")
            questions = [feed.next() for _ in range(plan["reader_questions"])]
            texts = corpus_texts(article_seeds)
            results["reader"] = reader_runs(Path(config.reader), questions, texts)
            if encoder is not None:
                echo("the question encoder's run: the stored weights and as served ...")
                results["encoder"] = encoder_runs(encoder, model, questions)

        if "cold" in parts:
            echo("cold start: bare import and load ...")
            results["cold_start"] = {"bare_import_load_s": round(bare_cold_start(model, env), 2)}

        echo("starting qa serve ...")
        server = start_server(article_seeds, work / "index", threads, env)
        try:
            cold = first_answer(server, feed.next())
            results.setdefault("cold_start", {})["serve_first_answer_s"] = round(cold, 2)
            if "http" in parts:
                echo("one client ...")
                results["single"] = single_client(server, feed, plan["single_questions"])
                echo(f"{plan['clients']} clients for {plan['concurrent_seconds']} s ...")
                results["concurrent"] = concurrent_clients(
                    server, feed, plan["clients"], plan["concurrent_seconds"]
                )
            if "sustained" in parts:
                echo(f"sustained: {plan['clients']} clients for {plan['sustained_seconds']} s ...")
                results["sustained"] = sustained(
                    server, feed, plan["clients"], plan["sustained_seconds"]
                )
            results["server_memory"] = server.memory()
        finally:
            server.stop()

        if "scale" in parts:
            results["scale"] = run_scale(
                work,
                config,
                env,
                plan,
                echo,
                scale_cache,
                scale_refresh,
                article=(article_seeds, work / "index"),
            )
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    results["targets"] = check_targets(results)
    return results


def _scale_index_current(seeds: Path, index: Path, model: str) -> bool:
    from .. import vectors
    from ..build import EMBEDDING
    from ..index import IndexProblem, read_manifest, stale_reason

    try:
        if not seeds.is_dir() or stale_reason(index, seeds, model, EMBEDDING) is not None:
            return False
        manifest = read_manifest(index)
        assert manifest is not None  # stale_reason found it
        faiss_info = manifest.get("faiss", {})
    except IndexProblem:
        return False
    # an index built with other HNSW settings is rebuilt, so its figures are today's
    return "M" not in faiss_info or (
        faiss_info.get("ef_construction") == vectors.HNSW_EF_CONSTRUCTION
        and faiss_info.get("M") == vectors.HNSW_M
        and faiss_info.get("storage") == vectors.HNSW_STORAGE
    )


def run_scale(
    work: Path,
    config: Config,
    env: dict[str, str],
    plan: dict[str, Any],
    echo: Callable[[str], None],
    cache: Path | None,
    refresh: bool = False,
    article: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Query latency, build figures and recall on a corpus of 100,000+ sentences. With
    ``cache``, the corpus and its index are kept there and reused while they are current
    (the build figures are then those of the run that built it, marked ``cached``)."""
    model, threads = config.model, config.threads
    base = cache or work
    scale_seeds, scale_index = base / "scale-seeds", base / "scale-index"
    record = base / "scale-build.json"
    reuse = cache and not refresh and record.exists()
    if reuse and _scale_index_current(scale_seeds, scale_index, model):
        saved = json.loads(record.read_text())
        corpus, build = saved["corpus"], dict(saved["build"], cached=True)
        echo(f"scale: reusing the index of {corpus['sentences']:,} sentences in {base}")
    else:
        shutil.rmtree(scale_seeds, ignore_errors=True)
        echo(f"scale: writing a corpus of {plan['scale_sentences']:,} sentences ...")
        corpus = scale_corpus(scale_seeds, plan["scale_sentences"])
        echo(f"scale: building the index of {corpus['sentences']:,} sentences ...")
        if plan["scale_hnsw_min"]:
            env = dict(env, QA_HNSW_MIN=str(plan["scale_hnsw_min"]))
        build = build_index_process(scale_seeds, scale_index, env)
        build["built_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_results({"corpus": corpus, "build": build}, record)
        build = dict(build, cached=False)
    # The same questions go to the article's server and to this one, so that the ratio
    # measures the corpus's size alone (longer questions cost more to embed: questions
    # made from each corpus's own words differed by about 1 ms on that count alone).
    feed = distinct_questions(corpus_texts(scale_seeds)[:200], seed=1)
    asked = [next(feed) for _ in range(plan["scale_questions"] + 1)]
    echo("scale: serving it ...")
    server = start_server(scale_seeds, scale_index, threads, env)
    try:
        first_answer(server, asked[0])
        single = single_client(server, QuestionFeed(iter(asked[1:])), len(asked) - 1)
        memory = server.memory()
    finally:
        server.stop()
    same = None
    if article is not None:
        echo("scale: the same questions to the article's server ...")
        server = start_server(*article, threads, env)
        try:
            first_answer(server, asked[0])
            same = single_client(server, QuestionFeed(iter(asked[1:])), len(asked) - 1)
        finally:
            server.stop()
    questions = [next(feed) for _ in range(plan["scale_questions"])]
    recall = recall_at_k(scale_index, questions, load_embedder(config))
    return {
        "corpus": corpus,
        "build": build,
        "single": single,
        "article_same_questions": same,
        "recall": recall,
        "server_memory": memory,
    }
