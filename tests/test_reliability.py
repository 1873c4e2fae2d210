"""Reliability: an index rebuilt while serving is picked up (no failed request, no mixed
answer), a damaged index is never served (a running server keeps its last good one and
says so in /api/health; a starting one refuses), and unusable documents are skipped."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import build
from jsonschema import Draft202012Validator

from qa.build import EMBEDDING
from qa.cli import cli
from qa.config import Config
from qa.engine import Engine, load_snapshot
from qa.index import IndexProblem, load_index
from web.app import create_app

# Made-up documents, so the answers can only come from one or the other.
OLD_TEXT = (
    "The Lantern Society meets every Tuesday in the old mill. "
    "Its founder was Maren Tolbeck, a clockmaker from the valley. "
    "The society keeps forty-two brass lanterns in a locked cellar.\n"
)
NEW_TEXT = (
    "The Lantern Society now meets every Friday in the harbour library. "
    "Its chair is Osric Vell, a glassblower who moved from the coast. "
    "The society keeps ninety copper lanterns on open shelves.\n"
)
DOC = "society.txt"
DAMAGES = [
    "manifest_not_json",
    "manifest_lacks_fields",
    "faiss_truncated",
    "faiss_overwritten",
    "sentences_missing",
    "dimension_mismatch",
    "counts_not_numbers",
    "model_not_an_object",
    "format_version_a_string",
    "file_name_null",
]


def damage_index(index_dir, kind: str) -> str:
    """Damage the index in ``index_dir``; returns a piece of the expected message."""
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    files = manifest["files"]
    if kind == "manifest_not_json":
        path.write_text("{not json", encoding="utf-8")
        return "manifest.json is not valid JSON"
    if kind == "manifest_lacks_fields":
        path.write_text(json.dumps({"format_version": 1}))
        return "manifest.json lacks model"
    if kind == "faiss_truncated":
        vectors = index_dir / files["vectors"]["name"]
        vectors.write_bytes(vectors.read_bytes()[:100])
        return f"{files['vectors']['name']} is damaged"
    if kind == "faiss_overwritten":
        vectors = index_dir / files["vectors"]["name"]
        vectors.write_bytes(os.urandom(vectors.stat().st_size))
        return f"{files['vectors']['name']} is damaged"
    if kind == "sentences_missing":
        (index_dir / files["sentences"]["name"]).unlink()
        return f"{files['sentences']['name']} is missing"
    # a manifest edited by hand: valid JSON, its own checksum unchecked, a field of a wrong type
    if kind in ("counts_not_numbers", "model_not_an_object", "format_version_a_string"):
        field, value = {
            "counts_not_numbers": ("counts", "x"),
            "model_not_an_object": ("model", "x"),
            "format_version_a_string": ("format_version", "1"),
        }[kind]
        manifest[field] = value
        path.write_text(json.dumps(manifest))
        if kind == "format_version_a_string":
            return 'has format version "1", this qa reads 1'
        return f"manifest.json is ill-formed ({field}: "
    if kind == "file_name_null":
        files["vectors"]["name"] = None
        path.write_text(json.dumps(manifest))
        return "ill-formed (files: no name and checksum of the vectors file)"
    if kind == "dimension_mismatch":
        manifest["model"]["dimension"] = 512
        path.write_text(json.dumps(manifest))
        return "of dimension 384 for"
    raise ValueError(kind)


def citation_texts(answer: dict) -> list[str]:
    return [c["text"] for c in answer["citations"]]


@pytest.fixture
def served(tmp_path, embedder):
    """An engine and a test client over an index of OLD_TEXT in tmp_path."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / DOC).write_text(OLD_TEXT, encoding="utf-8")
    config = Config.load(seeds_dir=seeds, index_dir=tmp_path / "index")
    engine = Engine(config, notify=lambda m: None)
    yield engine, create_app(engine=engine).test_client()
    engine.close()


@pytest.fixture(scope="module")
def health_schema(engine):
    spec = create_app(engine=engine).test_client().get("/openapi.json").get_json()
    content = spec["paths"]["/api/health"]["get"]["responses"]["200"]["content"]
    return Draft202012Validator(
        {"components": spec["components"], **content["application/json"]["schema"]}
    )


