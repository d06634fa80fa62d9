"""Render documents with WeasyPrint, fetching nothing but the app's own static files.

Templates are autoescaped Jinja (every typed value is text, never markup); the URL fetcher
is the second fence: even markup that got through could not read a local file or reach the
network, because the fetcher serves files under loanservice/static/ and refuses the rest.
"""
import hashlib
import io
import itertools
import logging
import mimetypes
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from flask import render_template
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

STATIC_DIR = (Path(__file__).resolve().parent.parent / "static").resolve()
BASE_URL = STATIC_DIR.as_uri() + "/"
# Archive quality for what is kept for years; level "b" (appearance) is what WeasyPrint can
# promise, and the tags (pdf_tags) make the text readable to screen readers as well.
ARCHIVE_VARIANT = "pdf/a-3b"

log = logging.getLogger(__name__)

# Letters in chunks, for a run of overdue notices: see LetterPress.
LETTER_CHUNK = 20  # letters laid out as one document
FIRST_CHUNK = 5  # the first chunk is small, so that the first letters go out within a second or so
PROCESSES = max(1, min(2, os.cpu_count() or 1))  # worker processes laying letters out
PARALLEL_FROM = 2 * LETTER_CHUNK  # fewer letters than this are laid out in this process
IN_FLIGHT = 2  # chunks queued per worker, so a worker never waits for the next one
WORKER_TASKS = 100  # chunks a worker lays out before it is replaced (WeasyPrint caches grow)
CHUNK_TIMEOUT = 300  # seconds to wait for one chunk before laying it out here instead


class StaticOnlyFetcher(URLFetcher):
    """Serve files under loanservice/static/ and refuse every other URL (file, http, data...)."""

    def __init__(self):
        super().__init__(allowed_protocols=("file",), allow_redirects=False, fail_on_errors=False)
        self.served: list[str] = []
        self.refused: list[str] = []

    def fetch(self, url, headers=None):
        path = static_path(url)
        if path is None:
            self.refused.append(url)
            raise ValueError(f"Documents may only use the app's static files, not {url[:100]}")
        self.served.append(url)
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mimetype})


def static_path(url: str) -> Path | None:
    """The file under STATIC_DIR that ``url`` names, or None (other schemes, hosts, ``..``, links out)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    try:
        path = Path(url2pathname(unquote(parts.path))).resolve()
    except (OSError, ValueError):
        return None
    if STATIC_DIR not in path.parents or not path.is_file():
        return None
    return path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def html_document(html: str, fetcher: StaticOnlyFetcher | None = None) -> HTML:
    return HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher or StaticOnlyFetcher())


def write_pdf(document, *, archive: bool = False) -> bytes:
    """PDF bytes from an HTML or a rendered document: tagged always, PDF/A when kept for the archive."""
    return document.write_pdf(pdf_tags=True, pdf_variant=ARCHIVE_VARIANT if archive else None)


def render_pdf(template: str, *, archive: bool = False, fetcher: StaticOnlyFetcher | None = None,
               **context) -> bytes:
    """Render a template under templates/documents/ to PDF bytes."""
    return write_pdf(html_document(render_template(template, **context), fetcher), archive=archive)


@dataclass
class RenderedLetters:
    """Several letters laid out once: each letter's own PDF, and all of them as one print file."""

    letters: list[bytes] = field(default_factory=list)
    merged: bytes | None = None


@dataclass
class LetterChunk:
    """Letters ``start`` to ``start + len(letters)`` of a run, each as its own PDF (and, asked, as one file)."""

    start: int
    letters: list[bytes]
    merged: bytes | None = None


def _letter_bounds(document, count: int) -> list[int]:
    """The first page of each letter (from its ``letter-<i>`` anchor), then the page count."""
    starts = {}
    for number, page in enumerate(document.pages):
        for anchor in page.anchors:
            if anchor.startswith("letter-"):
                starts.setdefault(int(anchor.removeprefix("letter-")), number)
    if sorted(starts) != list(range(count)):
        raise RuntimeError("Every letter needs its own letter-<i> anchor.")
    return [starts[i] for i in range(count)] + [len(document.pages)]


def lay_out_letters(html: str, count: int, merged: bool = False,
                    fetcher: StaticOnlyFetcher | None = None) -> tuple[list[bytes], bytes | None]:
    """Lay ``count`` letters out as one document; cut it into one tagged PDF per letter.

    With ``merged``, also the whole chunk as one print file, written once (untagged: it is for
    the printer, and each letter's own copy is the accessible one). Joining the letters' own
    PDFs instead would be cheaper to make, but each carries its own fonts: the print file of
    5,000 letters grows sixfold, and joining it takes over 600 MB. Runs in a worker process as
    well as here: it needs no app context, only the HTML.
    """
    document = html_document(html, fetcher).render()
    bounds = _letter_bounds(document, count)
    pages = document.pages
    letters = [write_pdf(document.copy(pages[a:b])) for a, b in zip(bounds, bounds[1:], strict=False)]
    return letters, (document.write_pdf() if merged else None)


