"""Options and error handling shared by the ``qa`` commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from .config import Config
from .errors import QAError

P = ParamSpec("P")
R = TypeVar("R")


def corpus_options(f: Callable[..., R]) -> Callable[..., R]:
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
    def wrapper(
        seeds_dir: str | None, index_dir: str | None, model: str | None, **kwargs: Any
    ) -> R:
        try:
            config = Config.load(seeds_dir=seeds_dir, index_dir=index_dir, model=model)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        return f(config=config, **kwargs)

    return wrapper


def library_errors(f: Callable[P, R]) -> Callable[P, R]:
    """Turn the library's errors (``QAError``) into one clear line and a non-zero exit, no
    traceback."""

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return f(*args, **kwargs)
        except QAError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper
