"""The standard-library .xlsx reader behind SCUT-FBP5500's All_Ratings.xlsx."""

from __future__ import annotations

import zipfile

import pytest

from curation.sources.xlsx import XlsxError, iter_rows, sheet_names

from .conftest import MAIN, PKG, REL, Inline, write_xlsx


def test_cells_by_column_with_gaps(tmp_path):
    book = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "First": [["a", None, 3], [None, None, None], [1.5, Inline("x & y"), None, "z"]],
            "Second": [["only"]],
        },
    )
    assert sheet_names(book) == ["First", "Second"]
    # row 2 has no cells at all: an empty row; trailing empty cells are not padded
    assert list(iter_rows(book)) == [(1, ["a", None, 3.0]), (2, []), (3, [1.5, "x & y", None, "z"])]
    assert list(iter_rows(book, "Second")) == [(1, ["only"])]
    with pytest.raises(XlsxError, match="no sheet named 'Third'"):
        list(iter_rows(book, "Third"))


def test_rich_text_booleans_formulas_and_prefixed_tags(tmp_path):
    """What Excel and other writers also produce: runs, t="b", t="str", an x: prefix."""
    book = tmp_path / "rich.xlsx"
    sheet = (
        f'<x:worksheet xmlns:x="{MAIN}"><x:sheetData>'
        '<x:row r="4"><x:c r="B4" t="s"><x:v>0</x:v></x:c><x:c r="C4" t="b"><x:v>1</x:v></x:c>'
        '<x:c r="D4" t="str"><x:f>A1&amp;"!"</x:f><x:v>hi!</x:v></x:c>'
        '<x:c r="E4"><x:v>2e1</x:v></x:c></x:row>'
        '<x:row><x:c t="inlineStr"><x:is><x:r><x:t>in</x:t></x:r><x:r><x:t>line</x:t></x:r>'
        "</x:is></x:c></x:row>"
        "</x:sheetData></x:worksheet>"
    )
    with zipfile.ZipFile(book, "w") as zf:
        zf.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId7"/></sheets></workbook>',
        )
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PKG}"><Relationship Id="rId7" Type="{REL}/worksheet" '
            'Target="/xl/worksheets/data.xml"/></Relationships>',
        )
        zf.writestr(
            "xl/sharedStrings.xml",
            f'<sst xmlns="{MAIN}"><si><r><t>CF</t></r><r><t xml:space="preserve">437.jpg</t>'
            "</r></si></sst>",
        )
        zf.writestr("xl/worksheets/data.xml", sheet)
    assert list(iter_rows(book)) == [
        (4, [None, "CF437.jpg", True, "hi!", 20.0]),
        (5, ["inline"]),
    ]


def test_broken_workbooks(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK not really")
    with pytest.raises(XlsxError, match=r"not an \.xlsx workbook"):
        list(iter_rows(bad))
    half = tmp_path / "half.xlsx"
    with zipfile.ZipFile(half, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(XlsxError, match="missing"):
        sheet_names(half)
    good = write_xlsx(tmp_path / "good.xlsx", {"S": [["a"]]})
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # cut off mid-sheet
            dst.writestr(name, data)
    with pytest.raises(XlsxError, match="broken sheet XML"):
        list(iter_rows(broken))