def rebuild(engine, embedder, text: str):
    (engine.config.seeds_dir / DOC).write_text(text, encoding="utf-8")
    return build(engine.config.seeds_dir, engine.config.index_dir, embedder)


# --- rebuilding while serving (in process) ------------------------------------------------


def test_a_rebuilt_index_is_swapped_in_and_logged(served, embedder, caplog):
    engine, client = served
    old = engine.index.version
    assert engine.check_for_update() is False  # nothing changed
    rebuild(engine, embedder, NEW_TEXT)
    with caplog.at_level(logging.INFO, logger="qa.engine"):
        assert engine.check_for_update() is True
    assert engine.index.version != old and engine.problem is None
    assert f"{old} -> {engine.index.version}" in caplog.text
    health = client.get("/api/health").get_json()
    assert health["status"] == "ok" and health["index_version"] == engine.index.version
    r = client.post("/api/ask", json={"question": "Who is the chair of the society?"})
    answer = r.get_json()
    assert answer["index_version"] == engine.index.version
    assert all(t in NEW_TEXT for t in citation_texts(answer))
    assert "Osric Vell" in citation_texts(answer)[0]
    doc = client.get(f"/api/documents/{DOC}").get_json()
    first = doc["sentences"][0]
    assert doc["text"] == NEW_TEXT and NEW_TEXT[first["start"] : first["end"]].startswith("The")


def test_the_watcher_thread_notices_a_rebuild_within_seconds(served, embedder):
    engine, _ = served
    old = engine.index.version
    engine.watch(interval=0.1)
    rebuild(engine, embedder, NEW_TEXT)
    deadline = time.monotonic() + 5
    while engine.index.version == old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.index.version != old


def test_an_index_copied_in_file_by_file_manifest_first_is_picked_up(
    served, embedder, tmp_path, monkeypatch
):
    """A copy that brings the manifest before the data files it names (``cp B/* A/`` does,
    in the order of their names): unusable at first, served once its files are there."""
    engine, _ = served
    seeds = tmp_path / "other-seeds"
    seeds.mkdir()
    (seeds / DOC).write_text(NEW_TEXT, encoding="utf-8")
    other = tmp_path / "other-index"
    new = build(seeds, other, embedder).version
    shutil.copy(other / "manifest.json", engine.config.index_dir / "manifest.json")
    loads = count_loads(monkeypatch)
    assert engine.check_for_update() is False and engine.problem is None  # still arriving?
    assert engine.check_for_update() is False  # it stopped changing: loaded, and refused
    assert "missing" in engine.problem and len(loads) == 1
    assert engine.check_for_update() is False and len(loads) == 1  # nothing more arrived
    for f in sorted(other.iterdir()):
        if f.name != "manifest.json":
            shutil.copy(f, engine.config.index_dir / f.name)
    assert engine.check_for_update() is True  # complete: loaded at once
    assert engine.index.version == new and engine.problem is None


def count_loads(monkeypatch) -> list[str]:
    """The index folders the engine loads from now on."""
    import qa.engine

    real, loads = qa.engine.load_snapshot, []

    def counted(index_dir, embedder):
        loads.append(str(index_dir))
        return real(index_dir, embedder)

    monkeypatch.setattr(qa.engine, "load_snapshot", counted)
    return loads


def test_a_copy_still_arriving_is_not_loaded_at_each_look(served, embedder, monkeypatch):
    """A data file growing between looks (a large index being copied in) is waited for,
    not read and hashed in full every second."""
    engine, _ = served
    vectors = engine.config.index_dir / engine.index.manifest["files"]["vectors"]["name"]
    whole = vectors.read_bytes()
    loads = count_loads(monkeypatch)
    for size in (100, 1000, 3000):
        vectors.write_bytes(whole[:size])
        assert engine.check_for_update() is False
    assert loads == [] and engine.problem is None
    vectors.write_bytes(whole)
    assert engine.check_for_update() is False  # the same index, whole again
    assert engine.problem is None and len(loads) <= 1


