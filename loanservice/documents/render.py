"""Render documents with WeasyPrint, fetching nothing but the app's own static files.

Templates are autoescaped Jinja (every typed value is text, never markup); the URL fetcher
is the second fence: even markup that got through could not read a local file or reach the
network, because the fetcher serves files under loanservice/static/ and refuses the rest.
"""
import hashlib
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
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


def render_letters(template: str, letters: list[dict], *, merged: bool = False,
                   fetcher: StaticOnlyFetcher | None = None, **context) -> RenderedLetters:
    """Lay out many letters as one document and cut it into one PDF each (and a merged one).

    One layout pass for the whole batch is much faster than one document per letter. The
    template gives each letter an anchor ``letter-<i>`` on its first page and starts each
    letter on a new page, so the pages from one anchor to the next are that letter.
    """
    if not letters:
        return RenderedLetters()
    document = html_document(render_template(template, letters=letters, **context), fetcher).render()
    starts = {}
    for number, page in enumerate(document.pages):
        for anchor in page.anchors:
            if anchor.startswith("letter-"):
                starts.setdefault(int(anchor.removeprefix("letter-")), number)
    if sorted(starts) != list(range(len(letters))):
        raise RuntimeError("Every letter needs its own letter-<i> anchor.")
    bounds = [starts[i] for i in range(len(letters))] + [len(document.pages)]
    result = RenderedLetters(letters=[
        write_pdf(document.copy(document.pages[bounds[i]:bounds[i + 1]])) for i in range(len(letters))])
    if merged:
        result.merged = write_pdf(document)
    return result
