"""Building, loading, verifying and rebuilding the index."""

import fcntl
import json
import threading

import pytest
from helpers import build

from qa import build as building
from qa.build import EMBEDDING
from qa.config import Config
from qa.engine import open_index
from qa.index import IndexProblem, load_index, stale_reason


def test_manifest_records_how_the_index_was_built(article_index):
    m = article_index.manifest
    assert m["format_version"] == 1
    assert m["model"] == {"name": "all-MiniLM-L6-v2", "dimension": 384}
    assert m["counts"]["documents"] == len(m["documents"]) == 1
    assert m["counts"]["sentences"] == len(article_index.sentences) > 20
    doc = m["documents"][0]
    assert len(doc["sha256"]) == 64 and doc["sentences"] == m["counts"]["sentences"]
    assert {"qa", "sentence_transformers", "faiss", "torch", "numpy"} <= set(m["versions"])
    assert m["built_at"] and m["faiss"]["metric"] == "inner_product"
    for entry in m["files"].values():
        assert (article_index.path / entry["name"]).stat().st_size == entry["bytes"]


def test_sentences_are_exact_slices_of_their_documents(article_index):
    for _i, s in enumerate(article_index.sentences):
        assert article_index.documents[s.doc].text[s.start : s.end] == s.text
    assert [s.index for s in article_index.sentences] == list(range(len(article_index.sentences)))


def test_vectors_are_normalised_and_searchable(article_index, embedder):
    v = article_index.vectors.reconstruct(0)
    assert abs(float((v * v).sum()) - 1.0) < 1e-4
    q = embedder.encode([article_index.sentences[5].text])
    _, ids = article_index.vectors.search(q, 1)
    assert ids[0][0] == 5


def test_several_documents(tmp_path, embedder):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "one.txt").write_text("Bees make honey. Honey is sweet.", encoding="utf-8")
    (tmp_path / "s" / "two.md").write_text("# Trains\nTrains run on rails.", encoding="utf-8")
    index = build(tmp_path / "s", tmp_path / "i", embedder)
    assert sorted(index.documents) == ["one.txt", "two.md"]
    assert [(s.doc, s.index, s.text) for s in index.sentences] == [
        ("one.txt", 0, "Bees make honey."),
        ("one.txt", 1, "Honey is sweet."),
        ("two.md", 0, "Trains"),
        ("two.md", 1, "Trains run on rails."),
    ]


def test_a_rebuild_removes_its_old_data_files_and_no_other_file(tmp_path, embedder):
    seeds = tmp_path / "s"
    seeds.mkdir()
    (seeds / "one.txt").write_text("Bees make honey.", encoding="utf-8")
    first = build(seeds, tmp_path / "i", embedder)
    old = {f["name"] for f in first.manifest["files"].values()}
    theirs = ["documents-2024-export.jsonl", "sentences-labelled.jsonl", "vectors-old.faiss"]
    for name in theirs:
        (tmp_path / "i" / name).write_text("someone's own file\n", encoding="utf-8")
    (seeds / "one.txt").write_text("Bees make honey. Honey is sweet.", encoding="utf-8")
    second = build(seeds, tmp_path / "i", embedder)
    new = {f["name"] for f in second.manifest["files"].values()}
    left = {p.name for p in (tmp_path / "i").iterdir()}
    assert new <= left and not (old - new) & left
    assert set(theirs) <= left


def test_a_build_waits_while_another_writes_into_the_same_folder(tmp_path, embedder):
    """Two builds into one folder (two `qa index`, or a server rebuilding a stale index while
    `qa index` runs): one writes, cleans up and loads at a time, so neither removes the
    files the other's manifest names."""
    a, b, index_dir = tmp_path / "a", tmp_path / "b", tmp_path / "i"
    for seeds, text in ((a, "The gate opens at seven."), (b, "The ferry leaves at noon.")):
        seeds.mkdir()
        (seeds / "doc.txt").write_text(text, encoding="utf-8")
    build(a, index_dir, embedder)
    waiting, said = threading.Event(), []

    def notify(line):
        said.append(line)
        waiting.set()

    built = []
    with open(index_dir / building.LOCK, "a") as held:  # another build is writing
        fcntl.flock(held, fcntl.LOCK_EX)
        config = Config(seeds_dir=b, index_dir=index_dir)
        thread = threading.Thread(
            target=lambda: built.append(building.build_index(config, embedder, notify=notify))
        )
        thread.start()
        assert waiting.wait(60)  # embedded, and at the lock, saying so
        assert said == [f"waiting for another build writing the index in {index_dir} ..."]
        thread.join(0.5)
        assert thread.is_alive()  # it waits: nothing of it written, the old index whole
        assert [s.text for s in load_index(index_dir).sentences] == ["The gate opens at seven."]
        fcntl.flock(held, fcntl.LOCK_UN)
    thread.join(60)
    assert [s.text for s in built[0].sentences] == ["The ferry leaves at noon."]
    assert [s.text for s in load_index(index_dir).sentences] == ["The ferry leaves at noon."]


