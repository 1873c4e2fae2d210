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

    @click.option(
        "--seeds",
        "seeds_dir",
        type=click.Path(file_okay=False),
        help="Folder of .txt/.md documents [env QA_SEEDS; default seeds/].",
    )
    @click.option(
        "--index",
        "index_dir",
        type=click.Path(file_okay=False),
        help="Folder of the built index [env QA_INDEX; default index/].",
    )
    @click.option(
        "--model",
        help="sentence-transformers model: a path or a name "
        "[env QA_MODEL; default the bundled all-MiniLM-L6-v2].",
    )
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
):
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
    flags = {"host": host, "port": port, "threads": threads}
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    try:
        engine = Engine(config, notify=lambda m: click.echo(m, err=True), rebuild=rebuild)
    except IndexProblem as exc:
        raise click.ClickException(f"{exc}, or start with `qa serve --rebuild`") from exc
    app = create_app({"engine": engine})
    engine.watch()
    try:
        server = create_server(
            app, host=config.host, port=config.port, threads=config.threads, ident="qa"
        )
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from exc

    def stop(signum, frame):
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


def main():  # pragma: no cover
    cli()


def _parse_bounds(values: tuple[str, ...], option: str) -> dict[str, float]:
    from .evaluate import METRICS

    bounds = {}
    for v in values:
        name, _, number = v.partition("=")
        if name not in METRICS:
            raise click.BadParameter(
                f"{name!r} is not one of {', '.join(METRICS)}", param_hint=option
            )
        try:
            bounds[name] = float(number)
        except ValueError as exc:
            raise click.BadParameter(f"{v!r} is not NAME=NUMBER", param_hint=option) from exc
    return bounds


@cli.command("eval")
@click.argument("questions", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--url", help="Score a running server (e.g. http://127.0.0.1:8000) instead of the library."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="List the questions answered wrongly.")
@click.option(
    "--min",
    "minimums",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit non-zero if METRIC is under VALUE, e.g. --min support@1=0.9.",
)
@click.option(
    "--max",
    "maximums",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit non-zero if METRIC is over VALUE, e.g. --max false_abstain=0.05.",
)
@corpus_options
@library_errors
def eval_cmd(
    config: Config,
    questions: str,
    url: str | None,
    as_json: bool,
    verbose: bool,
    minimums: tuple[str, ...],
    maximums: tuple[str, ...],
):
    """Score a question set (JSON lines) with the metrics of the eval README."""
    from .evaluate import check_thresholds, evaluate, http_asker, library_asker, load_items

    mins, maxs = _parse_bounds(minimums, "--min"), _parse_bounds(maximums, "--max")
    try:
        items = load_items(questions)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if url:
        ask = http_asker(url)
    else:
        from .engine import Engine

        ask = library_asker(Engine(config, notify=lambda m: click.echo(m, err=True)))
    try:
        report = evaluate(ask, items)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        counts = report.counts
        click.echo(
            f"{counts['questions']} questions ({counts['answerable']} answerable, "
            f"{counts['unanswerable']} unanswerable, {counts['followup']} follow-ups)"
        )
        for name, value in report.metrics.items():
            click.echo(f"  {name:<20} {'-' if value is None else value}")
        if verbose:
            for o in report.misses():
                first = (o.response.get("citations") or [{}])[0].get("text", "")
                click.echo(f"\nmiss {o.item.id}: {o.item.turns[-1]}")
                click.echo(f"  answer: {o.response.get('answer')!r}")
                click.echo(f"  cited:  {first[:160]!r}")
                if o.item.answerable:
                    click.echo(f"  wanted: {o.item.answer} in a sentence with {o.item.support}")
    failures = check_thresholds(report, mins, maxs)
    if failures:
        raise click.ClickException("; ".join(failures))


@cli.command("bench")
@click.option("--quick", is_flag=True, help="A short smoke run (seconds instead of minutes).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="bench/results.json",
    show_default=True,
    help="Where to write the results as JSON.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=None,
    help="Server worker threads [env QA_THREADS; default 16].",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Rebuild the 100,000-sentence corpus and index kept in bench/corpus/.",
)
@corpus_options
@library_errors
def bench_cmd(config: Config, quick: bool, out: str, threads: int | None, fresh: bool):
    """Measure latency, throughput, cold start, build and scale; print a table."""
    from pathlib import Path

    from .bench import measure_help, run_bench, table, write_results

    try:
        results = run_bench(
            config.seeds_dir,
            config.model,
            threads or config.threads,
            config.embed_threads,
            quick=quick,
            echo=lambda m: click.echo(m, err=True),
            scale_cache=None if quick else Path("bench/corpus"),
            scale_refresh=fresh,
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    results["help_seconds"] = measure_help()
    from .bench import check_targets

    results["targets"] = check_targets(results)
    write_results(results, Path(out))
    click.echo(table(results))
    click.echo(f"\nwritten to {out}")