def concatenate_pdfs(pdfs: list[bytes]) -> bytes:
    """One PDF of the pages of ``pdfs``, in order (a print file), joined by qpdf (pikepdf): for the
    chunks of a run, about 0.4 ms a letter, where pypdf took 4."""
    if len(pdfs) == 1:
        return pdfs[0]
    import pikepdf

    out = pikepdf.Pdf.new()
    sources = [pikepdf.Pdf.open(io.BytesIO(pdf)) for pdf in pdfs]  # open until saved: pages are copied lazily
    for source in sources:
        out.pages.extend(source.pages)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


def _chunks(count: int, size: int, first: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk: a smaller first one, so the first letters are out sooner."""
    bounds, start = [], 0
    while start < count:
        end = min(count, start + (first if start == 0 else size))
        bounds.append((start, end))
        start = end
    return bounds


class LetterPress:
    """Lays out letters chunk by chunk over worker processes, handing each chunk back in order.

    A chunk of ``LETTER_CHUNK`` letters is one WeasyPrint document (laying out many letters at
    once is cheaper than one document each, but the cost per letter creeps up in very large
    documents, and memory grows with the pages held). The HTML is written here, in the app
    context; the workers (forked, so they start at once with WeasyPrint loaded) lay out,
    cut and write the PDFs. Small runs, or a machine without fork, stay in this process.
    Use it as a context manager so the workers are stopped.
    """

    def __init__(self, processes: int | None = None):
        self.processes = processes if processes is not None else PROCESSES
        self._pool = None

    def __enter__(self) -> "LetterPress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def _workers(self):
        if self._pool is None:
            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(self.processes, maxtasksperchild=WORKER_TASKS)
        return self._pool

    def chunks(self, template: str, items: Sequence, *, merged: bool = False,
               letter: Callable[[Any], dict] | None = None, prepare: Callable[[Sequence], None] | None = None,
               chunk: int | None = None, first_chunk: int | None = None, **context) -> Iterator[LetterChunk]:
        """Each chunk's letters as PDFs, in order.

        ``items`` are the letters' contexts, or anything ``letter`` turns into one; ``prepare``
        is called with a chunk's items before that (to load what they need in one query). A
        chunk's HTML is written here, in the app context, just before it goes to a worker.
        """
        chunk = chunk or LETTER_CHUNK
        bounds = _chunks(len(items), chunk, min(first_chunk or FIRST_CHUNK, chunk))

        def html(start: int, end: int) -> str:
            part = items[start:end]
            if prepare is not None:
                prepare(part)
            letters = [letter(item) for item in part] if letter is not None else list(part)
            return render_template(template, letters=letters, **context)

        def here(start: int, end: int) -> LetterChunk:
            return LetterChunk(start, *lay_out_letters(html(start, end), end - start, merged))

        if not self._parallel(len(items)):
            for start, end in bounds:
                yield here(start, end)
            return
        pool = self._workers()

        def send(start: int, end: int):
            return start, end, pool.apply_async(lay_out_letters, (html(start, end), end - start, merged))

        todo = iter(bounds)
        pending = deque(send(*b) for b in itertools.islice(todo, IN_FLIGHT * self.processes))
        while pending:
            start, end, result = pending.popleft()
            try:
                pdfs, whole = result.get(timeout=CHUNK_TIMEOUT)
            except multiprocessing.TimeoutError:
                # A stuck worker (it should not happen): finish here rather than wait forever.
                log.warning("A letter worker took over %s s; laying out the rest in this process.", CHUNK_TIMEOUT)
                self.close()
                for first, last in itertools.chain([(start, end)], ((s, e) for s, e, _ in pending), todo):
                    yield here(first, last)
                return
            following = next(todo, None)
            if following is not None:
                pending.append(send(*following))
            yield LetterChunk(start, pdfs, whole)

    def _parallel(self, count: int) -> bool:
        return (self.processes > 1 and count >= PARALLEL_FROM
                and "fork" in multiprocessing.get_all_start_methods()
                and not multiprocessing.current_process().daemon)  # daemons may not have children


def render_letters(template: str, letters: list[dict], *, merged: bool = False,
                   fetcher: StaticOnlyFetcher | None = None, press: LetterPress | None = None,
                   **context) -> RenderedLetters:
    """Lay out many letters in chunks and cut them into one PDF each (and a merged one).

    Laying letters out together is much faster than one document per letter. The template
    gives each letter an anchor ``letter-<i>`` on its first page and starts each letter on a
    new page, so the pages from one anchor to the next are that letter. With a ``fetcher``
    (to see what was fetched) everything is laid out here, as one document.
    """
    if not letters:
        return RenderedLetters()
    if fetcher is not None:
        pdfs, whole = lay_out_letters(render_template(template, letters=letters, **context), len(letters),
                                      merged, fetcher)
        return RenderedLetters(letters=pdfs, merged=whole)
    result, wholes = RenderedLetters(), []
    own = press is None
    press = press or LetterPress()
    try:
        for part in press.chunks(template, letters, merged=merged, **context):
            result.letters.extend(part.letters)
            if merged:
                wholes.append(part.merged)
    finally:
        if own:
            press.close()
    if merged:
        result.merged = concatenate_pdfs(wholes)
    return result
