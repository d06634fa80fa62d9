"""QR labels: every shipped stock prints codes that scan to the right instrument, in the right cell."""
import re

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from loanservice.audit.models import AuditEvent
from loanservice.errors import InvalidInput
from loanservice.inventory.models import Instrument
from loanservice.labels import services
from loanservice.labels.render import (
    MIN_MODULE_MM,
    QUIET_ZONE_MODULES,
    LabelContent,
    LabelError,
    LabelLayout,
    LabelRenderer,
    label_url,
    qr_matrix,
)
from loanservice.labels.stocks import LabelStockError, UnknownStock, get_stock, load_stocks, parse_stock

from .conftest import decode_pdf, in_app, label_pdf_text, tags_of

SHIPPED = ["L7159", "L7160", "L7163", "L7165", "L7651", "QL62"]


@pytest.fixture
def instruments(factory):
    """Three dozen instruments of mixed types and sizes, returned as their tags."""
    violin = factory.instrument_type("Violin", sizes=("1/4", "1/2", "3/4", "4/4"))
    clarinet = factory.instrument_type("Clarinet (B flat)", family="woodwind", sizes=())
    ukulele = factory.instrument_type("Ukulele (soprano)", family="strings", sizes=())
    tags = []
    for n in range(36):
        kind = (violin, clarinet, ukulele)[n % 3]
        size = violin.sizes[n % 4] if kind is violin else ""
        tags.append(factory.instrument(kind, size=size).asset_tag)
    return tags


def test_shipped_stocks_load_and_fit_an_a4_sheet():
    stocks = load_stocks()
    assert sorted(stocks) == SHIPPED
    expected = {"L7159": 24, "L7160": 21, "L7163": 14, "L7165": 8, "L7651": 65, "QL62": 1}
    for name, stock in stocks.items():
        assert stock.per_page == expected[name]
        if name.startswith("L"):
            # Avery's templates are symmetric: the margins and pitches add up to A4 exactly.
            across = 2 * stock.left_margin + (stock.columns - 1) * stock.horizontal_pitch + stock.label_width
            down = 2 * stock.top_margin + (stock.rows - 1) * stock.vertical_pitch + stock.label_height
            assert (round(across, 2), round(down, 2)) == (210.0, 297.0), name


@pytest.mark.parametrize("stock_name", SHIPPED)
def test_every_label_scans_to_its_own_instrument_inside_its_cell(app, instruments, stock_name):
    stock = get_stock(stock_name)
    # Part-way down a part-used sheet: the second column of the third row.
    start = min(stock.per_page, 2 * stock.columns + 2)
    with in_app(app) as session:
        chosen = services.select_for_labels(session, tags=instruments)
        pdf = services.print_labels(session, None, chosen, stock, start=start,
                                    base_url=app.config["PUBLIC_BASE_URL"], hub_name="Test Hub")
        session.commit()

    decoded = decode_pdf(pdf)
    by_url = {text: (page, corners) for page, text, corners in decoded}
    assert len(decoded) == len(by_url) == len(instruments), "each label decoded exactly once"
    for k, tag in enumerate(instruments):
        url = f"HTTP://HUB.TEST/I/{tag}"
        assert url in by_url, f"{tag} did not scan"
        page, corners = by_url[url]
        position = start + k
        assert page == (position - 1) // stock.per_page
        left, top = stock.cell((position - 1) % stock.per_page + 1)
        for x, y in corners:
            assert left < x < left + stock.label_width, (tag, x, left)
            assert top < y < top + stock.label_height, (tag, y, top)

    text = label_pdf_text(pdf)
    assert all(tag in text for tag in instruments)
    assert "Clarinet (B flat)" in text and "Size 3/4" in text and "Test Hub" in text
    with in_app(app) as session:
        assert session.scalar(select(Instrument).where(Instrument.labelled_at.is_(None))) is None


def test_the_code_is_short_upper_case_level_q_with_modules_of_half_a_millimetre_on_the_smallest_stock():
    payload = label_url("http://hub.test", "MIX-000001")
    assert payload == "HTTP://HUB.TEST/I/MIX-000001"
    rows = qr_matrix(payload)
    # 28 characters fit version 2 (25 modules) at level Q only in alphanumeric mode.
    assert len(rows) == 25
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="Q")
    assert barcode.ec_level == "Q"
    layout = LabelLayout(get_stock("L7651"))
    assert layout.module_size(len(rows)) >= 0.5
    # A realistic production address gets half-millimetre modules on the smallest stock...
    production = label_url("https://loans.examplehub.org.uk", "MIX-000001")
    assert layout.module_size(len(qr_matrix(production))) >= 0.5
    # ...and a longer one still prints, just above the floor.
    longer = label_url("https://instrument-loans.example-music-hub.org.uk", "MIX-000001")
    assert MIN_MODULE_MM <= layout.module_size(len(qr_matrix(longer))) < 0.5
    assert QUIET_ZONE_MODULES == 4


