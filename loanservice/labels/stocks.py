"""Label stocks: one TOML file per stock in the top-level ``labels/`` folder.

Adding a stock means adding a file; the loader checks every file and refuses one whose
geometry does not fit its page, so a typo cannot print labels across the die cuts.
"""
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InvalidInput

STOCK_DIR = Path(__file__).resolve().parent.parent.parent / "labels"

# Printers place a page to within about a millimetre: keep this much clear inside each label.
DEFAULT_PADDING_MM = 1.0
# Rounding in published templates: allow this much when checking that a layout fits.
TOLERANCE_MM = 0.05

_NUMBERS = ("page_width", "page_height", "label_width", "label_height", "left_margin", "top_margin",
            "horizontal_pitch", "vertical_pitch")
_COUNTS = ("columns", "rows")


class LabelStockError(InvalidInput):
    """A stock file is malformed, or a stock was asked for that does not exist."""


class UnknownStock(LabelStockError):
    pass


@dataclass(frozen=True)
class LabelStock:
    """One label stock's geometry, all lengths in millimetres, measured from the page's top left."""

    name: str
    title: str
    page_width: float
    page_height: float
    label_width: float
    label_height: float
    columns: int
    rows: int
    left_margin: float
    top_margin: float
    horizontal_pitch: float
    vertical_pitch: float
    padding: float = DEFAULT_PADDING_MM

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def cell(self, position: int) -> tuple[float, float]:
        """The top-left corner (mm from the page's top left) of the label at 1-based ``position``."""
        row, column = divmod(position - 1, self.columns)
        return (self.left_margin + column * self.horizontal_pitch, self.top_margin + row * self.vertical_pitch)

    def check_start(self, start: int) -> None:
        """Refuse a start position that is not on the sheet."""
        if not 1 <= start <= self.per_page:
            where = "the only position" if self.per_page == 1 else f"a position from 1 to {self.per_page}"
            raise InvalidInput(
                f"Start position {start} is not on a {self.name} sheet; choose {where}.", field="start"
            )


def parse_stock(data: dict, source: str) -> LabelStock:
    """Build a stock from a parsed file, or raise LabelStockError saying what is wrong."""
    def fail(problem: str):
        raise LabelStockError(f"Label stock file {source}: {problem}.")

    missing = [key for key in ("name", *_NUMBERS, *_COUNTS) if key not in data]
    if missing:
        fail(f"missing {', '.join(missing)}")
    unknown = set(data) - {"name", "title", "padding", *_NUMBERS, *_COUNTS}
    if unknown:
        fail(f"unknown setting {', '.join(sorted(unknown))}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip() or not name.replace("-", "").isalnum():
        fail("name must be letters, digits and hyphens")
    values = {}
    for key in (*_NUMBERS, "padding"):
        value = data.get(key, DEFAULT_PADDING_MM if key == "padding" else None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            fail(f"{key} must be a number of millimetres, 0 or more")
        values[key] = float(value)
    for key in _COUNTS:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{key} must be a whole number, 1 or more")
        values[key] = value
    stock = LabelStock(name=name.strip().upper(), title=str(data.get("title") or name), **values)
    for size, length in (("label_width", stock.label_width), ("label_height", stock.label_height)):
        if length <= 2 * stock.padding:
            fail(f"{size} is too small for its padding")
    if stock.columns > 1 and stock.horizontal_pitch + TOLERANCE_MM < stock.label_width:
        fail("horizontal_pitch is less than label_width, so labels would overlap")
    if stock.rows > 1 and stock.vertical_pitch + TOLERANCE_MM < stock.label_height:
        fail("vertical_pitch is less than label_height, so labels would overlap")
    right = stock.left_margin + (stock.columns - 1) * stock.horizontal_pitch + stock.label_width
    bottom = stock.top_margin + (stock.rows - 1) * stock.vertical_pitch + stock.label_height
    if right > stock.page_width + TOLERANCE_MM:
        fail(f"the labels reach {right:.2f} mm across a {stock.page_width:g} mm page")
    if bottom > stock.page_height + TOLERANCE_MM:
        fail(f"the labels reach {bottom:.2f} mm down a {stock.page_height:g} mm page")
    return stock


def load_stock_file(path: Path) -> LabelStock:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise LabelStockError(f"Label stock file {path.name} cannot be read: {error}.") from error
    return parse_stock(data, path.name)


@lru_cache(maxsize=8)
def _load_stocks(directory: Path, stamp: tuple) -> dict[str, LabelStock]:
    stocks: dict[str, LabelStock] = {}
    for path in sorted(directory.glob("*.toml")):
        stock = load_stock_file(path)
        if stock.name in stocks:
            raise LabelStockError(f"Label stock {stock.name} is defined twice (see {path.name}).")
        stocks[stock.name] = stock
    return stocks


def load_stocks(directory: Path | None = None) -> dict[str, LabelStock]:
    """Every stock in ``directory`` (the shipped ``labels/`` by default), by name."""
    directory = Path(directory or STOCK_DIR)
    # Re-read when a file is added or changed, without a restart.
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob("*.toml")))
    return _load_stocks(directory, stamp)


def _key(name: str) -> str:
    return "".join((name or "").split()).upper()


def get_stock(name: str, directory: Path | None = None) -> LabelStock:
    """The stock called ``name`` (any case), or UnknownStock naming the ones there are."""
    stocks = load_stocks(directory)
    stock = stocks.get(_key(name))
    if stock is None:
        raise UnknownStock(
            f"Unknown label stock {name!r}; choose one of {', '.join(sorted(stocks))}.", field="stock"
        )
    return stock
