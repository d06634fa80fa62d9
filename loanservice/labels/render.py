"""Draw label sheets straight into PDF: QR modules as filled rectangles, text in Helvetica.

No HTML layout and no embedded font: a page is one content stream that this module writes
itself, which is what makes a sheet of labels take milliseconds rather than seconds.
Lengths are millimetres until they are written, then PDF points.
"""
import io
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pydyf
import zxingcpp

from ..errors import InvalidInput
from .fontmetrics import HELVETICA, HELVETICA_BOLD
from .stocks import LabelStock

PT_PER_MM = 72 / 25.4
QUIET_ZONE_MODULES = 4
# Scuffed labels on instrument cases need modules of about 0.5 mm (see DOMAIN.md). Codes of up
# to 47 characters (version 3) get 0.52 mm on the smallest stock, L7651; this floor lets a
# base URL of up to 67 characters (version 4, 0.47 mm) still print there, and no further.
MIN_MODULE_MM = 0.45
# The QR code takes the label's height, but no more than this share of its width.
QR_SHARE_OF_WIDTH = 0.56
SMALLEST_TEXT_PT = 4.5
ELLIPSIS = "\u2026"


class LabelError(InvalidInput):
    """Labels cannot be drawn as asked (a code too dense for the stock, nothing to print...)."""


@dataclass(frozen=True)
class LabelContent:
    """What one label shows: a QR code, a big title, a few lines and a footer.

    An instrument's label is one kind; a classroom set's label is another with the same parts.
    """

    payload: str
    title: str
    lines: tuple[str, ...] = ()
    footer: str = ""


def label_url(base_url: str, tag: str) -> str:
    """The URL a label's QR code holds: the tag's short page, upper-cased for alphanumeric mode.

    Scheme and host are case-insensitive and the app answers ``/I/`` as well as ``/i/``, so a
    plain base URL can be upper-cased whole. A base URL with a path of its own keeps the
    path's case (servers may care), at the cost of a denser code.
    """
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.path in ("", "/"):
        return f"{base}/i/{tag}".upper()
    return f"{parts.scheme}://{parts.netloc}".upper() + parts.path + f"/I/{tag.upper()}"


def qr_matrix(payload: str) -> list[bytes]:
    """The QR code's modules, one ``bytes`` a row, non-zero for dark; error correction Q."""
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="Q")
    image = memoryview(barcode.to_image(scale=1, add_quiet_zones=False))
    size = image.shape[0]
    flat = image.tobytes()
    # The writer draws dark modules as black (0) pixels.
    return [flat[row * size:(row + 1) * size].translate(_DARK) for row in range(size)]


_DARK = bytes([1]) + bytes(255)


def _qr_path(rows: list[bytes]) -> bytes:
    """PDF path operators for the dark modules, in module units, one rectangle per run in a row."""
    size = len(rows)
    parts = []
    for r, row in enumerate(rows):
        y = size - 1 - r
        c = 0
        while c < size:
            if row[c]:
                start = c
                while c < size and row[c]:
                    c += 1
                parts.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    return "\n".join(parts).encode()


def _pdf_string(text: str) -> bytes:
    data = text.encode("cp1252", "replace")
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of ``text`` in Helvetica (or Helvetica-Bold) at ``size`` points."""
    widths = HELVETICA_BOLD if bold else HELVETICA
    return sum(widths[b] for b in text.encode("cp1252", "replace")) * size / 1000


def _clean(text: str) -> str:
    """Keep text WinAnsi can show; anything else becomes '?' rather than breaking the page."""
    return " ".join(text.encode("cp1252", "replace").decode("cp1252").split())


def _ellipsize(text: str, size: float, width: float, bold: bool) -> str:
    if text_width(text, size, bold) <= width:
        return text
    while text and text_width(text + ELLIPSIS, size, bold) > width:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS


def _wrap(text: str, size: float, width: float, bold: bool, max_lines: int) -> list[str]:
    """Break ``text`` at spaces into at most ``max_lines`` lines, the last cut short if need be."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and text_width(f"{line} {words[0]}", size, bold) <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:
        lines[-1] = f"{lines[-1]} {' '.join(words)}"
    return [_ellipsize(line, size, width, bold) for line in lines]