def test_a_base_url_with_a_path_keeps_the_paths_case():
    assert label_url("https://hub.example/Loans/", "mix-1") == "HTTPS://HUB.EXAMPLE/Loans/I/MIX-1"


def test_a_code_too_dense_for_the_stock_is_refused_clearly():
    renderer = LabelRenderer(get_stock("L7651"))
    content = LabelContent(payload="HTTPS://" + "X" * 120 + "/I/MIX-000001", title="MIX-000001")
    with pytest.raises(LabelError, match="use a larger stock"):
        renderer.render([content])


def test_long_text_is_fitted_not_spilled():
    stock = get_stock("L7651")
    content = LabelContent(payload="HTTP://HUB.TEST/I/MIX-000001", title="MIX-000001",
                           lines=("Double bass (electric, five-string, left-handed)", "Size 1/10"),
                           footer="The Very Long Name of a Music Education Hub Partnership")
    pdf = LabelRenderer(stock).render([content])
    assert [text for _, text, _ in decode_pdf(pdf)] == ["HTTP://HUB.TEST/I/MIX-000001"]
    document = pdfium.PdfDocument(pdf)
    textpage = document[0].get_textpage()
    left, top = stock.cell(1)
    page_height = stock.page_height * 72 / 25.4
    for i in range(textpage.count_rects()):
        x0, y0, x1, y1 = (v * 25.4 / 72 for v in textpage.get_rect(i))
        assert left <= x0 and x1 <= left + stock.label_width + 0.2
        assert top <= page_height * 25.4 / 72 - y1 and page_height * 25.4 / 72 - y0 <= top + stock.label_height
    document.close()


@pytest.mark.parametrize("stock_name", SHIPPED)
@pytest.mark.parametrize("title", ["SET-UKU-A", "SET-VIO-A", "MIX-000020", "SET-DJEMBE-B", "UKE-1"])
def test_a_tag_is_shrunk_to_fit_never_cut(stock_name, title):
    """The tag is what people read out and type: it is printed whole on every stock."""
    from loanservice.labels.render import LabelLayout

    content = LabelContent(payload=f"HTTP://HUB.TEST/I/{title}", title=title, lines=("Ukulele set A", "19 instruments"),
                           footer="Demo Music Hub")
    [title_line, *_] = LabelLayout(get_stock(stock_name)).text_lines(content)
    assert title_line.text == title


def test_non_latin_text_does_not_break_the_page():
    content = LabelContent(payload="HTTP://HUB.TEST/I/MIX-1", title="MIX-1", lines=("Erhu 二胡",), footer="Hub ☺")
    pdf = LabelRenderer(get_stock("L7160")).render([content])
    assert "Erhu ??" in label_pdf_text(pdf)


def test_start_past_the_end_of_the_sheet_is_refused():
    for name, bad in (("L7160", 22), ("L7160", 0), ("L7651", 66), ("QL62", 2)):
        with pytest.raises(InvalidInput, match="not on a"):
            LabelRenderer(get_stock(name)).render(
                [LabelContent(payload="HTTP://HUB.TEST/I/MIX-1", title="MIX-1")], start=bad)


def test_the_last_position_on_a_sheet_prints_there_and_the_next_label_starts_a_new_sheet():
    stock = get_stock("L7160")
    labels = [LabelContent(payload=f"HTTP://HUB.TEST/I/MIX-{n}", title=f"MIX-{n}") for n in (1, 2)]
    decoded = decode_pdf(LabelRenderer(stock).render(labels, start=21))
    assert [(page, text) for page, text, _ in sorted(decoded)] == [
        (0, "HTTP://HUB.TEST/I/MIX-1"), (1, "HTTP://HUB.TEST/I/MIX-2")]


def test_an_unknown_stock_is_named_with_the_ones_there_are():
    with pytest.raises(UnknownStock, match="Unknown label stock 'L9999'; choose one of L7159, L7160"):
        get_stock("L9999")
    assert get_stock(" l7160 ").name == "L7160"


