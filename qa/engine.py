"""The QA engine: one embedding model and one loaded index per process.

The index can be rebuilt (``qa index``) while the engine serves. ``watch()`` starts a
thread that looks at the index folder once a second (a few ``stat`` calls); when it
changes, the new index is loaded and verified in that thread, off the request path, and
then one reference is swapped. Each question reads that reference once, so it is answered
from exactly one index, old or new, never a mix. A new index that does not load is not
used: the engine keeps its last good one and reports the problem in ``problem``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .answer import answer_question, check_ask
from .build import EMBEDDING, build_index, build_warnings, retrieval_texts
from .config import Config
from .embed import Embedder, load_embedder
from .index import (
    MANIFEST,
    REBUILD_HINT,
    Index,
    IndexProblem,
    load_index,
    manifest_version,
    stale_reason,
)
from .lexical import LexicalIndex
from .read import Reader, load_reader
from .records import Answer, Sentence, Turn

log = logging.getLogger(__name__)

# How long to wait before the one retry of a load that lost a race with a build (a
# build removes the old data files right after it replaces the manifest).
RETRY_DELAY = 0.2


def _log_info(line: str) -> None:
    log.info("%s", line)


def _log_warning(line: str) -> None:
    log.warning("%s", line)


def open_index(
    config: Config,
    embedder: Embedder,
    notify: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    rebuild: bool = False,
) -> Index:
    """Load the index, rebuilding it first (with a one-line notice) when it is missing or
    stale, or always when ``rebuild``. A damaged index raises IndexProblem with a message
    that says how to rebuild. Each notice goes to ``notify``; by default (a library prints
    nothing) to this module's logger: a build as info, a file left out as a warning."""
    say, warn = (notify, notify) if notify else (_log_info, _log_warning)
    reason = None
    if not rebuild:
        reason = stale_reason(config.index_dir, config.seeds_dir, config.model, EMBEDDING)
    if not rebuild and not reason:
        return load_index(config.index_dir)
    if reason:
        say(f"{reason}: building the index in {config.index_dir} ...")
    else:
        say(f"rebuilding the index in {config.index_dir} ...")
    index = build_index(config, embedder, progress=progress, notify=say)
    for line in build_warnings(index.manifest):  # as ``qa index`` says them
        warn(line)
    return index


@dataclass(frozen=True)
class Snapshot:
    """An index, the lexical index of its sentences and its sentences grouped by document:
    always used together, prepared once when the index is loaded."""

    index: Index
    lexical: LexicalIndex
    by_document: dict[str, tuple[Sentence, ...]]

    @classmethod
    def of(cls, index: Index) -> Snapshot:
        grouped: dict[str, list[Sentence]] = {doc: [] for doc in index.documents}
        for s in index.sentences:
            grouped.setdefault(s.doc, []).append(s)
        return cls(
            index,
            LexicalIndex(index.sentences, retrieval_texts(index.sentences, index.table_headers)),
            {doc: tuple(sentences) for doc, sentences in grouped.items()},
        )


def check_compatible(index: Index, embedder: Embedder) -> None:
    """IndexProblem unless ``index`` was built with vectors of ``embedder``'s model."""
    manifest = index.path / MANIFEST
    if index.model != embedder.name:
        raise IndexProblem(
            f"{manifest} was built with model {index.model!r}, this server uses "
            f"{embedder.name!r}; rebuild it with `qa index --model {embedder.name}`"
        )
    if index.vectors.d != embedder.dimension:
        raise IndexProblem(
            f"{manifest}: the index holds vectors of dimension {index.vectors.d}, model "
            f"{embedder.name!r} gives {embedder.dimension}; {REBUILD_HINT}"
        )


def load_snapshot(index_dir: Path, embedder: Embedder) -> Snapshot:
    """Load, verify and prepare the index in ``index_dir``, retrying once if a build
    replaced it while it was being read."""
    try:
        index = load_index(index_dir)
    except IndexProblem:
        time.sleep(RETRY_DELAY)
        index = load_index(index_dir)
    check_compatible(index, embedder)
    return Snapshot.of(index)


Stat = tuple[int, int, int] | None  # inode, size, mtime; None: missing or unreadable


