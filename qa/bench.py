"""The benchmark behind ``qa bench``: the service as users meet it, on this machine.

Every figure is measured in one run, side by side, so that ratios hold even on a shared,
noisy machine: the floor (a bare PyTorch encode of one question), ``/api/ask`` over HTTP
against ``qa serve`` in a subprocess, 16 concurrent clients, cold start, index build, a
corpus of 100,000+ sentences made from the docstrings and comments of the Python
standard library and the installed packages, and a sustained run that watches the
server's memory. Questions are generated from the corpus's own words and never repeated,
so no cache can help.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

TEMPLATES = (
    "What did {a} say about {b}?",
    "When did {a} mention {b}?",
    "Who is {a} in relation to {b}?",
    "How many {b} did {a} have?",
    "Why did {a} talk about {b}?",
    "Where is the {b} of {a}?",
    "What happened to {a} and {b}?",
)
WORD = re.compile(r"\b[A-Za-z][a-z]{3,}\b")
URL = re.compile(r"Serving on (http://\S+)")

# How long each part runs: (full, quick)
PLAN = {
    "floor_questions": (200, 20),
    "single_questions": (300, 30),
    "concurrent_seconds": (20, 3),
    "sustained_seconds": (60, 6),
    "scale_sentences": (100_000, 3_000),
    "scale_questions": (200, 30),
    "clients": (16, 16),
    # quick runs use HNSW from this size on, so that its recall is measured too
    "scale_hnsw_min": (None, 1_000),
}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# --- questions --------------------------------------------------------------------------


def distinct_questions(texts: list[str], seed: int = 0) -> Iterator[str]:
    """Endless distinct questions from templates over the words of ``texts``."""
    words = sorted({w for t in texts for w in WORD.findall(t)})
    if len(words) < 2:
        words = ["alpha", "beta", "gamma", "delta"]
    rng = random.Random(seed)
    seen: set[str] = set()
    misses = 0
    while True:
        q = rng.choice(TEMPLATES).format(a=rng.choice(words), b=rng.choice(words))
        if q in seen:
            misses += 1
            if misses > 10_000:  # a tiny vocabulary: number the questions instead
                q = f"{q} ({len(seen)})"
            else:
                continue
        seen.add(q)
        yield q


def corpus_texts(seeds: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(Path(seeds).rglob("*.txt"))]


class QuestionFeed:
    """A thread-safe stream of distinct questions, shared by all clients."""

    def __init__(self, questions: Iterator[str]):
        self._it = questions
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return next(self._it)


# --- the server -------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    started: float
    output: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        u = urlparse(self.url)
        return u.hostname, u.port

    def memory(self) -> dict:
        """The server's current and peak resident memory in MiB (Linux /proc)."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return {"rss_mib": None, "peak_rss_mib": None}
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        return {
            "rss_mib": round(int(values.get("VmRSS", 0)) / 1024, 1),
            "peak_rss_mib": round(int(values.get("VmHWM", 0)) / 1024, 1),
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch_serve(
    args: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float = 300
) -> tuple[subprocess.Popen, str, list[str]]:
    """Start `qa serve` on 127.0.0.1 and a free port with ``args``; return the process, the
    URL it printed and the list its output keeps being appended to."""
    cmd = [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", "0", *args]
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
        cwd=cwd,
    )
    output: list[str] = []
    found = threading.Event()

    def read() -> None:  # keep draining the pipe so the server never blocks on it
        for line in process.stdout:
            output.append(line)
            if URL.search(line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.01):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError("qa serve did not start:\n" + "".join(output))
    url = next(URL.search(line).group(1) for line in output if URL.search(line))
    return process, url, output


def start_server(seeds: Path, index: Path, threads: int, env: dict, timeout: float = 300) -> Server:
    """`qa serve` on a free port; returns once it prints its URL."""
    started = time.perf_counter()
    args = ["--threads", str(threads), "--seeds", str(seeds), "--index", str(index)]
    process, url, output = launch_serve(args, env=env, timeout=timeout)
    return Server(process, url, started, output)


class Client:
    """One keep-alive HTTP connection that asks questions."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.conn: http.client.HTTPConnection | None = None

    def ask(self, question: str) -> tuple[bool, float]:
        """(answered with 200, seconds)."""
        body = json.dumps({"question": question}).encode()
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(*self.address, timeout=60)
            self.conn.request(
                "POST", "/api/ask", body=body, headers={"Content-Type": "application/json"}
            )
            response = self.conn.getresponse()
            data = response.read()
            ok = response.status == 200 and b'"answer"' in data
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException):
            self.close()
            ok = False
        return ok, time.perf_counter() - started

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def first_answer(server: Server, question: str) -> float:
    """Seconds from starting the server to its first answer."""
    ok, _ = Client(server.address).ask(question)
    if not ok:
        raise RuntimeError("the server's first answer failed:\n" + "".join(server.output))
    return time.perf_counter() - server.started


def single_client(server: Server, feed: QuestionFeed, n: int) -> dict:
    client = Client(server.address)
    latencies, errors = [], 0
    started = time.perf_counter()
    for _ in range(n):
        ok, seconds = client.ask(feed.next())
        latencies.append(seconds)
        errors += not ok
    elapsed = time.perf_counter() - started
    client.close()
    return {
        "questions": n,
        "errors": errors,
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "throughput_qps": round(n / elapsed, 1),
    }


def _client_process(address, questions: list[str], start_at: float, seconds: float, queue):
    client = Client(address)
    results = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    for question in questions:
        if time.time() >= deadline:
            break
        results.append(client.ask(question))
    client.close()
    queue.put(results)


def concurrent_clients(
    server: Server,
    feed: QuestionFeed,
    clients: int,
    seconds: float,
    on_tick: Callable[[float], None] | None = None,
) -> dict:
    """``clients`` client processes (one each, so that no client waits on another's
    interpreter lock and counts that wait as the server's latency) asking distinct
    questions back to back for ``seconds``; ``on_tick(elapsed)`` is called about once a
    second from this process."""
    import multiprocessing

    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    queue = context.Queue()
    per_client = int(seconds * 150) + 50  # more than any client can ask in the time
    start_at = time.time() + 0.5
    processes = [
        context.Process(
            target=_client_process,
            args=(
                server.address,
                [feed.next() for _ in range(per_client)],
                start_at,
                seconds,
                queue,
            ),
            daemon=True,
        )
        for _ in range(clients)
    ]
    for p in processes:
        p.start()
    while time.time() < start_at:
        time.sleep(0.01)
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        time.sleep(min(1.0, seconds - elapsed))
        if on_tick:
            on_tick(time.perf_counter() - started)
    results = [r for _ in processes for r in queue.get(timeout=120)]
    elapsed = max(time.perf_counter() - started, seconds)
    for p in processes:
        p.join(timeout=30)
    latencies = [took for _, took in results]
    errors = sum(not ok for ok, _ in results)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "answered": len(results) - errors,
        "errors": errors,
        "throughput_qps": round((len(results) - errors) / elapsed, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
    }


def sustained(server: Server, feed: QuestionFeed, clients: int, seconds: float) -> dict:
    """A long concurrent run: the server's memory after the first 10% (at most 10 s) and at
    the end; the run passes with zero errors and growth within 10%."""
    mark = min(10.0, seconds / 6)
    samples: dict[str, float | None] = {"early": None}

    def tick(elapsed: float) -> None:
        if samples["early"] is None and elapsed >= mark:
            samples["early"] = server.memory()["rss_mib"]

    result = concurrent_clients(server, feed, clients, seconds, tick)
    end = server.memory()["rss_mib"]
    early = samples["early"] or end
    growth = (end - early) / early if early and end else None
    result.update(
        rss_early_mib=early,
        rss_end_mib=end,
        rss_growth=None if growth is None else round(growth, 4),
        early_mark_s=round(mark, 1),
    )
    return result


# --- floors: bare PyTorch -----------------------------------------------------------------


def bare_encode_floor(model: str, questions: list[str], threads: int) -> dict:
    """Median time of a bare sentence-transformers (PyTorch) encode of one question, with
    the service's embedding threads and with torch's default; the faster is the floor."""
    import torch  # noqa: I001  (after the offline settings that the loader makes)

    from .embed import _load_sentence_transformer

    st = _load_sentence_transformer(model)
    default_threads = torch.get_num_threads()
    result = {}
    for label, n in (("service_threads", threads), ("default_threads", default_threads)):
        torch.set_num_threads(n)
        st.encode(questions[:2])  # warm up
        times = []
        for q in questions:
            started = time.perf_counter()
            st.encode([q], normalize_embeddings=True, show_progress_bar=False)
            times.append(time.perf_counter() - started)
        result[label] = {"threads": n, "median_ms": ms(statistics.median(times))}
    torch.set_num_threads(default_threads)
    result["median_ms"] = min(v["median_ms"] for v in result.values())
    result["questions"] = len(questions)
    return result


BARE_LOAD = """
import os, time
for k, v in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
             ("TOKENIZERS_PARALLELISM", "false"), ("TRANSFORMERS_VERBOSITY", "error")):
    os.environ.setdefault(k, v)
from sentence_transformers import SentenceTransformer
model = SentenceTransformer({path!r}, device="cpu")
model.encode(["How long does a bare start take?"])
"""


def bare_cold_start(model: str, env: dict) -> float:
    """Seconds for a fresh Python to import sentence-transformers, load the model and
    encode one question (the same work a first answer needs)."""
    from .embed import resolve_model

    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", BARE_LOAD.format(path=resolve_model(model))],
        check=True,
        env=env,
        capture_output=True,
    )
    return time.perf_counter() - started


# --- index build ------------------------------------------------------------------------


def build_index_process(seeds: Path, index: Path, env: dict) -> dict:
    """`qa index` in a subprocess: sentences per second and the build's peak memory."""
    from .index import read_manifest

    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "--seeds", str(seeds), "--index", str(index)],
            stdout=log,
            stderr=log,
            env=env,
        )
        # wait4 gives this child's own peak memory (ru_maxrss, KiB on Linux)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if process.returncode:
            log.seek(0)
            raise RuntimeError(f"qa index failed:\n{log.read().decode(errors='replace')}")
    peak = round(usage.ru_maxrss / 1024, 1)
    manifest = read_manifest(index)
    sentences = manifest["counts"]["sentences"]
    seconds = manifest.get("build_seconds") or wall
    return {
        "sentences": sentences,
        "build_seconds": round(seconds, 2),
        "sentences_per_s": round(sentences / seconds, 1) if seconds else None,
        "process_seconds": round(wall, 2),
        "index_kind": manifest.get("faiss", {}).get("kind"),
        "build_peak_rss_mib": peak,
    }