def test_a_build_that_lands_while_an_index_loads_is_loaded_next(served, embedder, monkeypatch):
    import qa.engine

    engine, _ = served
    real = qa.engine.load_snapshot
    landed = []

    def load_while_another_build_lands(index_dir, embedder_):
        snapshot = real(index_dir, embedder_)
        if not landed:
            landed.append(rebuild(engine, embedder, NEW_TEXT.replace("ninety", "eighty")))
        return snapshot

    monkeypatch.setattr(qa.engine, "load_snapshot", load_while_another_build_lands)
    second = rebuild(engine, embedder, NEW_TEXT).version
    assert engine.check_for_update() is True and engine.index.version == second
    assert engine.check_for_update() is True  # the build that landed meanwhile
    assert engine.index.version == landed[0].version != second
    assert engine.check_for_update() is False


def test_a_manifest_rewritten_in_place_during_a_load_costs_one_more_load(
    served, embedder, tmp_path, monkeypatch
):
    """Rewritten in place while the one before loads, with the same inode, size and mtime
    (coarse timestamps, or a tool that keeps them): the watch reads the manifest's bytes,
    so it loads the new one once, then rests (a stat cache reloaded at every look)."""
    engine, _ = served
    folder = engine.config.index_dir
    manifests = []
    for word in ("ninety", "eighty"):
        seeds = tmp_path / f"seeds-{word}"
        seeds.mkdir()
        (seeds / DOC).write_text(NEW_TEXT.replace("ninety", word), encoding="utf-8")
        built = tmp_path / f"index-{word}"
        build(seeds, built, embedder)
        for f in built.iterdir():
            if f.name != "manifest.json":
                shutil.copy(f, folder / f.name)
        manifests.append((built / "manifest.json").read_bytes())
    size = max(len(m) for m in manifests)
    manifests = [m.ljust(size) for m in manifests]  # the same size (blanks: still JSON)

    def rewrite_in_place(raw: bytes) -> None:
        with open(folder / "manifest.json", "r+b") as f:
            f.write(raw)
            f.truncate()
        os.utime(folder / "manifest.json", ns=(1_700_000_000 * 10**9,) * 2)

    import qa.engine

    rewrite_in_place(manifests[0])
    real, loads = qa.engine.load_snapshot, []

    def load_while_rewritten(index_dir, embedder_):
        if not loads:
            rewrite_in_place(manifests[1])
        loads.append(str(index_dir))
        return real(index_dir, embedder_)

    monkeypatch.setattr(qa.engine, "load_snapshot", load_while_rewritten)
    assert engine.check_for_update() is True  # the first, or already the second
    for _ in range(5):
        engine.check_for_update()
    assert len(loads) <= 2  # the second once more at most, then nothing
    assert engine.index.version == load_index(folder).version


@pytest.mark.parametrize("kind", [*DAMAGES, "other_model"])
def test_a_broken_index_on_disk_keeps_the_last_good_one_and_health_says_so(
    served, embedder, health_schema, kind
):
    engine, client = served
    good = engine.index.version
    if kind == "other_model":
        path = engine.config.index_dir / "manifest.json"
        manifest = json.loads(path.read_text())
        manifest["model"]["name"] = "another-model"
        path.write_text(json.dumps(manifest))
        expected = "built with model 'another-model'"
    else:
        expected = damage_index(engine.config.index_dir, kind)
    # a data file short of its recorded size is loaded (and refused) once it stops changing
    assert engine.check_for_update() is False and engine.check_for_update() is False
    assert expected in engine.problem and "qa index" in engine.problem

    r = client.get("/api/health")
    assert r.status_code == 200
    health = r.get_json()
    health_schema.validate(health)
    assert health["status"] == "degraded" and health["index_version"] == good
    assert expected in health["problem"]
    r = client.post("/api/ask", json={"question": "Who founded the society?"})
    assert r.status_code == 200 and r.get_json()["index_version"] == good
    assert "Maren Tolbeck" in citation_texts(r.get_json())[0]

    rebuild(engine, embedder, NEW_TEXT)  # the fix: rebuild
    assert engine.check_for_update() is True and engine.problem is None
    assert client.get("/api/health").get_json()["status"] == "ok"


