"""The ``qa`` command line: the composition root that wires the library, the web app and
the configuration together. It only calls the library; library errors become one line.
``eval`` and ``bench`` are in ``cli_measure.py``, ``train`` in ``cli_train.py``."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .cli_measure import bench_cmd, eval_cmd
from .cli_options import corpus_options, library_errors
from .cli_train import train_cmd
from .config import LOW_CONFIDENCE, RANGES, Config

if TYPE_CHECKING:
    from types import FrameType


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """qa's version, the reader and the question encoder in use: the hashes of their
    model cards (QA_READER, QA_QUESTIONS)."""
    if not value or ctx.resilient_parsing:
        return
    from .cards import card_hash
    from .questions import question_folder
    from .questions import read_card as question_card
    from .read import ReaderError, read_card
    from .runner import ModelError

    try:
        config = Config.load()
    except ValueError:  # another setting is wrong: the version still names the models in use
        config = Config.load(only=("model", "reader", "questions"))

    def named(folder: Path, read: Callable[[Path], tuple[dict[str, Any], str]]) -> str:
        """The model's name (its card's hash), or what is wrong with its card, as loading
        it would find (its files' checksums are checked when it loads)."""
        if card_hash(folder) is None:
            return "missing"
        try:
            return read(folder)[1]
        except (ReaderError, ModelError) as exc:
            return f"unusable: {exc}"

    folder = config.reader
    line = f"qa {__version__}, reader {named(folder, read_card)} ({folder})"
    questions = question_folder(config)
    if questions is None:
        line += ", questions embedded by the embedding model"
    else:
        line += f", question encoder {named(questions, question_card)} ({questions})"
    click.echo(line)
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
    from .build import build_index, build_warnings
    from .embed import load_embedder

    started = time.perf_counter()
    # an index holds the documents' vectors only: the question encoder is not needed, and a
    # broken one must not stop a build
    embedder = load_embedder(replace(config, questions="off"))
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []  # shown once there are sentences to embed: an error comes alone

        def progress(done: int, total: int) -> None:
            if not bars:
                bar = click.progressbar(length=1, label="embedding sentences", file=sys.stderr)
                bars.append(stack.enter_context(bar))
            bars[0].length = max(total, 1)
            bars[0].update(done - bars[0].pos)

        index = build_index(
            config, embedder, progress=progress, notify=lambda m: click.echo(m, err=True)
        )
    for line in build_warnings(index.manifest):
        click.echo(line, err=True)
    counts = index.manifest["counts"]
    click.echo(
        f"indexed {_many(counts['documents'], 'document')}, "
        f"{_many(counts['sentences'], 'sentence')} "
        f"in {time.perf_counter() - started:.1f} s -> {config.index_dir} "
        f"(version {index.version})"
    )


def _many(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


class _QuestionCommand(click.Command):
    """``qa ask``: a question that begins with '-' reads as an option; the error says how
    to ask it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if exc.option_name.startswith("--"):
                raise
            hint = "; a question that begins with '-' goes after --: qa ask -- \"-5 °C?\""
            raise click.NoSuchOption(
                exc.option_name, exc.message.rstrip(".") + hint, exc.possibilities, exc.ctx
            ) from None


@cli.command("ask", cls=_QuestionCommand)
@click.argument("question")
@click.option(
    "--top-k",
    "-k",
    type=click.IntRange(RANGES["top_k"][0], Config.max_top_k),
    default=None,
    help="How many citations to return (1-10) [env QA_TOP_K; default 3].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
@corpus_options
@library_errors
def ask_cmd(config: Config, question: str, top_k: int | None, as_json: bool) -> None:
    """Answer QUESTION from the documents, citing the sentences it comes from."""
    from .answer import check_question
    from .engine import Engine

    check_question(question, config.max_question_chars)  # refused before the models load
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
        shown = round(answer.confidence, 2)
        note = ": low; check the source below" if shown < LOW_CONFIDENCE else ""
        click.echo(f"(confidence {shown:.2f}{note})\n")
    for n, c in enumerate(answer.citations, 1):
        click.echo(f"[{n}] {c.doc}, sentence {c.sentence} ({c.start}-{c.end}), score {c.score:.2f}")
        click.echo(f"    {c.text}")


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on [env QA_HOST; default 127.0.0.1].")
@click.option(
    "--port",
    type=click.IntRange(*RANGES["port"]),
    default=None,
    help="Port to listen on; 0 picks a free one [env QA_PORT; default 8000].",
)
@click.option(
    "--threads",
    type=click.IntRange(*RANGES["threads"]),
    default=None,
    help="Worker threads [env QA_THREADS; default 16].",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild the index before serving, also when it is damaged (by default a missing "
    "or stale index is built, a damaged one is refused).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(*RANGES["max_connections"]),
    default=None,
    help="Open connections in all [env QA_MAX_CONNECTIONS; default 1000].",
)
@click.option(
    "--max-conn-per-client",
    type=click.IntRange(*RANGES["max_conn_per_client"]),
    default=None,
    help="Open connections per client address; more get a 429; 0 for no cap "
    "[env QA_MAX_CONN_PER_CLIENT; default 20].",
)
@click.option(
    "--header-timeout",
    type=click.IntRange(*RANGES["header_timeout"]),
    default=None,
    help="Seconds from connecting to the end of a request's headers "
    "[env QA_HEADER_TIMEOUT; default 5].",
)
@click.option(
    "--body-timeout",
    type=click.IntRange(*RANGES["body_timeout"]),
    default=None,
    help="Seconds a request's body may take before --body-min-rate applies "
    "[env QA_BODY_TIMEOUT; default 5].",
)
@click.option(
    "--body-min-rate",
    type=click.IntRange(*RANGES["body_min_rate"]),
    default=None,
    help="Bytes a second a request's body must come at after that; 0: the whole body "
    "within --body-timeout "
    "[env QA_BODY_MIN_RATE; default 1000].",
)
@click.option(
    "--idle-timeout",
    type=click.IntRange(*RANGES["idle_timeout"]),
    default=None,
    help="Seconds a kept-alive connection may sit idle [env QA_IDLE_TIMEOUT; default 10].",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Reverse proxies (addresses or networks, comma-separated, or *) whose "
    "X-Forwarded-For names the client [env QA_FORWARDED_ALLOW_IPS; default none].",
)
@corpus_options
@library_errors
def serve_cmd(config: Config, rebuild: bool, **flags: Any) -> None:
    """Serve the chat page and the JSON API on waitress, a production WSGI server, guarded
    against slow and idle clients (see "Exposing it to the internet" in the README).

    A rebuilt index (`qa index` in another shell) is picked up within seconds."""
    import dataclasses
    import logging
    import signal

    from web.app import create_app

    from .engine import Engine
    from .index import IndexProblem
    from .server import check_settings, create_server

    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("qa").setLevel(logging.INFO)  # index switches are worth a line
    try:
        config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
        check_settings(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        engine = Engine(config, notify=lambda m: click.echo(m, err=True), rebuild=rebuild)
    except IndexProblem as exc:
        raise click.ClickException(f"{exc}, or start with `qa serve --rebuild`") from exc
    app = create_app(config, engine=engine)
    try:
        server = create_server(app, config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc
    engine.watch()  # once it can serve: a port refused leaves no thread behind

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
        engine.close()
    click.echo("stopped")


cli.add_command(eval_cmd)
cli.add_command(bench_cmd)
cli.add_command(train_cmd)


def main(argv: list[str] | None = None) -> int:
    """The ``qa`` command: the CLI, with what click leaves to a traceback said in one line.
    An output that cannot be written (a full disk: ``qa ask > /dev/full``) is an error; one
    whose reader has gone (``| head -1``) ends quietly; an interruption, whenever it comes
    (click would say "Aborted!" at a prompt), is "interrupted" and exit 130."""
    try:
        code = cli.main(args=argv, prog_name="qa", standalone_mode=False)
        sys.stdout.flush()  # here, not at exit: a write that fails is said
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        _say("interrupted")
        code = 130
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            _say(f"Error: cannot write the output ({exc.strerror or exc})")
        code = 1
    if code:
        with contextlib.suppress(OSError):  # what is left unwritten stays so, said once
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (closed at exit)
    return code if isinstance(code, int) else 0


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        click.echo(line, err=True)