def _stat(path: Path) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _named_files(raw: bytes) -> tuple[tuple[str, int | None], ...]:
    """The data files a manifest names, with the size it records for each (None: none
    readable); () when it cannot be read as one."""
    try:
        files = json.loads(raw)["files"].values()
        return tuple(
            (f["name"], f["bytes"] if type(f.get("bytes")) is int else None)
            for f in files
            if isinstance(f.get("name"), str)
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return ()


@dataclass(frozen=True)
class Look:
    """What the index folder holds: the version of the manifest on disk (None when it
    cannot be read), a signature that changes when a build replaces the manifest or a file
    it names appears, changes or goes, and whether every such file has the size the
    manifest records (False while a copy made file by file is still arriving)."""

    version: str | None
    signature: tuple[Stat, ...]
    complete: bool


class IndexFolder:
    """A cheap look at the index folder: the manifest read (a small file; parsed again
    only when its bytes change) and the stat of the data files *it* names, so that a data
    file arriving after its manifest is seen."""

    def __init__(self, index_dir: Path):
        self.manifest = Path(index_dir) / MANIFEST
        self._version: str | None = None
        self._files: tuple[tuple[str, int | None], ...] = ()

    def look(self) -> Look:
        stat = _stat(self.manifest)
        try:
            raw = self.manifest.read_bytes()
        except OSError:
            return Look(None, (stat,), False)
        version = manifest_version(raw)
        if version != self._version:
            self._version, self._files = version, _named_files(raw)
        folder = self.manifest.parent
        stats = tuple(_stat(folder / name) for name, _ in self._files)
        complete = all(
            st is not None and (size is None or st[1] == size)
            for st, (_, size) in zip(stats, self._files, strict=True)
        )
        return Look(version, (stat, *stats), complete)


class Engine:
    """Answers questions from the index in ``config.index_dir`` with the reader of
    ``config.reader``. An embedder or a reader given here is used instead of loading one.
    A missing or stale index is built first, said to ``notify`` (by default logged:
    ``open_index``). ``with Engine(config) as engine:`` closes it (``close``) at the end."""

    def __init__(
        self,
        config: Config,
        notify: Callable[[str], None] | None = None,
        rebuild: bool = False,
        *,
        embedder: Embedder | None = None,
        reader: Reader | None = None,
    ):
        self.config = config
        self.embedder = embedder or load_embedder(config)
        self.reader = reader or load_reader(config)
        index = open_index(config, self.embedder, notify, rebuild=rebuild)
        check_compatible(index, self.embedder)
        self._snapshot = Snapshot.of(index)
        # The last problem with the index on disk, or None; the engine still answers from
        # its last good index while this is set.
        self.problem: str | None = None
        self._folder = IndexFolder(config.index_dir)
        self._signature = self._signature_of(index)
        self._unsettled: tuple[Stat, ...] | None = None  # an incomplete folder, last look
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def index(self) -> Index:
        return self._snapshot.index

    @property
    def lexical(self) -> LexicalIndex:
        return self._snapshot.lexical

    def ask(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        """The answer to ``question`` (a follow-up of ``history``, the conversation so far),
        with ``top_k`` citations (None: ``config.top_k``). QuestionError says why when the
        API would refuse them too: a question empty or over ``config.max_question_chars``,
        a history over ``config.max_history`` turns, a top_k not from 1 to
        ``config.max_top_k``."""
        top_k = check_ask(question, history, top_k, self.config)
        snapshot = self._snapshot  # read once: the whole answer comes from one index
        return answer_question(
            snapshot.index,
            snapshot.lexical,
            self.embedder,
            self.reader,
            question,
            history,
            top_k,
            named_rows=self.named_rows,
        )

    @property
    def table_rows(self) -> str:
        """How Markdown table rows are read: as QA_TABLE_ROWS says, or when it is not set,
        as the reader's card says it was chosen to read them."""
        return self.config.table_rows or self.reader.settings.table_rows

    @property
    def named_rows(self) -> bool:
        return self.table_rows == "named"

    # --- hot reload ---------------------------------------------------------------------

    def check_for_update(self) -> bool:
        """Reload if the index folder changed since the last look. True when a new index
        is now in use. Safe to call from any thread; the load happens in the caller."""
        with self._reload_lock:
            index_dir = self.config.index_dir
            look = self._folder.look()
            if look.signature == self._signature:
                return False
            if not look.complete and look.signature != self._unsettled:
                # files still arriving (a copy made file by file): look again next time
                # rather than load and hash each of them at every step; a file that stays
                # short (damaged) is loaded, and reported, once it stops changing
                self._unsettled = look.signature
                return False
            # what was seen before loading: a build that lands during the load changes it
            self._signature = look.signature
            try:
                snapshot = load_snapshot(index_dir, self.embedder)
            except IndexProblem as exc:
                if self.problem != str(exc):
                    log.warning(
                        "the index on disk is unusable; still serving version %s: %s",
                        self._snapshot.index.version,
                        exc,
                    )
                self.problem = str(exc)
                return False
            except Exception as exc:  # never let the watcher die; report it instead
                log.exception("loading the new index failed")
                self.problem = f"loading the index in {index_dir} failed ({exc}); {REBUILD_HINT}"
                return False
            old = self._snapshot.index
            self._signature = self._signature_of(snapshot.index)
            if self.problem:
                log.warning("the index on disk is usable again: %s", snapshot.index.version)
            self.problem = None
            if snapshot.index.version == old.version:
                return False  # the same index (a file touched, or restored)
            self._snapshot = snapshot  # one reference: the swap is atomic
            counts = snapshot.index.manifest["counts"]
            log.info(
                "switched to the new index: version %s -> %s (%d documents, %d sentences)",
                old.version,
                snapshot.index.version,
                counts["documents"],
                counts["sentences"],
            )
            return True

    def _signature_of(self, index: Index) -> tuple[Stat, ...] | None:
        """The folder's signature now if its manifest is the one ``index`` was loaded from;
        None (so that the next look loads again) when another build replaced it meanwhile."""
        look = self._folder.look()
        return look.signature if look.version == index.version else None

    def watch(self, interval: float = 1.0) -> None:
        """Look for a rebuilt index every ``interval`` seconds in a daemon thread."""
        if self._watcher is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check_for_update()
                except Exception:  # pragma: no cover - the watcher must survive anything
                    log.exception("checking the index failed")

        self._watcher = threading.Thread(target=run, name="qa-index-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching the index folder (``watch``); safe to call again. The engine still
        answers from the index it holds (its models are the process's, shared by every
        engine that loads the same: nothing else is held for it alone)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        self._stop = threading.Event()

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
