"""The command line: qa index, qa ask, and its errors."""

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import qa
from qa.cli import cli


@pytest.fixture
def dirs(seeds_copy, tmp_path):
    return ["--seeds", str(seeds_copy), "--index", str(tmp_path / "index")]


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_index_then_ask_json_cites_the_members_sentence(dirs, seeds_copy):
    result = invoke("index", *dirs)
    assert result.exit_code == 0, result.output
    assert "indexed 1 document, " in result.output and "sentences" in result.output

    result = invoke("ask", "--json", "How many members does the Gaitanista Army have?", *dirs)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert set(answer) == {
        "question",
        "answer",
        "answer_start",
        "answer_end",
        "confidence",
        "citations",
        "index_version",
    }
    assert 0 <= answer["confidence"] <= 1 and len(answer["citations"]) <= 3
    texts = {}
    for c in answer["citations"]:
        text = texts.setdefault(c["doc"], (seeds_copy / c["doc"]).read_text(encoding="utf-8"))
        assert text[c["start"] : c["end"]] == c["text"]
    assert any("7,500" in c["text"] for c in answer["citations"])
    if answer["answer"] is not None:
        first = answer["citations"][0]
        doc = texts[first["doc"]]
        assert answer["answer"] in first["text"]
        assert doc[answer["answer_start"] : answer["answer_end"]] == answer["answer"]
        assert first["start"] <= answer["answer_start"] < answer["answer_end"] <= first["end"]


def test_ask_prints_a_readable_answer_with_numbered_citations(dirs):
    result = invoke("ask", "--top-k", "2", "Who was instructed to use military force?", *dirs)
    assert result.exit_code == 0, result.output
    assert "[1]" in result.output and "[2]" in result.output and "[3]" not in result.output


