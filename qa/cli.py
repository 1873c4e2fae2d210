"""The ``qa`` command line. It only calls the library; library errors become one line."""

from __future__ import annotations

import functools
import json
import sys
import time

import click

from . import __version__
from .config import Config


def corpus_options(f):
    """--seeds, --index and --model, shared by every command that reads the corpus."""

    @click.option("--seeds", "seeds_dir", type=click.Path(file_okay=False),
                  help="Folder of .txt/.md documents [env QA_SEEDS; default seeds/].")
    @click.option("--index", "index_dir", type=click.Path(file_okay=False),
                  help="Folder of the built index [env QA_INDEX; default index/].")
    @click.option("--model", help="sentence-transformers model: a path or a name "
                  "[env QA_MODEL; default the bundled all-MiniLM-L6-v2].")
    @functools.wraps(f)
    def wrapper(seeds_dir, index_dir, model, **kwargs):
        try:
            config = Config.load(seeds_dir=seeds_dir, index_dir=index_dir, model=model)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        return f(config=config, **kwargs)

    return wrapper


def library_errors(f):
    """Turn the library's errors into one clear line and a non-zero exit, no traceback."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        from .answer import QuestionError
        from .documents import DocumentError
        from .embed import ModelError
        from .index import IndexProblem

        try:
            return f(*args, **kwargs)
        except (DocumentError, IndexProblem, ModelError, QuestionError) as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qa")
def cli():
    """Ask questions of your documents; every answer is their own words, with citations."""


@cli.command("index")
@corpus_options
@library_errors
def index_cmd(config: Config):
    """Build the index of the documents in the seeds folder."""
    from .embed import load_embedder
    from .index import build_index

    started = time.perf_counter()
    embedder = load_embedder(config.model)
    with click.progressbar(length=1, label="embedding sentences", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        index = build_index(config.seeds_dir, config.index_dir, embedder, progress=progress)
    for message in index.manifest.get("skipped", []):
        click.echo(f"warning: skipped {message}", err=True)
    counts = index.manifest["counts"]
    click.echo(
        f"indexed {counts['documents']} documents, {counts['sentences']} sentences "
        f"in {time.perf_counter() - started:.1f} s -> {config.index_dir} "
        f"(version {index.version})"
    )


@cli.command("ask")
@click.argument("question")
@click.option("--top-k", "-k", type=click.IntRange(1, 10), default=None,
              help="How many citations to return (1-10) [env QA_TOP_K; default 3].")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
@corpus_options
@library_errors
def ask_cmd(config: Config, question: str, top_k: int | None, as_json: bool):
    """Answer QUESTION from the documents, citing the sentences it comes from."""
    from .answer import QuestionError
    from .engine import Engine

    if not question.strip():
        raise QuestionError("the question is empty")
    engine = Engine(config, notify=lambda m: click.echo(m, err=True))
    answer = engine.ask(question, top_k=top_k)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if answer.answer is None:
        click.secho("The documents do not say.", bold=True)
        if answer.citations:
            click.echo("\nRelated passages:")
    else:
        click.secho(answer.answer, bold=True)
        click.echo(f"(confidence {answer.confidence:.2f})\n")
    for n, c in enumerate(answer.citations, 1):
        click.echo(f"[{n}] {c.doc}, sentence {c.sentence} ({c.start}-{c.end}), score {c.score:.2f}")
        click.echo(f"    {c.text}")


def main():  # pragma: no cover
    cli()
