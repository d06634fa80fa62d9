"""``flask reports data-return`` and ``flask reports asset-register``: the funders' reports as workbooks
(or CSV when the file name ends in .csv)."""
from decimal import Decimal
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..errors import LoanServiceError
from ..extensions import db
from ..terminal import CommandError, echo
from . import exports
from .figures import RegisterFilters, SchoolYear, check_threshold, data_return, funding_sources

reports_cli = AppGroup("reports", help="The funders' reports: the data return and the asset register.")


def _write(path: str, content: bytes | str) -> None:
    target = Path(path)
    if not target.parent.is_dir():
        raise CommandError(f"There is no folder {target.parent} to write {target.name} into.")
    target.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


@reports_cli.command("data-return")
@click.option("--year", required=True, help="The school year, as 2025-26.")
@click.option("--threshold", default=None, help="Counts below this are shown as <N (default REPORT_MIN_COUNT).")
@click.option("-o", "--output", required=True, help="The file to write: .xlsx (a sheet per section) or .csv.")
def data_return_command(year, threshold, output):
    """The Arts Council data return for a school year, small counts hidden."""
    try:
        school_year = SchoolYear.parse(year)
        minimum = check_threshold(current_app.config["REPORT_MIN_COUNT"] if threshold is None else threshold)
    except LoanServiceError as error:
        raise CommandError(error.message) from None
    report = data_return(db.session, school_year, minimum)
    if output.lower().endswith(".csv"):
        _write(output, exports.data_return_csv(report))
    else:
        _write(output, exports.data_return_workbook(report, current_app.config["HUB_NAME"]))
    if report.is_empty:
        echo(f"No loans or sets were out in {school_year.label}: the return is empty.")
    echo(f"Wrote the data return for {school_year.label} to {output}.")


@reports_cli.command("asset-register")
@click.option("--funding", default="", help='Only instruments of this funding source ("DfE capital grant").')
@click.option("--year", default="", help="Only instruments bought in this school year (2024-25).")
@click.option("-o", "--output", required=True, help="The file to write: .xlsx or .csv.")
def asset_register_command(funding, year, output):
    """The capital-grant asset register: every instrument with its cost, funding and disposal."""
    try:
        filters = RegisterFilters(funding=funding.strip(), year=SchoolYear.parse(year) if year else None)
    except LoanServiceError as error:
        raise CommandError(error.message) from None
    if filters.funding and filters.funding not in funding_sources(db.session):
        known = ", ".join(funding_sources(db.session)) or "none recorded yet"
        raise CommandError(f"No instrument has the funding source “{filters.funding}”. Known: {known}.")
    capitalisation = Decimal(current_app.config["CAPITALISATION_THRESHOLD"])
    if output.lower().endswith(".csv"):
        _write(output, "".join(exports.asset_register_csv(db.session, filters, capitalisation)))
    else:
        _write(output, exports.asset_register_workbook(db.session, filters, capitalisation,
                                                       current_app.config["HUB_NAME"]))
    echo(f"Wrote the asset register to {output}.")