def test_the_readmes_printed_answer_is_what_qa_ask_prints(dirs):
    """The README's `qa ask` example, asked again: its lines up to the "[2] …" it cuts."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split("`qa ask` prints the answer and its numbered citations:\n\n```\n")[1]
    shown_lines = shown.split("\n[2] …")[0].splitlines()
    question = readme.split('.venv/bin/qa ask "')[1].split('"')[0]
    result = invoke("ask", question, *dirs)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[: len(shown_lines)] == shown_lines


@pytest.mark.parametrize(
    "confidence, flagged", [(0.31, True), (0.4951, False), (0.4949, True), (0.93, False)]
)
def test_ask_says_when_an_answer_is_more_likely_wrong_than_right(
    dirs, monkeypatch, confidence, flagged
):
    """The reader's confidence, whatever it is for this question, replaced by ``confidence``:
    under 0.5 as printed the answer says it is low (0.4951 prints as 0.50: not flagged)."""
    from qa.engine import Engine

    real = Engine.ask

    def at(self, question, history=(), top_k=None):
        given = real(self, question, history, top_k)
        first = given.citations[0]  # an answer, right or wrong, whatever the reader said
        return replace(given, answer=first.text, confidence=confidence)

    monkeypatch.setattr(Engine, "ask", at)
    result = invoke("ask", "How many members does the Gaitanista Army have?", *dirs)
    assert result.exit_code == 0, result.output
    assert f"(confidence {confidence:.2f}" in result.output
    assert ("low; check the source" in result.output) == flagged


def test_ask_builds_a_missing_index_with_a_notice(dirs, tmp_path):
    result = CliRunner().invoke(cli, ["ask", "Who spoke?", *dirs])
    assert result.exit_code == 0, result.output
    assert "building the index" in result.output
    assert (tmp_path / "index" / "manifest.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "   "], "question is empty"),
        (["ask", "\u200b\ufeff"], "question is empty"),  # only invisible characters
        (["ask", "--top-k", "0", "Who?"], "--top-k"),
        (["ask", "--bogus", "Who?"], "No such option"),
        (["ask", "Who? " * 201], "over 1000 characters"),  # the API's limit too
        (["ask", "caf\udce9?"], "not UTF-8"),  # the bytes b"caf\xe9?" given on a UTF-8 shell
    ],
)
def test_errors_are_one_clear_line(dirs, args, message):
    result = CliRunner().invoke(cli, args + dirs)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["ask", "Who?"], ["index"], ["eval"]])
def test_an_unknown_setting_word_is_one_clear_line(dirs, command, monkeypatch, tmp_path):
    monkeypatch.setenv("QA_TABLE_ROWS", "cells")
    if command == ["eval"]:
        questions = tmp_path / "q.jsonl"
        questions.write_text('{"id": "q1", "turns": ["Who?"], "answerable": false}\n')
        command = ["eval", str(questions)]
    result = CliRunner().invoke(cli, command + dirs)
    assert result.exit_code != 0
    assert "invalid value for QA_TABLE_ROWS: 'cells'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("QA_TOP_K", "0", "QA_TOP_K: 0 (it must be from 1 to 10)"),
        ("QA_TOP_K", "11", "QA_TOP_K: 11 (it must be from 1 to 10)"),
        ("QA_EMBED_THREADS", "0", "QA_EMBED_THREADS: 0 (it must be from 1 to 64)"),
        ("QA_PORT", "70000", "QA_PORT: 70000 (it must be from 0 to 65535)"),
        ("QA_MAX_HISTORY", "-1", "QA_MAX_HISTORY: -1 (it must be at least 0)"),
        ("QA_HEADER_TIMEOUT", "0", "QA_HEADER_TIMEOUT: 0 (it must be at least 1)"),
        ("QA_TOP_K", "x", "QA_TOP_K: 'x'"),  # not a number: named as set, too
        ("QA_BACKEND", "bogus", "QA_BACKEND: 'bogus' (use one of: onnx, onnx-int8, torch)"),
    ],
)
@pytest.mark.parametrize("command", [["ask", "Who?"], ["serve"]])
def test_a_setting_out_of_its_range_is_one_clear_line(
    dirs, command, var, value, message, monkeypatch
):
    """Refused before anything starts: a server with QA_TOP_K=0 would refuse every question
    that does not name its own top_k."""
    monkeypatch.setenv(var, value)
    result = CliRunner().invoke(cli, command + dirs)
    assert result.exit_code != 0
    assert f"invalid value for {message}" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("QA_HOST", "999.1.1.1", "QA_HOST (--host): '999.1.1.1' is not an address to listen on"),
        ("QA_FORWARDED_ALLOW_IPS", "notanip", "QA_FORWARDED_ALLOW_IPS (--forwarded-allow-ips):"),
    ],
)
def test_a_server_setting_it_cannot_use_is_one_line_naming_it(
    dirs, var, value, message, monkeypatch
):
    monkeypatch.setenv(var, value)
    result = CliRunner().invoke(cli, ["serve", *dirs])
    assert result.exit_code != 0
    assert f"invalid value for {message}" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_index_setting_that_names_a_file_says_so(dirs, monkeypatch):
    monkeypatch.setenv("QA_INDEX", str(Path(qa.__file__)))  # a file, not a folder
    result = CliRunner().invoke(cli, ["ask", "Who?", *dirs[:2]])
    assert result.exit_code == 1
    assert "is not a folder" in result.output and "rebuild" not in result.output


def test_a_configuration_made_in_code_is_checked_too():
    """The library's users build a Config directly; it refuses what the variables would."""
    from qa.config import Config

    with pytest.raises(ValueError, match="QA_TOP_K: 0 .it must be from 1 to 10"):
        Config(top_k=0)
    with pytest.raises(ValueError, match="QA_PORT: -1"):
        replace(Config(), port=-1)
    assert Config(top_k=20, max_top_k=20).top_k == 20  # top_k's top is max_top_k


