"""The ``qa`` command line: the composition root that wires the library, the web app and
the configuration together. It only calls the library; library errors become one line.
``eval`` and ``bench`` are in ``cli_measure.py``, ``train`` in ``cli_train.py``."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .cli_measure import bench_cmd, eval_cmd
from .cli_options import corpus_options, library_errors
from .cli_train import train_cmd
from .config import Config

if TYPE_CHECKING:
    from types import FrameType


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """qa's version and the reader in use: the hash of its model card (QA_READER)."""
    if not value or ctx.resilient_parsing:
        return
    from .config import DEFAULT_READER
    from .read import card_hash

    try:
        folder = Config.load().reader
    except ValueError:
        folder = DEFAULT_READER
    click.echo(f"qa {__version__}, reader {card_hash(folder) or 'missing'} ({folder})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version of qa and of the reader in use (the hash of its model card).",
)
def cli() -> None:
    """Ask questions of your documents; every answer is their own words, with citations."""


@cli.command("index")
@corpus_options
@library_errors
def index_cmd(config: Config) -> None:
    """Build the index of the documents in the seeds folder."""
    from .build import build_index
    from .embed import load_embedder

    started = time.perf_counter()
    embedder = load_embedder(config)
    with click.progressbar(length=1, label="embedding sentences", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        index = build_index(config, embedder, progress=progress)
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
@click.option(
    "--top-k",
    "-k",
    type=click.IntRange(1, 10),
    default=None,
    help="How many citations to return (1-10) [env QA_TOP_K; default 3].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
@corpus_options
@library_errors
def ask_cmd(config: Config, question: str, top_k: int | None, as_json: bool) -> None:
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


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on [env QA_HOST; default 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on; 0 picks a free one [env QA_PORT; default 8000].",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker threads [env QA_THREADS; default 16].",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild the index before serving, also when it is damaged (by default a missing "
    "or stale index is built, a damaged one is refused).",
)
@corpus_options
@library_errors
def serve_cmd(
    config: Config, host: str | None, port: int | None, threads: int | None, rebuild: bool
) -> None:
    """Serve the chat page and the JSON API on waitress, a production WSGI server.

    A rebuilt index (`qa index` in another shell) is picked up within seconds."""
    import dataclasses
    import logging
    import signal

    from waitress import create_server

    from web.app import create_app

    from .engine import Engine
    from .index import IndexProblem

    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)  # index switches are worth a line
    flags: dict[str, Any] = {"host": host, "port": port, "threads": threads}
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    try:
        engine = Engine(config, notify=lambda m: click.echo(m, err=True), rebuild=rebuild)
    except IndexProblem as exc:
        raise click.ClickException(f"{exc}, or start with `qa serve --rebuild`") from exc
    app = create_app(config, engine=engine)
    engine.watch()
    try:
        server = create_server(
            app, host=config.host, port=config.port, threads=config.threads, ident="qa"
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc

    def stop(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    listening = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    for h, p in listening:
        shown = f"[{h}]" if ":" in str(h) else h
        click.echo(f"Serving on http://{shown}:{p} (Ctrl-C to stop)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    click.echo("stopped")


cli.add_command(eval_cmd)
cli.add_command(bench_cmd)
cli.add_command(train_cmd)