def test_line_separators_in_a_document_index_and_load_back_exactly(tmp_path, embedder):
    """U+2028, U+2029 and U+0085 (text pasted from web pages) stay raw in the index's JSON
    lines; loading must not break lines at them, or the index would be broken for good."""
    (tmp_path / "s").mkdir()
    text = "Ivy is tall.\u2028She is 30.\u2029Her dog is Rex.\x85It barks at the postman."
    (tmp_path / "s" / "pasted.txt").write_text(text, encoding="utf-8")
    built = build(tmp_path / "s", tmp_path / "i", embedder)
    loaded = load_index(tmp_path / "i")
    assert loaded.documents["pasted.txt"].text == text
    assert [s.text for s in loaded.sentences] == [s.text for s in built.sentences]
    assert len(loaded.sentences) >= 2
    for s in loaded.sentences:
        assert text[s.start : s.end] == s.text


def test_a_build_whose_rows_would_not_read_back_leaves_the_old_index(
    tmp_path, embedder, monkeypatch
):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "one.txt").write_text("Bees make honey. Honey is sweet.", encoding="utf-8")
    good = build(tmp_path / "s", tmp_path / "i", embedder)
    (tmp_path / "s" / "two.txt").write_text("Trains run on rails.", encoding="utf-8")
    monkeypatch.setattr("qa.build.jsonl_rows", lambda data: [])  # a reader that loses rows
    with pytest.raises(IndexProblem, match="would not read back; the old index stays"):
        build(tmp_path / "s", tmp_path / "i", embedder)
    assert load_index(tmp_path / "i").version == good.version