def test_a_load_that_races_a_build_is_retried_once(served, monkeypatch):
    import qa.engine

    engine, _ = served
    calls = []

    def flaky(index_dir):
        calls.append(index_dir)
        if len(calls) == 1:  # as if the build removed the old files under our feet
            raise IndexProblem("sentences-0000.jsonl is missing or unreadable")
        return load_index(index_dir)

    monkeypatch.setattr(qa.engine, "load_index", flaky)
    snapshot = load_snapshot(engine.config.index_dir, engine.embedder)
    assert len(calls) == 2 and snapshot.index.version == engine.index.version


# --- starting with a damaged index ---------------------------------------------------------


@pytest.fixture
def built(tmp_path, embedder):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / DOC).write_text(OLD_TEXT, encoding="utf-8")
    build(seeds, tmp_path / "index", embedder)
    return ["--seeds", str(seeds), "--index", str(tmp_path / "index")]


@pytest.fixture
def no_listening(monkeypatch):
    """`qa serve` in process, stopped where it would start listening; the app is kept."""
    from qa import server

    apps = []

    def create_server(app, config):
        apps.append(app)
        raise OSError("not listening in this test")

    monkeypatch.setattr(server, "create_server", create_server)
    return apps


@pytest.mark.parametrize("kind", DAMAGES)
def test_starting_on_a_damaged_index_refuses_with_one_line(built, tmp_path, no_listening, kind):
    expected = damage_index(tmp_path / "index", kind)
    result = CliRunner().invoke(cli, ["serve", *built])
    assert result.exit_code == 1 and not no_listening, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert "qa index" in result.output and "qa serve --rebuild" in result.output
    assert len(result.output.strip().splitlines()) == 1

    result = CliRunner().invoke(cli, ["ask", "Who founded the society?", *built])
    assert result.exit_code == 1 and expected in result.output and "qa index" in result.output


def test_serve_rebuild_repairs_a_damaged_index(built, tmp_path, no_listening):
    damage_index(tmp_path / "index", "faiss_truncated")
    result = CliRunner().invoke(cli, ["serve", "--rebuild", *built])
    assert "rebuilding the index" in result.output and "not listening" in result.output
    (app,) = no_listening
    app.extensions["qa"]["engine"].close()
    assert app.debug is False
    load_index(tmp_path / "index")  # whole again