def test_a_model_that_is_neither_a_folder_nor_cached_is_one_line_and_never_fetched(
    dirs, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as the service sets it unless told otherwise
    result = CliRunner().invoke(cli, ["ask", "--model", "no-such-model-here", "Who?", *dirs])
    assert result.exit_code == 1
    assert "cannot load the embedding model 'no-such-model-here'" in result.output
    assert "nothing is downloaded" in result.output and "huggingface.co" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_model_path_that_does_not_exist_is_one_line_in_all_output(dirs, tmp_path):
    """All the process writes, the libraries' logging included, is the one error line."""
    missing = str(tmp_path / "no-model-here")
    out = subprocess.run(
        [sys.executable, "-m", "qa", "ask", "--model", missing, "Who?", *dirs],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert lines == [
        f"Error: cannot load the embedding model {missing!r}: there is no folder {missing}; "
        "give the path of a sentence-transformers model with --model or QA_MODEL"
    ]


def test_version_names_the_models_in_use_even_when_another_setting_is_wrong(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "0")
    monkeypatch.setenv("QA_READER", "/nowhere/reader")
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "reader missing (/nowhere/reader)" in result.output


def test_version_says_a_reader_card_is_unusable_rather_than_name_it(monkeypatch, tmp_path):
    import shutil

    from qa.config import DEFAULT_READER

    broken = tmp_path / "reader"
    shutil.copytree(DEFAULT_READER, broken)
    (broken / "card.json").write_text("{")
    monkeypatch.setenv("QA_READER", str(broken))
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert f"reader unusable: {broken / 'card.json'} is not a valid model card" in result.output


def test_an_unusable_cache_folder_is_one_clear_line(dirs, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("QA_CACHE", str(blocked))
    monkeypatch.setenv("QA_BACKEND", "onnx")
    result = CliRunner().invoke(cli, ["ask", "Who?", *dirs])
    assert result.exit_code == 1
    assert f"cannot keep the model's ONNX export in {blocked}" in result.output
    assert "QA_CACHE" in result.output and "Traceback" not in result.output


def test_eval_of_an_empty_set_is_an_error(dirs, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = CliRunner().invoke(cli, ["eval", str(empty), *dirs])
    assert result.exit_code == 1 and "holds no questions" in result.output


def test_eval_scores_a_folder_of_question_files_as_one_set(dirs, tmp_path):
    """A labelled corpus's questions/ (a .jsonl file a document, in folders of kinds) is
    scored as the set its files make together; an id twice in them is refused, naming
    both files."""
    lines = [
        {"id": "q1", "turns": ["How many members?"], "answerable": True},
        {"id": "q2", "turns": ["What colour is the moon's hat?"], "answerable": False},
    ]
    lines[0] |= {"support": ["members"], "answer": ["members"]}
    whole = tmp_path / "set.jsonl"
    whole.write_text("".join(json.dumps(line) + "\n" for line in lines))
    folder = tmp_path / "questions"
    for n, line in enumerate(lines):
        (folder / "kind").mkdir(parents=True, exist_ok=True)
        (folder / "kind" / f"doc{n}.jsonl").write_text(json.dumps(line) + "\n")
    scored = [CliRunner().invoke(cli, ["eval", str(p), *dirs, "--json"]) for p in (whole, folder)]
    assert all(r.exit_code == 0 for r in scored), scored[1].output
    reports = [json.loads(r.output[r.output.index("{") :]) for r in scored]
    assert reports[1]["counts"] == reports[0]["counts"] and reports[1]["counts"]["questions"] == 2
    assert reports[1]["metrics"] == reports[0]["metrics"]
    (folder / "doc2.jsonl").write_text(json.dumps(lines[1]) + "\n")
    result = CliRunner().invoke(cli, ["eval", str(folder), *dirs])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{folder / 'kind' / 'doc1.jsonl'}: id 'q2' is already an id in" in result.output
    empty = tmp_path / "none"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["eval", str(empty), *dirs])
    assert result.exit_code == 1 and "a folder of questions needs .jsonl files" in result.output


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "turns": [], "answerable": true}', "'turns' must hold at least one"),
        ('{"id": "a", "turns": "Who?", "answerable": true}', "'turns' must be a list"),
        ('{"id": "a", "turns": [5], "answerable": true}', "'turns' must be a list"),
        ('{"id": "a", "turns": ["Who?"], "answerable": "yes"}', "'answerable' must be true"),
        ('{"id": "a", "turns": ["Who?"], "answerable": true, "answer": "Smith"}', "'answer'"),
        ('{"id": "a", "turns": ["Who?"], "answerable": true, "support": [""]}', "'support'"),
        ('{"id": "a", "turns": ["Who?"]}', "no 'answerable'"),
        ('["Who?"]', "JSON object"),
        # an answerable question without them could only ever count as missed
        ('{"id": "a", "turns": ["Who?"], "answerable": true}', "needs its 'support' and 'answer'"),
        (
            '{"id": "ok", "turns": ["Why?"], "answerable": false}',
            "'ok' is already the id of line 1",
        ),
        ('{"id": "a", "turns": ["\\ud800"], "answerable": false}', "surrogates not allowed"),
        ('\ufeff{"id": "a", "turns": ["Who?"], "answerable": false}', "BOM"),  # a mark mid-file
    ],
)
def test_eval_names_the_line_and_what_is_wrong_with_it(dirs, tmp_path, line, message):
    """A malformed question set is refused, never scored: a lone string would be matched
    letter by letter, an empty acceptable answer would match every answer."""
    good = '{"id": "ok", "turns": ["Who?"], "answerable": false}'
    path = tmp_path / "set.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert result.exit_code == 1
    assert f"{path}:2: not a question-set line" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_eval_reads_a_byte_order_mark_and_refuses_bytes_that_are_not_text(dirs, tmp_path):
    line = b'{"id": "ok", "turns": ["What is this?"], "answerable": false}\n'
    path = tmp_path / "set.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line)  # as some editors save
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert result.exit_code == 0, result.output
    path.write_bytes(line + b"\xff" + line)
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}:2: not a question-set line (not text: invalid start byte)" in result.output


