"""Reading the corpus."""

import pytest

from qa.documents import DocumentError, corpus_files, load_corpus


def test_reads_txt_and_md_recursively_with_relative_ids(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha one.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Beta\nBeta two.", encoding="utf-8")
    (tmp_path / "examples.json").write_text("[]", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("Hidden.", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["a.txt", "sub/b.md"]
    assert corpus.documents[1].text == "# Beta\nBeta two."
    assert corpus.skipped == ()


def test_bad_documents_are_skipped_with_a_message_naming_them(tmp_path):
    (tmp_path / "good.txt").write_text("Fine text.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me.".encode("latin-1"))
    (tmp_path / "nul.txt").write_bytes(b"\x00" * 64)  # valid UTF-8, but no text
    (tmp_path / "utf16.txt").write_bytes("Bees make honey.".encode("utf-16-le"))  # no mark
    corpus = load_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["good.txt"]
    assert any("empty.txt" in m and "empty" in m for m in corpus.skipped)
    assert any("latin1.txt" in m and "UTF-8" in m for m in corpus.skipped)
    for name in ("nul.txt", "utf16.txt"):
        assert any(name in m and "not text" in m for m in corpus.skipped)


def test_utf16_with_its_mark_and_a_name_with_a_line_break_are_skipped_saying_why(tmp_path):
    (tmp_path / "good.txt").write_text("Fine text.", encoding="utf-8")
    (tmp_path / "marked.txt").write_bytes("Bees make honey.".encode("utf-16"))  # with its BOM
    (tmp_path / "gym\nhours.txt").write_text("Open at six.", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"Fine until \xe9 here.")
    corpus = load_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["good.txt"]
    assert "marked.txt: UTF-16 text, not UTF-8; save it as UTF-8" in corpus.skipped
    # the name is shown escaped: a raw line break would break the warning's line
    why = "its name holds a control character or a byte that is not UTF-8; rename it"
    assert f"gym\\nhours.txt: {why}" in corpus.skipped
    assert "bad.txt: not valid UTF-8 (at byte offset 11); save it as UTF-8" in corpus.skipped


def test_names_in_any_script_are_read_and_offsets_count_the_files_bytes(tmp_path):
    # a no-break space, a zero-width non-joiner (inside Persian words), an emoji's joiner
    names = ["notes\xa0v2.md", "\u0645\u06cc\u200c\u062e.md", "team-\U0001f469\u200d\U0001f4bb.txt"]
    for name in names:
        (tmp_path / name).write_text("Fine text.", encoding="utf-8")
    (tmp_path / "marked.txt").write_bytes(b"\xef\xbb\xbfab\xff")  # UTF-8's mark, then a bad byte
    (tmp_path / "wide.txt").write_bytes("Bees.".encode("utf-32"))
    corpus = load_corpus(tmp_path)
    assert sorted(d.id for d in corpus.documents) == sorted(names)
    assert "marked.txt: not valid UTF-8 (at byte offset 5); save it as UTF-8" in corpus.skipped
    assert "wide.txt: UTF-32 text, not UTF-8; save it as UTF-8" in corpus.skipped


def test_a_broken_link_or_a_pipe_is_skipped_with_a_message_never_read(tmp_path):
    import os

    (tmp_path / "good.txt").write_text("Fine text.", encoding="utf-8")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    os.mkfifo(tmp_path / "pipe.md")  # reading it would wait for ever
    (tmp_path / "linked.txt").symlink_to(tmp_path / "good.txt")  # a link to a file is read
    corpus = load_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["good.txt", "linked.txt"]
    for name in ("gone.txt", "pipe.md"):
        assert any(m.startswith(f"{name}: not a file to read") for m in corpus.skipped)


def test_a_link_to_a_folder_is_not_followed_and_says_so(tmp_path):
    seeds, elsewhere = tmp_path / "seeds", tmp_path / "elsewhere"
    seeds.mkdir()
    elsewhere.mkdir()
    (seeds / "good.txt").write_text("Fine text.", encoding="utf-8")
    (elsewhere / "far.txt").write_text("Far text.", encoding="utf-8")
    (seeds / "more").symlink_to(elsewhere)
    (seeds / "loop").symlink_to(seeds)  # a link can loop: none is walked into
    (seeds / "notes.md").symlink_to(elsewhere)  # named like a document
    corpus = load_corpus(seeds)
    assert [d.id for d in corpus.documents] == ["good.txt"]
    assert [m.split(":")[0] for m in corpus.skipped] == ["loop/", "more/", "notes.md/"]
    assert all("a link to a folder, not followed" in m for m in corpus.skipped)


def test_byte_order_mark_is_not_text(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeffHello there.".encode())
    assert load_corpus(tmp_path).documents[0].text == "Hello there."


def test_no_documents_is_an_error(tmp_path):
    with pytest.raises(DocumentError, match="no usable documents"):
        load_corpus(tmp_path)
    with pytest.raises(DocumentError, match="does not exist"):
        corpus_files(tmp_path / "missing")
    (tmp_path / "a-file.txt").write_text("Not a folder.", encoding="utf-8")
    with pytest.raises(DocumentError, match="a-file.txt is not a folder"):
        corpus_files(tmp_path / "a-file.txt")


def test_a_file_that_cannot_be_read_is_skipped_by_the_build_and_the_staleness_check(
    tmp_path, monkeypatch, embedder
):
    """No permission to read one file (simulated: the tests may run as root): `qa index`
    builds from the others and names it; once it can be read, the index is stale."""
    from pathlib import Path

    from helpers import build

    from qa.build import EMBEDDING
    from qa.index import stale_reason

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text("The ferry leaves at noon.", encoding="utf-8")
    (seeds / "locked.txt").write_text("The bridge opens at dawn.", encoding="utf-8")
    read_bytes = Path.read_bytes

    def refuse_locked(self):
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse_locked)
    index = build(seeds, tmp_path / "index", embedder)
    assert [d for d in index.documents] == ["good.txt"]
    assert any("locked.txt" in m and "Permission denied" in m for m in index.manifest["skipped"])
    model = index.manifest["model"]["name"]
    assert stale_reason(tmp_path / "index", seeds, model, EMBEDDING) is None
    monkeypatch.undo()
    assert "locked.txt" in stale_reason(tmp_path / "index", seeds, model, EMBEDDING)