# --- scale corpus -----------------------------------------------------------------------

TRIPLE = re.compile(r'"""(.*?)"""', re.S)
COMMENT = re.compile(r"^[ \t]*#[ \t]?(.*)$", re.M)


def scale_corpus(folder: Path, sentences: int) -> dict:
    """Write at least ``sentences`` sentences of English prose taken from the docstrings
    and comments of this Python's standard library (44,000 sentences in 3.11), then of the
    installed packages, one document a module."""
    from .split import split_sentences

    folder.mkdir(parents=True, exist_ok=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    sources = [(stdlib, p) for p in sorted(stdlib.rglob("*.py")) if "site-packages" not in p.parts]
    if purelib != stdlib:  # the installed packages' docs, when the standard library is short
        sources += [(purelib, p) for p in sorted(purelib.rglob("*.py"))]
    total = files = 0
    for root, path in sources:
        if total >= sentences:
            break
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        paragraphs = [" ".join(s.split()) for s in TRIPLE.findall(source)]
        paragraphs.append(" ".join(" ".join(COMMENT.findall(source)).split()))
        kept = []
        for paragraph in paragraphs:
            # prose only: sentences of 5 to 40 words, as a document of prose would have
            prose = [paragraph[a:b] for a, b in split_sentences(paragraph)]
            prose = [p for p in prose if 5 <= len(p.split()) <= 40 and p[-1:] in ".?!"]
            if prose:
                kept.append(" ".join(prose))
        if not kept:
            continue
        text = "\n\n".join(kept)
        n = len(split_sentences(text))
        name = path.relative_to(root).as_posix().replace("/", "_").removesuffix(".py")
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        total += n
        files += 1
    return {
        "source": "docstrings and comments of the standard library and installed packages",
        "documents": files,
        "sentences": total,
    }


def recall_at_k(index_dir: Path, questions: list[str], model: str, k: int = 10) -> dict:
    """Recall@k of the index's own (possibly approximate) search against exact search over
    the same vectors, through the function the service uses (which asks for POOL
    candidates). A sentence counts as found when its score reaches the exact k-th score:
    near-duplicate sentences tie, and either of two tied sentences is a right answer."""
    import faiss
    import numpy as np

    from .embed import load_embedder
    from .index import load_index
    from .retrieve import POOL, dense_search

    index = load_index(index_dir)
    kind = type(index.vectors).__name__
    exact = faiss.IndexFlatIP(index.vectors.d)
    exact.add(index.vectors.reconstruct_n(0, index.vectors.ntotal))
    queries = load_embedder(model).encode_questions(questions)
    k = min(k, index.vectors.ntotal)
    found = 0
    for q in queries:
        approx = sorted(dense_search(index, q, max(POOL, k)).values(), reverse=True)[:k]
        scores, _ = exact.search(np.asarray(q, dtype=np.float32).reshape(1, -1), k)
        found += sum(s >= scores[0][k - 1] - 1e-5 for s in approx)
    total = len(queries) * k
    return {
        "index_kind": kind,
        "k": k,
        "queries": len(queries),
        "recall": round(found / total, 4) if total else None,
    }


# --- the whole run ----------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def run_bench(
    seeds: Path,
    model: str,
    threads: int,
    embed_threads: int,
    quick: bool = False,
    work: Path | None = None,
    echo: Callable[[str], None] = print,
    parts: tuple[str, ...] = ("floor", "http", "cold", "scale", "sustained"),
    scale_cache: Path | None = None,
    scale_refresh: bool = False,
) -> dict:
    """Run the benchmark and return the results (see docs/README-bench.md)."""
    plan = {name: values[1 if quick else 0] for name, values in PLAN.items()}
    own_work = work is None
    work = Path(work or tempfile.mkdtemp(prefix="qa-bench-"))
    env = dict(os.environ, QA_RATE_LIMIT="0", PYTHONUNBUFFERED="1")
    results: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "settings": {
            "model": model,
            "backend": _config().backend,
            "server_threads": threads,
            "embed_threads": embed_threads,
            "embed_lanes": _config().embed_lanes or os.cpu_count(),
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
                model,
                threads,
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
    from . import index as index_module
    from .index import IndexProblem, stale_reason

    try:
        if not seeds.is_dir() or stale_reason(index, seeds, model) is not None:
            return False
        faiss_info = index_module.read_manifest(index).get("faiss", {})
    except IndexProblem:
        return False
    # an index built with other HNSW settings is rebuilt, so its figures are today's
    return "M" not in faiss_info or (
        faiss_info.get("ef_construction") == index_module.HNSW_EF_CONSTRUCTION
        and faiss_info.get("M") == index_module.HNSW_M
        and faiss_info.get("storage") == index_module.HNSW_STORAGE
    )


def run_scale(
    work: Path,
    model: str,
    threads: int,
    env: dict,
    plan: dict,
    echo,
    cache: Path | None,
    refresh: bool = False,
    article: tuple[Path, Path] | None = None,
) -> dict:
    """Query latency, build figures and recall on a corpus of 100,000+ sentences. With
    ``cache``, the corpus and its index are kept there and reused while they are current
    (the build figures are then those of the run that built it, marked ``cached``)."""
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
    recall = recall_at_k(scale_index, questions, model)
    return {
        "corpus": corpus,
        "build": build,
        "single": single,
        "article_same_questions": same,
        "recall": recall,
        "server_memory": memory,
    }


def check_targets(r: dict) -> dict:
    """Each target of the performance issue: the measured ratio and whether it holds."""
    targets: dict = {}

    def put(name: str, value, limit, ok) -> None:
        targets[name] = {"value": value, "limit": limit, "ok": bool(ok)}

    floor = r.get("floor", {}).get("median_ms")
    single = r.get("single", {})
    if floor and single:
        ratio = round(single["p50_ms"] / floor, 3)
        put("ask_p50_over_floor", ratio, "<= 0.6", ratio <= 0.6)
    conc = r.get("concurrent")
    if conc and single:
        gain = round(conc["throughput_qps"] / single["throughput_qps"], 2)
        put("throughput_16_over_1", gain, ">= 1.5", gain >= 1.5)
        put("errors_16", conc["errors"], "== 0", conc["errors"] == 0)
        p99 = round(conc["p99_ms"] / single["p50_ms"], 2)
        put("p99_16_over_single_p50", p99, "< 10", p99 < 10)
    cold = r.get("cold_start", {})
    if "bare_import_load_s" in cold and "serve_first_answer_s" in cold:
        extra = round(cold["serve_first_answer_s"] - cold["bare_import_load_s"], 2)
        put("cold_start_minus_bare_s", extra, "<= 2", extra <= 2)
    help_s = r.get("help_seconds")
    if help_s is not None:
        put("help_s", help_s, "< 0.5", help_s < 0.5)
    scale = r.get("scale")
    base = (scale or {}).get("article_same_questions") or single
    if scale and base:
        ratio = round(scale["single"]["p50_ms"] / base["p50_ms"], 2)
        put("scale_p50_over_article_p50", ratio, "<= 1.3", ratio <= 1.3)
        recall = scale["recall"]
        if recall["index_kind"] != "IndexFlatIP":
            put("scale_recall_at_10", recall["recall"], ">= 0.98", (recall["recall"] or 0) >= 0.98)
    sus = r.get("sustained")
    if sus:
        put("sustained_errors", sus["errors"], "== 0", sus["errors"] == 0)
        growth = sus["rss_growth"]
        put("sustained_rss_growth", growth, "<= 0.10", growth is not None and growth <= 0.10)
    return targets


def measure_help() -> float:
    """Seconds for `qa --help` in a fresh process (the best of three)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa", "--help"], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def table(r: dict) -> str:
    """The results as a plain-text table: figure, value, target."""
    rows: list[tuple[str, str, str]] = []
    t = r.get("targets", {})

    def mark(name: str) -> str:
        if name not in t:
            return ""
        return f"{t[name]['limit']} {'ok' if t[name]['ok'] else 'MISSED'} ({t[name]['value']})"

    if "floor" in r:
        f = r["floor"]
        rows.append(("floor: bare PyTorch encode, median", f"{f['median_ms']} ms", ""))
    if "single" in r:
        s = r["single"]
        rows.append(("/api/ask 1 client p50", f"{s['p50_ms']} ms", mark("ask_p50_over_floor")))
        rows.append(("/api/ask 1 client p95 / p99", f"{s['p95_ms']} / {s['p99_ms']} ms", ""))
        rows.append(("1 client throughput", f"{s['throughput_qps']} q/s", ""))
    if "concurrent" in r:
        c = r["concurrent"]
        rows.append(
            (
                f"{c['clients']} clients throughput",
                f"{c['throughput_qps']} q/s",
                mark("throughput_16_over_1"),
            )
        )
        rows.append((f"{c['clients']} clients errors", str(c["errors"]), mark("errors_16")))
        rows.append(
            (f"{c['clients']} clients p99", f"{c['p99_ms']} ms", mark("p99_16_over_single_p50"))
        )
    cold = r.get("cold_start", {})
    if cold:
        rows.append(
            (
                "cold start: qa serve to first answer",
                f"{cold.get('serve_first_answer_s')} s",
                mark("cold_start_minus_bare_s"),
            )
        )
        rows.append(
            ("cold start: bare import + load + encode", f"{cold.get('bare_import_load_s')} s", "")
        )
    if "help_seconds" in r:
        rows.append(("qa --help", f"{r['help_seconds']} s", mark("help_s")))
    if "build" in r:
        b = r["build"]
        rows.append(
            (
                "article index build",
                f"{b['sentences']} sentences, {b['sentences_per_s']} sent/s",
                "",
            )
        )
    if "server_memory" in r:
        rows.append(("server peak RSS", f"{r['server_memory']['peak_rss_mib']} MiB", ""))
    if "scale" in r:
        s = r["scale"]
        b = s["build"]
        rows.append(("scale corpus", f"{s['corpus']['sentences']:,} sentences", ""))
        rows.append(
            (
                "scale build",
                f"{b['build_seconds']} s, {b['sentences_per_s']} sent/s, "
                f"peak {b['build_peak_rss_mib']} MiB",
                f"(kept from {b.get('built_at', 'an earlier run')})" if b.get("cached") else "",
            )
        )
        rows.append(("scale index kind", str(b["index_kind"]), ""))
        same = s.get("article_same_questions")
        rows.append(
            (
                "scale /api/ask p50" + (" (article: same questions)" if same else ""),
                f"{s['single']['p50_ms']} ms" + (f" ({same['p50_ms']} ms)" if same else ""),
                mark("scale_p50_over_article_p50"),
            )
        )
        rows.append(
            ("scale recall@10 vs exact", str(s["recall"]["recall"]), mark("scale_recall_at_10"))
        )
        rows.append(("scale server peak RSS", f"{s['server_memory']['peak_rss_mib']} MiB", ""))
    if "sustained" in r:
        s = r["sustained"]
        rows.append(
            (
                f"sustained {s['seconds']} s, {s['clients']} clients",
                f"{s['answered']} answered, {s['errors']} errors",
                mark("sustained_errors"),
            )
        )
        rows.append(
            (
                "sustained RSS early -> end",
                f"{s['rss_early_mib']} -> {s['rss_end_mib']} MiB",
                mark("sustained_rss_growth"),
            )
        )
    width = max((len(a) for a, _, _ in rows), default=10)
    vwidth = max((len(b) for _, b, _ in rows), default=10)
    lines = [f"{'figure':<{width}}  {'value':<{vwidth}}  target", "-" * (width + vwidth + 30)]
    lines += [f"{a:<{width}}  {b:<{vwidth}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def write_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _config():
    from .config import Config

    return Config.load()