def test_eval_refuses_what_the_service_would_as_the_service_does(dirs, tmp_path):
    """Scored by the library, a question over the service's limits is refused as the API
    refuses it (with --url the server refuses it), naming the question; a threshold on a
    metric the set cannot measure says so."""
    path = tmp_path / "set.jsonl"
    long = {"id": "long", "turns": ["a" * 1001], "answerable": False}
    path.write_text(json.dumps(long) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "question 'long': refused: the question is over 1000 characters" in result.output
    blank = {"id": "blank", "turns": ["\u200b\ufe0f"], "answerable": False}
    path.write_text(json.dumps(blank) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert "question 'blank': refused: the question is empty" in result.output
    many = {"id": "many", "turns": ["Who?"] * 22, "answerable": False}
    path.write_text(json.dumps(many) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs])
    assert "question 'many': refused: history holds at most 20 turns" in result.output
    path.write_text(json.dumps({**many, "turns": ["Who?"]}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(path), *dirs, "--min", "support@1=0.9"])
    assert result.exit_code == 1
    assert "support@1 is not measured: no question of the set counts for it" in result.output


def test_no_documents_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli, ["index", "--seeds", str(tmp_path / "empty"), "--index", str(tmp_path / "i")]
    )
    assert result.exit_code == 1
    assert "no usable documents" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1  # no progress bar before it