def test_a_stock_file_is_checked(tmp_path):
    good = dict(name="T1", page_width=210, page_height=297, label_width=100, label_height=50, columns=2, rows=5,
                left_margin=5, top_margin=10, horizontal_pitch=100, vertical_pitch=50)
    assert parse_stock(good, "t1.toml").per_page == 10
    bad_cases = [
        ({"columns": 3}, "reach 305.00 mm across"),
        ({"vertical_pitch": 40}, "overlap"),
        ({"rows": 0}, "whole number"),
        ({"label_width": "wide"}, "number of millimetres"),
        ({"colour": "red"}, "unknown setting colour"),
    ]
    for change, message in bad_cases:
        with pytest.raises(LabelStockError, match=message):
            parse_stock({**good, **change}, "t1.toml")
    with pytest.raises(LabelStockError, match="missing rows"):
        parse_stock({k: v for k, v in good.items() if k != "rows"}, "t1.toml")
    # Adding a stock is adding a file.
    (tmp_path / "t1.toml").write_text("\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in good.items()))
    assert list(load_stocks(tmp_path)) == ["T1"]
    (tmp_path / "broken.toml").write_text("name = ")
    with pytest.raises(LabelStockError, match="broken.toml cannot be read"):
        load_stocks(tmp_path)


# ---------------------------------------------------------------- the pages


def test_print_one_instrument_from_its_page_and_record_it(app, staff_client, factory):
    instrument = factory.instrument(factory.instrument_type("Violin"))
    detail = staff_client.get(f"/instruments/{instrument.asset_tag}").get_data(as_text=True)
    assert f"/labels/print?tag={instrument.asset_tag}" in detail and "Print label" in detail
    form = staff_client.get(f"/labels/print?tag={instrument.asset_tag}")
    assert form.status_code == 200 and "One label" in form.get_data(as_text=True)

    response = staff_client.post("/labels/print", data={"tag": instrument.asset_tag, "stock": "L7163", "start": "3"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    [(page, text, corners)] = decode_pdf(response.data)
    assert text == f"HTTP://HUB.TEST/I/{instrument.asset_tag}"
    left, top = get_stock("L7163").cell(3)
    assert all(left < x < left + 99.1 and top < y < top + 38.1 for x, y in corners)
    with in_app(app) as session:
        assert session.scalar(select(Instrument.labelled_at)) is not None
        summaries = session.scalars(select(AuditEvent.summary).where(AuditEvent.action == "instrument.labelled"))
        assert list(summaries) == ["Label printed on L7163"]
    again = staff_client.get(f"/instruments/{instrument.asset_tag}").get_data(as_text=True)
    assert "Reprint label" in again
    assert staff_client.post("/labels/print", data={"tag": instrument.asset_tag, "stock": "QL62",
                                                    "start": "1"}).status_code == 200
    with in_app(app) as session:
        assert "Label reprinted on QL62" in session.scalars(select(AuditEvent.summary)).all()


def test_print_a_selection_from_the_list(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    tags = [factory.instrument(violin).asset_tag for _ in range(4)]
    listing = staff_client.get("/instruments").get_data(as_text=True)
    assert '<form id="bulk"' in listing
    chosen = staff_client.get("/labels/print", query_string=[("selection", "1"), ("tag", tags[1]), ("tag", tags[3])])
    page = chosen.get_data(as_text=True)
    assert chosen.status_code == 200 and "2 chosen instruments" in page and tags[1] in page and tags[0] not in page
    response = staff_client.post("/labels/print", data={"tag": [tags[1], tags[3]], "stock": "L7160", "start": "1"})
    assert [text for _, text, _ in decode_pdf(response.data)] == [f"HTTP://HUB.TEST/I/{t}" for t in (tags[1], tags[3])]


def test_print_every_unlabelled_instrument_then_there_are_none(app, staff_client, factory):
    violin = factory.instrument_type("Violin")
    for _ in range(3):
        factory.instrument(violin)
    landing = staff_client.get("/labels/print").get_data(as_text=True)
    assert "Every instrument in the store without a label</a> (3)" in landing
    response = staff_client.post("/labels/print", data={"scope": "unlabelled", "stock": "L7651", "start": "60"})
    assert response.status_code == 200
    assert len(pdfium.PdfDocument(response.data)) == 1
    assert len(decode_pdf(response.data)) == 3
    again = staff_client.post("/labels/print", data={"scope": "unlabelled", "stock": "L7651", "start": "1"})
    assert again.status_code == 422
    assert "Every instrument in the store already has a label" in again.get_data(as_text=True)


@pytest.mark.parametrize("data, status, message", [
    ({"tag": "MIX-999999", "stock": "L7160", "start": "1"}, 404, "Unknown tag"),
    ({"tag": "{tag}", "stock": "L9999", "start": "1"}, 422, "Unknown label stock"),
    ({"tag": "{tag}", "stock": "L7160", "start": "22"}, 422, "Start position 22 is not on a L7160 sheet"),
    ({"tag": "{tag}", "stock": "L7160", "start": "0"}, 422, "Positions start at 1"),
    ({"tag": "{tag}", "stock": "L7160", "start": "first"}, 422, "Not a valid integer"),
    ({"selection": "1", "stock": "L7160", "start": "1"}, 422, "Choose at least one instrument"),
    ({"stock": "L7160", "start": "1"}, 422, "Choose the instruments to label first"),
    ({"scope": "everything", "stock": "L7160", "start": "1"}, 422, "Choose at least one instrument"),
])
def test_bad_print_requests_get_a_clear_message_not_a_500(app, staff_client, factory, data, status, message):
    tag = factory.instrument(factory.instrument_type("Violin")).asset_tag
    data = {k: v.format(tag=tag) for k, v in data.items()}
    response = staff_client.post("/labels/print", data=data)
    assert response.status_code == status, response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    with in_app(app) as session:
        assert session.scalar(select(Instrument.labelled_at)) is None


def test_an_empty_selection_from_the_list_is_explained(staff_client):
    response = staff_client.get("/labels/print?selection=1")
    assert response.status_code == 422 and "Choose at least one instrument" in response.get_data(as_text=True)


def test_only_staff_print_labels(client, factory):
    from .conftest import login

    tag = factory.instrument(factory.instrument_type("Violin")).asset_tag
    assert client.post("/labels/print", data={"tag": tag, "stock": "L7160", "start": "1"}).status_code == 302
    login(client, factory.user("school"))
    assert client.post("/labels/print", data={"tag": tag, "stock": "L7160", "start": "1"}).status_code == 403


# ---------------------------------------------------------------- the command line


def test_cli_writes_the_pdf_with_progress_and_records_labelling(app, instruments, tmp_path):
    out = tmp_path / "labels.pdf"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["labels", "pdf", "--stock", "L7651", "--start", "40", "--unlabelled", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"Wrote 36 labels on 2 L7651 pages", result.output)
    assert len(decode_pdf(out.read_bytes())) == 36
    with in_app(app) as session:
        assert session.scalar(select(Instrument).where(Instrument.labelled_at.is_(None))) is None

    one = runner.invoke(args=["labels", "pdf", "--tag", instruments[0].lower(), "--tag", instruments[1],
                              "-o", str(tmp_path / "two.pdf")])
    assert one.exit_code == 0, one.output
    assert len(decode_pdf((tmp_path / "two.pdf").read_bytes())) == 2

    for args, message in [
        (["--stock", "L1", "--all"], "Unknown label stock 'L1'"),
        (["--start", "22", "--all"], "Start position 22 is not on a L7160 sheet"),
        (["--tag", "NOPE-1"], "Unknown tag"),
        (["--unlabelled"], "Every instrument in the store already has a label"),
        ([], "Say which instruments"),
    ]:
        bad = runner.invoke(args=["labels", "pdf", *args, "-o", str(tmp_path / "bad.pdf")])
        assert bad.exit_code != 0 and message in bad.output, (args, bad.output)

    stocks = runner.invoke(args=["labels", "stocks"])
    assert "L7651" in stocks.output and "65 a page" in stocks.output


def test_every_instrument_in_the_store_counts_and_prints_only_those_in_the_store(app, staff_client, factory):
    from loanservice.inventory.services import send_to_repair
    from loanservice.inventory.tags import resolve_instrument

    from .pages import submit

    violin = factory.instrument_type("Violin")
    on_shelf = sorted(factory.instrument(violin).asset_tag for _ in range(2))
    kit = factory.classroom_set(size=2)
    factory.check_out_set(kit, factory.school())  # out at a school
    at_repairer = factory.instrument(violin).asset_tag
    with in_app(app) as session:
        send_to_repair(session, None, resolve_instrument(session, at_repairer), repairer="Luthier", fault="Crack")
        session.commit()

    landing = staff_client.get("/labels/print").get_data(as_text=True)
    assert "Every instrument in the store</a> (2)" in landing
    assert "Every instrument in the store without a label</a> (2)" in landing
    assert "3 instruments without a label are out on loan or at a repairer" in landing
    chosen = staff_client.get("/labels/print?scope=all").get_data(as_text=True)
    assert "Every instrument in the store: 2" in chosen
    assert at_repairer not in chosen and tags_of(app, kit)[0] not in chosen
    response = submit(staff_client, "/labels/print?scope=all", {"stock": "L7160"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert sorted(text for _, text, _ in decode_pdf(response.data)) == [f"HTTP://HUB.TEST/I/{t}" for t in on_shelf]