def test_stale_index_is_rebuilt_with_a_notice(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    config = Config.load(seeds_dir=seeds_copy, index_dir=index_dir)
    notices = []
    first = open_index(config, embedder, notify=notices.append)
    assert len(notices) == 1 and "no index" in notices[0]
    assert open_index(config, embedder, notify=notices.append).version == first.version
    assert len(notices) == 1  # up to date: loaded, not rebuilt
    (seeds_copy / "extra.txt").write_text("Penguins live in Antarctica.", encoding="utf-8")
    assert "extra.txt" in stale_reason(index_dir, seeds_copy, config.model, EMBEDDING)
    second = open_index(config, embedder, notify=notices.append)
    assert len(notices) == 2 and second.version != first.version
    assert "extra.txt" in second.documents
    assert "model" in stale_reason(index_dir, seeds_copy, "some-other-model", EMBEDDING)


def test_interrupted_build_leaves_the_previous_index_intact(seeds_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    good = build(seeds_copy, index_dir, embedder)
    (seeds_copy / "extra.txt").write_text("Another document here.", encoding="utf-8")

    class Interrupting:
        name, dimension = embedder.name, embedder.dimension

        def encode(self, texts, progress=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(seeds_copy, index_dir, Interrupting())
    assert load_index(index_dir).version == good.version
    assert not list(index_dir.glob(".*.tmp"))


@pytest.mark.parametrize(
    "damage", ["manifest_not_json", "manifest_lacks_fields", "faiss_truncated", "sentences_missing"]
)
def test_damaged_index_gives_a_message_that_says_how_to_rebuild(
    seeds_copy, tmp_path, embedder, damage
):
    index_dir = tmp_path / "index"
    index = build(seeds_copy, index_dir, embedder)
    files = index.manifest["files"]
    if damage == "manifest_not_json":
        (index_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    elif damage == "manifest_lacks_fields":
        (index_dir / "manifest.json").write_text(json.dumps({"format_version": 1}))
    elif damage == "faiss_truncated":
        path = index_dir / files["vectors"]["name"]
        path.write_bytes(path.read_bytes()[:100])
    else:
        (index_dir / files["sentences"]["name"]).unlink()
    with pytest.raises(IndexProblem, match="qa index") as err:
        load_index(index_dir)
    assert str(index_dir) in str(err.value)


def test_large_corpora_get_an_hnsw_graph_whose_scores_are_exact(
    seeds_copy, tmp_path, embedder, article_index
):
    """From Config.hnsw_min_sentences on, the index is an HNSW graph over 8-bit codes whose
    candidates are rescored on the full vectors: the ranking and every score match exact
    search (on a corpus this small, the graph finds every true neighbour)."""
    from qa.vectors import dense_search

    graph = build(seeds_copy, tmp_path / "index", embedder, hnsw_min_sentences=10)
    info = graph.manifest["faiss"]
    assert info["kind"] == type(graph.vectors).__name__ == "IndexRefineFlat"
    assert info["storage"] == "sq8" and info["M"] > 0 and info["ef_search"] >= 10
    assert graph.version == load_index(graph.path).version
    queries = embedder.encode_questions(
        ["Who was instructed to use military force?", "How many members does the group have?"]
    )
    for q in queries:
        approx = dense_search(graph.vectors, q, 10)
        exact = dense_search(article_index.vectors, q, 10)
        assert list(approx) == list(exact)
        for i, score in approx.items():
            assert score == pytest.approx(exact[i], abs=1e-5)


def test_an_hnsw_index_loaded_from_disk_searches_from_any_thread(
    seeds_copy, tmp_path, embedder, article_index
):
    """The loaded graph answers like exact search, from a thread other than the one that
    loaded it (FAISS's thread settings belong to each thread)."""
    import threading

    from qa.vectors import dense_search

    build(seeds_copy, tmp_path / "index", embedder, hnsw_min_sentences=10)
    graph = load_index(tmp_path / "index")
    q = embedder.encode_questions(["Who was instructed to use military force?"])[0]
    found = {}
    worker = threading.Thread(target=lambda: found.update(dense_search(graph.vectors, q, 10)))
    worker.start()
    worker.join(timeout=30)
    assert list(found) == list(dense_search(article_index.vectors, q, 10))


def test_a_markdown_comment_is_not_indexed_and_a_text_files_is(tmp_path, embedder):
    (tmp_path / "s").mkdir()
    note = "<!-- internal: the phone number is 01632 960123 -->"
    (tmp_path / "s" / "notice.md").write_text(f"Meetings are on Monday.\n{note}\n", "utf-8")
    (tmp_path / "s" / "notes.txt").write_text(f"{note}\n", encoding="utf-8")
    index = build(tmp_path / "s", tmp_path / "i", embedder)
    assert [(s.doc, s.text) for s in index.sentences] == [
        ("notes.txt", note),
        ("notice.md", "Meetings are on Monday."),
    ]


def test_a_manifest_no_qa_build_wrote_is_never_replaced(tmp_path, embedder):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "one.txt").write_text("Bees make honey.", encoding="utf-8")
    theirs = tmp_path / "i" / "manifest.json"
    theirs.parent.mkdir()
    theirs.write_text('{"mine": 1}', encoding="utf-8")
    with pytest.raises(IndexProblem, match="not the manifest of a qa index"):
        build(tmp_path / "s", tmp_path / "i", embedder)
    # loading says the same, not "rebuild it with qa index", which would refuse
    with pytest.raises(IndexProblem, match="not the manifest of a qa index") as err:
        load_index(tmp_path / "i")
    assert "rebuild" not in str(err.value)
    assert theirs.read_text(encoding="utf-8") == '{"mine": 1}'
    assert sorted(p.name for p in theirs.parent.iterdir()) == ["manifest.json"]
    # a damaged one (not JSON) is an index to rebuild, as the loader's message says
    theirs.write_text("garbage", encoding="utf-8")
    assert [s.text for s in build(tmp_path / "s", tmp_path / "i", embedder).sentences] == [
        "Bees make honey."
    ]