def test_an_index_of_another_model_is_stale_and_rebuilt(built, tmp_path):
    path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["model"] = {"name": "another-model", "dimension": 768}
    path.write_text(json.dumps(manifest))
    notices = []
    config = Config.load(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    engine = Engine(config, notify=notices.append)
    assert "built with model 'another-model'" in notices[0]
    assert engine.index.manifest["model"]["dimension"] == 384


def test_an_index_whose_sentences_were_embedded_otherwise_is_rebuilt(built, tmp_path):
    """An index from before table rows were embedded with their column names records only
    its context weight: this qa's vectors would not match it, so it is built again."""
    path = tmp_path / "index" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["embedding"] = {"context_weight": 0.3}  # as qa wrote it until 2026-12-01
    path.write_text(json.dumps(manifest))
    notices = []
    config = Config.load(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    engine = Engine(config, notify=notices.append)
    assert "split or embedded otherwise than this qa does" in notices[0]
    assert engine.index.manifest["embedding"] == EMBEDDING


# --- documents -----------------------------------------------------------------------------


class FakeEmbedder:
    """Random unit vectors: enough for the build code, which needs only these."""

    name = "fake"
    dimension = 16

    def encode(self, texts, batch_size: int = 4096, progress=None):
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for i in range(0, len(texts), batch_size):
            if progress:
                progress(min(batch_size, len(texts) - i))
        return vectors

    def encode_questions(self, texts):
        return self.encode(texts)


def test_unusable_documents_are_skipped_with_a_message_naming_them(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / DOC).write_text(OLD_TEXT, encoding="utf-8")
    (seeds / "latin1.txt").write_bytes("caf\u00e9 ol\u00e9".encode("latin-1"))
    (seeds / "empty.md").write_text("  \n\n", encoding="utf-8")
    index = build(seeds, tmp_path / "index", FakeEmbedder())
    skipped = index.manifest["skipped"]
    assert any(s.startswith("latin1.txt: not valid UTF-8") for s in skipped)
    assert any(s.startswith("empty.md: the document is empty") for s in skipped)
    assert list(index.documents) == [DOC]


def test_a_10_mb_document_builds_with_progress(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    sentence = "The lantern keeper counted {} lanterns before the morning ferry left. "
    lines, size = [], 0
    while size < 10 * 1024 * 1024:
        line = "".join(sentence.format(n) for n in range(size, size + 40)) + "\n"
        lines.append(line)
        size += len(line)
    (seeds / "big.txt").write_text("".join(lines), encoding="utf-8")
    progress = []
    index = build(
        seeds, tmp_path / "index", FakeEmbedder(), progress=lambda d, t: progress.append((d, t))
    )
    total = index.manifest["counts"]["sentences"]
    assert total > 100_000 and index.vectors.ntotal == total
    assert len(progress) > 10 and progress[-1] == (total, total)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


# --- rebuilding while a real server answers ----------------------------------------------


def get_json(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def live(tmp_path_factory, embedder):
    """`qa serve --rebuild` started on a damaged index of OLD_TEXT."""
    from live_server import start_server

    workdir = tmp_path_factory.mktemp("live")
    (workdir / "seeds").mkdir()
    (workdir / "seeds" / DOC).write_text(OLD_TEXT, encoding="utf-8")
    build(workdir / "seeds", workdir / "index", embedder)
    damage_index(workdir / "index", "faiss_overwritten")
    server = start_server(workdir, "--rebuild")
    server.workdir = workdir
    yield server
    server.stop()


def run_qa_index(workdir) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "qa", "index", "--seeds", "seeds", "--index", "index"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr


def wait_for(predicate, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_serve_rebuild_starts_on_a_damaged_index(live):
    assert "rebuilding the index" in live.text()
    status, health = get_json(live.url + "/api/health")
    assert status == 200 and health["status"] == "ok"


def test_rebuilding_while_serving_fails_no_request_and_mixes_no_answer(live):
    questions = [
        "Who founded the society?",
        "Who is the chair of the society?",
        "When does the Lantern Society meet?",
        "How many lanterns does the society keep?",
    ]
    _, health = get_json(live.url + "/api/health")
    old = health["index_version"]
    results, errors, stop = [], [], threading.Event()

    def keep_asking(n: int) -> None:
        i = n
        while not stop.is_set():
            try:
                results.append(get_json(live.url + "/api/ask", {"question": questions[i % 4]}))
            except Exception as exc:  # a refused or dropped connection is a failure too
                errors.append(repr(exc))
            i += 1

    threads = [threading.Thread(target=keep_asking, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        (live.workdir / "seeds" / DOC).write_text(NEW_TEXT, encoding="utf-8")
        run_qa_index(live.workdir)
        new = wait_for(
            lambda: (v := get_json(live.url + "/api/health")[1]["index_version"]) != old and v
        )
        switched = len(results)
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)

    assert errors == [] and len(results) > switched > 4
    assert [s for s, _ in results if s != 200] == []
    texts = {old: OLD_TEXT, new: NEW_TEXT}
    for _, answer in results:  # each answer wholly from the index it names
        text = texts[answer["index_version"]]
        assert all(t in text for t in citation_texts(answer)), answer
    assert {a["index_version"] for _, a in results[switched + 8 :]} == {new}
    assert "switched to the new index" in live.text()

    status, answer = get_json(live.url + "/api/ask", {"question": questions[1]})
    assert status == 200 and "Osric Vell" in citation_texts(answer)[0]


def test_a_broken_rebuild_is_reported_and_the_last_good_index_serves(live):
    _, health = get_json(live.url + "/api/health")
    good = health["index_version"]
    (live.workdir / "index" / "manifest.json").write_text("{oops", encoding="utf-8")
    health = wait_for(
        lambda: (h := get_json(live.url + "/api/health")[1])["status"] == "degraded" and h
    )
    assert health["index_version"] == good
    assert "manifest.json is not valid JSON" in health["problem"]
    assert "qa index" in health["problem"]
    status, answer = get_json(live.url + "/api/ask", {"question": "Who founded the society?"})
    assert status == 200 and answer["index_version"] == good

    run_qa_index(live.workdir)
    wait_for(lambda: get_json(live.url + "/api/health")[1]["status"] == "ok")
