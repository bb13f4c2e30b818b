"""Reading a suppression file: CSV with an email column, or one address a line.

Made for what other services export (Mailchimp "Email Address", SendGrid "email", ...):
the delimiter is the most frequent of ``,`` ``;`` TAB on the first line, a header is
recognised by a known column name, and without one the first column holding an ``@`` is
used. Every data line yields a ``Line`` with its physical line number; the reader never
decides validity, only reports lines it cannot use. Problems never repeat the line's text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

#: Header names of the address column (compared lower-cased, spaces and quotes trimmed).
EMAIL_HEADERS = frozenset({
    "email", "e-mail", "email address", "e-mail address", "emailaddress", "email_address", "mail",
    "address", "recipient", "e-mail-adresse", "email_id", "subscriber email",
})
#: Characters that make a spreadsheet treat a cell as a formula (standards J1).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PROBLEM = "Looks like a spreadsheet formula, not an address."


@dataclass(frozen=True)
class Line:
    #: 1-based physical line where the record starts.
    number: int
    #: The candidate address (export escaping removed), or None when there is none.
    value: str | None
    #: Why the line cannot be used, or None.
    problem: str | None = None
    #: The cell starts like a formula; an invalid address there is reported as such.
    formula: bool = False


@dataclass(frozen=True)
class Layout:
    delimiter: str
    column: int
    has_header: bool


def decode(content: bytes) -> str:
    """UTF-8 (a BOM is dropped); undecodable bytes survive as surrogates, so only the lines
    holding them are refused (as not valid Unicode) instead of the whole file."""
    return content.decode("utf-8-sig", errors="surrogateescape")


def detect(first_line: str) -> Layout:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    cells = next(csv.reader([first_line], delimiter=delimiter), [])
    names = [c.strip().strip('"').strip().lower() for c in cells]
    for index, name in enumerate(names):
        if name in EMAIL_HEADERS:
            return Layout(delimiter, index, True)
    for index, cell in enumerate(cells):
        if "@" in cell:
            return Layout(delimiter, index, False)
    return Layout(delimiter, 0, False)


def read_lines(text: str) -> Iterator[Line]:
    """Every data line of the file (blank lines and the header skipped), in order."""
    stream = io.StringIO(text, newline="")
    first = ""
    for raw in stream:
        if raw.strip():
            first = raw.rstrip("\r\n")
            break
    if not first:
        return
    layout = detect(first)
    stream.seek(0)
    reader = csv.reader(stream, delimiter=layout.delimiter)
    header_skipped = not layout.has_header
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            start, previous_end = previous_end + 1, reader.line_num
            yield Line(start, None, "The line is not valid CSV.")
            continue
        start, previous_end = previous_end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if not header_skipped:
            header_skipped = True
            continue
        yield cell_line(start, cells[layout.column] if layout.column < len(cells) else None)


def cell_line(number: int, cell: str | None) -> Line:
    if cell is None or not cell.strip():
        return Line(number, None, "No address in the email column.")
    formula = cell.startswith(FORMULA_START)
    value = cell.strip()
    # Our own exports (and careful spreadsheets) prefix formula-looking cells with a quote
    # (standards J4); the address is what follows it.
    if value.startswith("'") and value[1:2] and value[1] in "=+-@\t\r":
        value, formula = value[1:].strip(), True
    formula = formula or value.startswith(FORMULA_START)
    return Line(number, value, None, formula)


def count_rows(text: str) -> int:
    return sum(1 for _ in read_lines(text))
