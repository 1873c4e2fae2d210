"""``qa eval`` and ``qa bench``: measuring the service's answers and its speed."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import click

from .cli_options import corpus_options, library_errors
from .config import Config


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
        if not math.isfinite(bounds[name]):  # nan would pass every comparison: no gate
            raise click.BadParameter(f"{v!r}: the number must be finite", param_hint=option)
    return bounds


@click.command("eval")
@click.argument("questions", type=click.Path(exists=True))
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
) -> None:
    """Score a question set (JSON lines: a file, or a folder of them such as a labelled
    corpus's questions/) with the metrics of the eval README."""
    from .evaluate import (
        check_thresholds,
        evaluate,
        http_asker,
        library_asker,
        load_items,
        reliability,
    )

    mins, maxs = _parse_bounds(minimums, "--min"), _parse_bounds(maximums, "--max")
    try:
        items = load_items(questions)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if not items:
        raise click.ClickException(f"{questions} holds no questions: nothing to score")
    if url:
        try:
            ask = http_asker(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--url'") from exc
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
            f"{counts['questions']} question{'s' if counts['questions'] != 1 else ''} "
            f"({counts['answerable']} answerable, "
            f"{counts['unanswerable']} unanswerable, "
            f"{counts['followup']} follow-up{'s' if counts['followup'] != 1 else ''})"
        )
        for name, value in report.metrics.items():
            click.echo(f"  {name:<20} {'-' if value is None else value}")
        answered, _ = report.confidences()
        if answered:
            click.echo("confidence of the answers given: how often each band was right")
            for row in reliability(answered):
                click.echo(
                    f"  {row['bin']}  {row['count']:>4} answer{'s,' if row['count'] != 1 else ', '}"
                    f" mean {row['confidence']:.2f}, "
                    f"right {row['right']:.2f}"
                )
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


@click.command("bench")
@click.option(
    "--quick",
    is_flag=True,
    help="A short smoke run: about a minute, its figures too few to report.",
)
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
def bench_cmd(config: Config, quick: bool, out: str, threads: int | None, fresh: bool) -> None:
    """Measure latency, throughput, cold start, build and scale; print a table."""
    from .bench import check_targets, measure_help, run_bench, table, write_results

    try:
        results = run_bench(
            dataclasses.replace(config, threads=threads or config.threads),
            quick=quick,
            echo=lambda m: click.echo(m, err=True),
            scale_cache=None if quick else Path("bench/corpus"),
            scale_refresh=fresh,
        )
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    results["help_seconds"] = measure_help()
    results["targets"] = check_targets(results)
    write_results(results, Path(out))
    click.echo(table(results))
    click.echo(f"\nwritten to {out}")