@pytest.mark.parametrize("command", [["index"], ["ask", "Who?"]])
def test_an_index_folder_that_cannot_be_made_is_one_line_before_any_embedding(
    seeds_copy, tmp_path, command
):
    (tmp_path / "a-file").write_text("not a folder\n")
    args = ["--seeds", str(seeds_copy), "--index", str(tmp_path / "a-file" / "index")]
    result = CliRunner().invoke(cli, [*command, *args])
    assert result.exit_code == 1, result.output
    said = "cannot create the index folder" if command == ["index"] else "is not a folder"
    assert said in result.output and "--index or QA_INDEX" in result.output
    assert "Traceback" not in result.output and "embedding" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_damaged_index_is_a_clear_error(dirs, tmp_path):
    assert invoke("index", *dirs).exit_code == 0
    (tmp_path / "index" / "manifest.json").write_text("garbage", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ask", "Who?", *dirs])
    assert result.exit_code == 1
    assert "not valid JSON" in result.output and "qa index" in result.output


def test_skipped_document_is_a_warning(dirs, seeds_copy):
    (seeds_copy / "broken.txt").write_bytes(b"\xff\xfe\x00bad")
    result = CliRunner().invoke(cli, ["index", *dirs])
    assert result.exit_code == 0, result.output
    assert "skipped broken.txt" in result.output
    # a document with nothing to cite (a table's rule line alone) is indexed, and said so
    (seeds_copy / "rule.md").write_text("| --- | --- |\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["index", *dirs])
    assert result.exit_code == 0, result.output
    assert "warning: rule.md has no sentence to answer from" in result.output
    assert "has no sentence" not in result.output.replace("rule.md has no sentence", "")


def test_an_index_built_by_qa_ask_says_what_it_skipped_as_qa_index_does(dirs, seeds_copy):
    (seeds_copy / "latin1.txt").write_bytes("Caf\xe9 upstairs opens at 6.\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["ask", "Who?", *dirs])
    assert result.exit_code == 0, result.output
    assert "building the index" in result.output
    assert "warning: skipped latin1.txt: not valid UTF-8" in result.output
    # once built, the index is loaded as it is: the warning is for the build
    again = CliRunner().invoke(cli, ["ask", "Who?", *dirs])
    assert again.exit_code == 0 and "skipped" not in again.output, again.output


def test_help_and_version_answer_fast():
    for flag in ("--help", "--version"):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "qa", flag], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        # generous bound: it guards against heavy imports (torch takes seconds), not speed
        assert time.perf_counter() - started < 3
    from qa.cards import card_hash
    from qa.config import DEFAULT_QUESTIONS, DEFAULT_READER

    # the version names the reader and the question encoder in use: their cards' hashes
    assert out.stdout.startswith(f"qa {qa.__version__}, reader {card_hash(DEFAULT_READER)} ")
    # the package ships a question encoder, used by default
    assert f", question encoder {card_hash(DEFAULT_QUESTIONS)} " in out.stdout
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, qa.cli; print(sorted(m for m in "
            "('torch', 'faiss', 'sentence_transformers', 'flask') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
    )
    assert heavy.stdout.strip() == "[]"


def test_eval_scores_a_question_set_with_the_reliability_of_confidence(tmp_path):
    """``qa eval``: the metrics of shared/eval, and how often each band of confidence was
    right (what an operator checks the calibration on their own documents with)."""
    data = Path(__file__).resolve().parent / "data"
    args = ["eval", str(data / "questions.jsonl"), "--seeds", str(data / "seeds")]
    args += ["--index", str(tmp_path / "index")]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    counts, metrics = report["counts"], report["metrics"]
    assert counts["questions"] == 30 and set(metrics) >= {"answer_hit", "abstain", "support@1"}
    given = round(counts["answerable"] * (1 - metrics["false_abstain"])) + round(
        counts["unanswerable"] * (1 - metrics["abstain"])
    )
    assert sum(r["count"] for r in report["reliability"]) == given
    for row in report["reliability"]:
        lo, hi = (float(x) for x in row["bin"].split("-"))
        assert lo <= row["confidence"] <= hi and 0 <= row["right"] <= 1
    text = CliRunner().invoke(cli, args)
    assert "confidence of the answers given" in text.output
    assert text.output.startswith("30 questions (")
    # one question, one answer: said in the singular
    one = tmp_path / "one.jsonl"
    one.write_text((data / "questions.jsonl").read_text().splitlines()[0] + "\n")
    alone = CliRunner().invoke(cli, ["eval", str(one), *args[2:]])
    assert alone.exit_code == 0 and alone.output.startswith("1 question (1 answerable")
    assert "   1 answer,  mean" in alone.output and "1 answers" not in alone.output
    # a threshold not met fails the command, naming it
    failed = CliRunner().invoke(cli, [*args, "--min", "answer_hit=1.01"])
    assert failed.exit_code == 1 and "answer_hit" in failed.output
    # a bound that is not a number would pass every comparison: refused
    for bound in ("--min", "support@1=nan"), ("--max", "false_abstain=inf"):
        refused = CliRunner().invoke(cli, [*args, *bound])
        assert refused.exit_code == 2 and "the number must be finite" in refused.output


def test_eval_reads_any_run_of_white_space_as_one_space():
    """A line break inside a wrapped Markdown paragraph shows as a space: a support string or
    an answer written with a space matches it, and case aside; nothing else is loosened."""
    from qa.evaluate import is_hit, supports

    cited = {"text": "It was started in\n2021 by  the collective."}
    assert supports(cited, ("STARTED IN 2021",)) and supports(cited, ("2021 by the",))
    assert not supports(cited, ("started in 2022",)) and not supports(cited, ("in2021",))
    assert is_hit("the Lantern\r\n  collective", ("lantern collective",))
    assert not is_hit("the Lantern\ncollective", ("lantern collectives",))
    assert not is_hit(None, ("x",))


@pytest.mark.parametrize(
    "url, message",
    [
        ("notaurl", "not an http:// or https:// address"),
        ("http://[::1", "is not a URL (Invalid IPv6 URL)"),
        ("http://localhost:port", "is not a URL"),
    ],
)
def test_eval_refuses_a_url_that_is_not_one_naming_the_option(tmp_path, url, message):
    questions = tmp_path / "q.jsonl"
    line = {"id": "q1", "turns": ["Who?"], "answerable": False, "support": [], "answer": []}
    questions.write_text(json.dumps(line) + "\n")
    result = CliRunner().invoke(cli, ["eval", str(questions), "--url", url])
    assert result.exit_code == 2, result.output
    assert "'--url'" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_the_readmes_question_set_is_one_qa_eval_reads(tmp_path):
    from qa.evaluate import load_items

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```")[0] for b in readme.split("```jsonl\n")[1:]]
    assert blocks, "the README shows a question set"
    for block in blocks:
        (tmp_path / "set.jsonl").write_text(block, encoding="utf-8")
        items = load_items(tmp_path / "set.jsonl")
        assert len(items) == block.count("\n") and any(len(i.turns) > 1 for i in items)
        assert {i.answerable for i in items} == {True, False}


def run_qa(*args, **kw):
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, **kw)


def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback(dirs):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    assert invoke("index", *dirs).exit_code == 0
    for args in (["ask", "How many members?", *dirs], ["ask", "--json", "Who?", *dirs], ["--help"]):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [sys.executable, "-m", "qa", *args], stdout=full, stderr=subprocess.PIPE, text=True
            )
        assert done.returncode == 1, args
        assert done.stderr.strip() == "Error: cannot write the output (No space left on device)"


def test_a_question_that_begins_with_a_dash_is_told_how_to_ask_it(dirs):
    refused = CliRunner().invoke(cli, ["ask", "-5 degrees?", *dirs])
    assert refused.exit_code == 2
    assert "a question that begins with '-' goes after --" in refused.output
    asked = CliRunner().invoke(cli, ["ask", *dirs, "--", "-5 degrees?"])
    assert asked.exit_code == 0, asked.output
    # a mistyped long option is a mistyped option, as click says
    assert "goes after --" not in CliRunner().invoke(cli, ["ask", "--nope", "x"]).output


def test_an_interrupted_command_says_so_and_exits_130(seeds_copy, tmp_path):
    import signal

    args = ["index", "--seeds", str(seeds_copy), "--index", str(tmp_path / "fresh")]
    interrupted = 0
    for wait in (0.08, 0.15, 0.3, 0.6):  # importing qa, loading the model, embedding
        started = subprocess.Popen(
            [sys.executable, "-m", "qa", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(wait)
        started.send_signal(signal.SIGINT)
        out, err = started.communicate(timeout=60)
        if started.returncode == 0:
            continue  # done before the signal came: nothing to say
        if "init_import_site" in err:
            # it came while Python itself was starting (seen on a loaded machine), before
            # any of qa ran: the interpreter's own fatal error, nothing of qa's to test
            continue
        assert started.returncode == 130, (wait, err)
        assert "Traceback" not in err and err.strip().endswith("interrupted"), err
        interrupted += 1
    assert interrupted, "every signal came before Python started or after the build: untested"


def test_a_ctrl_c_once_the_command_is_done_leaves_its_exit_as_it_was(tmp_path):
    # Python gives SIGINT back to its default while it unloads modules (torch's take a
    # while): a Ctrl-C there killed a finished `qa index` (exit -2). Sent then (from an
    # object deleted only then), from an exit handler, or while Python waits for a thread
    # the command left, it changes nothing now.
    script = tmp_path / "late.py"
    script.write_text(
        "import atexit, os, signal, sys, threading, time\n"
        "from qa import cli, console\n"
        "def ctrl_c(): os.kill(os.getpid(), signal.SIGINT)\n"
        "class CtrlC:\n"
        "    def __del__(self): ctrl_c()\n"
        "late = CtrlC() if sys.argv[1] == 'unloading' else None\n"
        "if sys.argv[1] == 'atexit':\n"
        "    atexit.register(ctrl_c)\n"
        "def command():\n"
        "    if sys.argv[1] == 'thread':\n"
        "        threading.Thread(target=lambda: (time.sleep(0.3), ctrl_c())).start()\n"
        "    print('done')\n"
        "    return int(sys.argv[2])\n"
        "cli.main = command\n"
        "sys.exit(console.main())\n"
    )
    for when in ("unloading", "atexit", "thread"):
        for code in (0, 1):
            done = subprocess.run(
                [sys.executable, str(script), when, str(code)], capture_output=True, text=True
            )
            assert (done.returncode, done.stdout, done.stderr) == (code, "done\n", ""), when
