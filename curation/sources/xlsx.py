"""Read the rows of one worksheet of an .xlsx file with the standard library only.

SCUT-FBP5500 ships its per-rater ratings as All_Ratings.xlsx. An .xlsx file is a zip of XML
parts (ECMA-376): xl/workbook.xml lists the sheets, xl/_rels/workbook.xml.rels maps each to its
part, xl/sharedStrings.xml holds the text cells refer to by index. That is all a table of
numbers and names needs, so no spreadsheet library is added for it. Rows are streamed
(expat, no tree) so a 330,000-row sheet stays small in memory. Dates, styles and formulas are not
interpreted: a cell gives its stored value (str, float, bool) or None.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET
from xml.parsers import expat

Cell = str | float | bool | None


class XlsxError(ValueError):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(el: ET.Element, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (r:id in either OOXML flavour)."""
    for key, value in el.attrib.items():
        if _local(key) == name:
            return value
    return None


def _text(el: ET.Element) -> str:
    """The text of a shared string or inline string: every <t> under it (rich text runs too)."""
    return "".join(t.text or "" for t in el.iter() if _local(t.tag) == "t")


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise XlsxError(f"not an .xlsx workbook ({exc})") from exc


def sheet_names(path: Path) -> list[str]:
    with _open(path) as zf:
        return [name for name, _ in _sheets(zf)]


def _sheets(zf: zipfile.ZipFile) -> list[tuple[str, str]]:
    """[(sheet name, part name in the zip)] in workbook order."""
    try:
        workbook = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except KeyError as exc:
        raise XlsxError(f"not an .xlsx workbook (missing {exc.args[0]})") from exc
    except ET.ParseError as exc:
        raise XlsxError(f"broken workbook XML: {exc}") from exc
    targets = {}
    for rel in rels.iter():
        if _local(rel.tag) == "Relationship":
            target = rel.get("Target", "")
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            targets[rel.get("Id")] = str(PurePosixPath(part))
    sheets = []
    for el in workbook.iter():
        if _local(el.tag) == "sheet":
            rid = _attr(el, "id")
            if rid in targets:
                sheets.append((el.get("name", ""), targets[rid]))
    return sheets


def _shared_strings(zf: zipfile.ZipFile) -> list[str]:
    try:
        data = zf.read("xl/sharedStrings.xml")
    except KeyError:
        return []
    try:
        return [_text(si) for si in ET.fromstring(data) if _local(si.tag) == "si"]
    except ET.ParseError as exc:
        raise XlsxError(f"broken shared strings XML: {exc}") from exc


class _SheetHandler:
    """expat callbacks that turn <row>/<c>/<v> (and inline <is><t>) into lists of cell values.

    expat without a tree: on a 330,000-row sheet it is several times faster than ElementTree's
    iterparse, which builds an element for every cell only to throw it away.
    """

    def __init__(self, strings: list[str]) -> None:
        self.strings = strings
        self.done: list[tuple[int, list[Cell]]] = []
        self.cells: list[Cell] | None = None
        self.number = 0
        self.next_number = 1
        self.ref: str | None = None
        self.kind = "n"
        self.value: str | None = None
        self.inline: list[str] | None = None
        self.buf: list[str] | None = None
        self.columns: dict[str, int] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = name[name.rfind(":") + 1 :]
        if tag == "c" and self.cells is not None:
            self.ref, self.kind = attrs.get("r"), attrs.get("t", "n")
            self.value, self.inline = None, None
        elif tag == "v" and self.cells is not None:
            self.buf = []
        elif tag == "is":
            self.inline = []
        elif tag == "t" and self.inline is not None:
            self.buf = []
        elif tag == "row":
            r = attrs.get("r")
            self.number = int(r) if r and r.isdigit() else self.next_number
            self.next_number = self.number + 1
            self.cells = []

    def data(self, text: str) -> None:
        if self.buf is not None:
            self.buf.append(text)

    def end(self, name: str) -> None:
        tag = name[name.rfind(":") + 1 :]
        if tag == "v" and self.buf is not None:
            self.value, self.buf = "".join(self.buf), None
        elif tag == "t" and self.buf is not None:
            if self.inline is not None:
                self.inline.append("".join(self.buf))
            self.buf = None
        elif tag == "c" and self.cells is not None:
            self._cell()
        elif tag == "row" and self.cells is not None:
            cells = self.cells
            while cells and cells[-1] is None:
                cells.pop()
            self.done.append((self.number, cells))
            self.cells = None

    def _column(self, ref: str | None) -> int:
        cells = self.cells or []
        if not ref:
            return len(cells)
        letters = ref.rstrip("0123456789")
        col = self.columns.get(letters)
        if col is None:
            col = 0
            for ch in letters.upper():
                if not "A" <= ch <= "Z":
                    return len(cells)
                col = col * 26 + ord(ch) - 64
            col -= 1
            self.columns[letters] = col
        return col

    def _cell(self) -> None:
        kind, v = self.kind, self.value
        value: Cell
        if kind == "inlineStr":
            value = "".join(self.inline or [])
        elif v is None:
            value = None
        elif kind == "s":
            try:
                value = self.strings[int(v)]
            except (IndexError, ValueError) as exc:
                raise XlsxError(f"cell {self.ref} refers to a missing shared string {v!r}") from exc
        elif kind in ("str", "e"):
            value = v
        elif kind == "b":
            value = v.strip() == "1"
        else:
            try:
                value = float(v)
            except ValueError:
                value = v
        cells = self.cells
        assert cells is not None
        col = self._column(self.ref)
        if col < len(cells):
            cells[col] = value
        else:
            cells.extend([None] * (col - len(cells)))
            cells.append(value)
        self.inline = None


def iter_rows(path: Path, sheet: str | None = None) -> Iterator[tuple[int, list[Cell]]]:
    """(1-based row number, cell values by column) of a sheet: `sheet` by name, or the first.

    Empty cells are None; a row is as long as its last non-empty cell. Raises XlsxError for a
    file that is not a readable workbook or has no such sheet.
    """
    with _open(path) as zf:
        sheets = _sheets(zf)
        if not sheets:
            raise XlsxError("the workbook has no sheets")
        if sheet is None:
            part = sheets[0][1]
        else:
            match = [p for name, p in sheets if name == sheet]
            if not match:
                raise XlsxError(f"no sheet named {sheet!r} (sheets: {[n for n, _ in sheets]})")
            part = match[0]
        strings = _shared_strings(zf)
        try:
            fh = zf.open(part)
        except KeyError as exc:
            raise XlsxError(f"the workbook lacks its sheet part {part}") from exc
        handler = _SheetHandler(strings)
        parser = expat.ParserCreate()
        parser.StartElementHandler = handler.start
        parser.EndElementHandler = handler.end
        parser.CharacterDataHandler = handler.data
        parser.buffer_text = True
        with fh:
            try:
                while chunk := fh.read(1 << 16):
                    parser.Parse(chunk, False)
                    yield from handler.done
                    handler.done.clear()
                parser.Parse(b"", True)
                yield from handler.done
            except expat.ExpatError as exc:
                raise XlsxError(f"broken sheet XML in {part}: {exc}") from exc