@dataclass
class _Line:
    text: str
    size: float
    bold: bool


@dataclass
class LabelLayout:
    """Where things go on one label of a stock, relative to the label's bottom-left corner (mm)."""

    stock: LabelStock
    qr_box: float = field(init=False)
    text_left: float = field(init=False)
    text_width: float = field(init=False)

    def __post_init__(self):
        stock = self.stock
        self.qr_box = min(stock.label_height, stock.label_width * QR_SHARE_OF_WIDTH) - 2 * stock.padding
        self.text_left = stock.padding + self.qr_box
        self.text_width = stock.label_width - stock.padding - self.text_left
        self.text_height = stock.label_height - 2 * stock.padding

    def module_size(self, modules: int) -> float:
        return self.qr_box / (modules + 2 * QUIET_ZONE_MODULES)

    def text_lines(self, content: LabelContent) -> list[_Line]:
        """Fit the title, lines and footer into the text column: shrink, then wrap, then cut."""
        width_pt = self.text_width * PT_PER_MM
        height_pt = self.text_height * PT_PER_MM
        title_size = min(height_pt * 0.3, 30.0)
        title = _clean(content.title)
        # Shrunk to fit, a hair under the width: exactly the width may round to a little over, and cut it.
        title_size = max(SMALLEST_TEXT_PT, min(title_size, 0.999 * width_pt / max(text_width(title, 1, True), 0.001)))
        out = [_Line(_ellipsize(title, title_size, width_pt, True), title_size, True)]
        body_size = max(SMALLEST_TEXT_PT, min(height_pt * 0.14, title_size * 0.75, 14.0))
        for raw in content.lines:
            text = _clean(raw)
            if not text:
                continue
            fitted = min(body_size, width_pt / max(text_width(text, 1), 0.001))
            if fitted >= body_size * 0.8:
                out.append(_Line(text, fitted, False))
            else:
                out.extend(_Line(t, body_size * 0.8, False) for t in _wrap(text, body_size * 0.8, width_pt, False, 2))
        footer = _clean(content.footer)
        if footer:
            size = max(SMALLEST_TEXT_PT, min(body_size * 0.85, width_pt / max(text_width(footer, 1), 0.001)))
            out.extend(_Line(t, size, False) for t in _wrap(footer, size, width_pt, False, 2))
        # Too tall for the label: drop body lines from the end, keeping the title and footer.
        while len(out) > 2 and sum(line.size * 1.2 for line in out) > height_pt:
            out.pop(-2)
        return out


class LabelRenderer:
    """Render labels of one stock into a PDF, starting at any position of the first sheet."""

    def __init__(self, stock: LabelStock, *, min_module_mm: float = MIN_MODULE_MM):
        self.stock = stock
        self.layout = LabelLayout(stock)
        self.min_module_mm = min_module_mm

    def label_stream(self, content: LabelContent, left_mm: float, bottom_mm: float) -> bytes:
        """The PDF operators drawing one label whose bottom-left corner is at the given point."""
        stock, layout = self.stock, self.layout
        rows = qr_matrix(content.payload)
        modules = len(rows)
        module = layout.module_size(modules)
        if module < self.min_module_mm:
            raise LabelError(
                f"The QR code for {content.payload} would have {module:.2f} mm modules on {stock.name}, "
                f"under the {self.min_module_mm} mm that scans reliably; use a larger stock or a shorter "
                "PUBLIC_BASE_URL."
            )
        quiet = QUIET_ZONE_MODULES * module
        qr_x = (left_mm + stock.padding + quiet) * PT_PER_MM
        # The code sits centred vertically on the label.
        qr_y = (bottom_mm + (stock.label_height - layout.qr_box) / 2 + quiet) * PT_PER_MM
        scale = module * PT_PER_MM
        out = [f"q {scale:.4f} 0 0 {scale:.4f} {qr_x:.3f} {qr_y:.3f} cm".encode(), _qr_path(rows), b"f Q"]

        lines = layout.text_lines(content)
        total = sum(line.size * 1.2 for line in lines)
        x = (left_mm + layout.text_left) * PT_PER_MM
        top = (bottom_mm + stock.padding) * PT_PER_MM + (layout.text_height * PT_PER_MM + total) / 2
        out.append(b"BT")
        y = top
        for line in lines:
            y -= line.size * 1.2
            font = b"/F1" if line.bold else b"/F2"
            # Baseline a fifth of the line box up leaves room for descenders.
            out.append(b"%s %.2f Tf 1 0 0 1 %.3f %.3f Tm %s Tj" % (
                font, line.size, x, y + line.size * 0.25, _pdf_string(line.text)))
        out.append(b"ET")
        return b"\n".join(out)

    def render(
        self,
        labels: Iterable[LabelContent],
        *,
        start: int = 1,
        progress: Callable[[int], None] | None = None,
        output: io.BufferedIOBase | None = None,
    ) -> bytes | None:
        """Write the labels as a PDF, the first at 1-based ``start`` on the first sheet.

        Returns the PDF's bytes, or writes it to ``output`` and returns None.
        """
        stock = self.stock
        stock.check_start(start)
        pdf = pydyf.PDF()
        fonts = pydyf.Dictionary({
            "F1": pydyf.Dictionary({"Type": "/Font", "Subtype": "/Type1", "BaseFont": "/Helvetica-Bold",
                                    "Encoding": "/WinAnsiEncoding"}),
            "F2": pydyf.Dictionary({"Type": "/Font", "Subtype": "/Type1", "BaseFont": "/Helvetica",
                                    "Encoding": "/WinAnsiEncoding"}),
        })
        resources = pydyf.Dictionary({"Font": fonts})
        pdf.add_object(resources)
        media_box = pydyf.Array([0, 0, round(stock.page_width * PT_PER_MM, 3),
                                 round(stock.page_height * PT_PER_MM, 3)])
        position = start
        page_parts: list[bytes] = []
        count = 0

        def finish_page():
            # Compress each page as it is finished, so 10,000 labels stay small in memory.
            stream = pydyf.Stream([zlib.compress(b"\n".join(page_parts), 6)],
                                  extra={"Filter": "/FlateDecode"})
            pdf.add_object(stream)
            page = pydyf.Dictionary({"Type": "/Page", "Parent": pdf.pages.reference, "MediaBox": media_box,
                                     "Resources": resources.reference, "Contents": stream.reference})
            pdf.add_object(page)
            pdf.add_page(page)
            page_parts.clear()

        for content in labels:
            left, top = stock.cell(position)
            bottom = stock.page_height - top - stock.label_height
            page_parts.append(self.label_stream(content, left, bottom))
            count += 1
            if progress is not None:
                progress(1)
            position += 1
            if position > stock.per_page:
                finish_page()
                position = 1
        if not count:
            raise LabelError("There are no labels to print.")
        if page_parts:
            finish_page()
        pdf.info["Producer"] = pydyf.String("loanservice labels")
        pdf.info["Title"] = pydyf.String(f"Labels on {stock.name}")
        if output is not None:
            pdf.write(output)
            return None
        buffer = io.BytesIO()
        pdf.write(buffer)
        return buffer.getvalue()


def render_labels(stock: LabelStock, labels: Iterable[LabelContent], *, start: int = 1,
                  progress: Callable[[int], None] | None = None) -> bytes:
    """Render ``labels`` on ``stock`` into PDF bytes."""
    return LabelRenderer(stock).render(labels, start=start, progress=progress)
