"""The generic manifest: CSV and JSONL, relative and absolute paths, --scale and per-row scales."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.sources import PARSERS, MissingLabelFile, PathOutsideRoots, SourceFileError

from .conftest import SAMPLES

parse = PARSERS["manifest"]


def where(result) -> list[int | None]:
    return [e.line for e in result.errors]


def test_csv_with_scale_flag():
    res = parse(SAMPLES / "manifest" / "manifest.csv", scale=(1, 10))
    assert res.base == SAMPLES / "manifest"
    assert res.scale == (1.0, 10.0)
    got = [
        (r.path, r.raw_score, r.score_min, r.score_max, r.normalized, r.extra) for r in res.records
    ]
    assert got == [
        # the row's own scale [1, 5] wins over --scale: (4 - 1) / 4
        ("photos/a.jpg", 4.0, 1.0, 5.0, 0.75, {"photographer": "ann"}),
        # no score: no normalised score either; the scale it would have used is recorded
        ("photos/b.jpg", None, 1.0, 10.0, None, {"photographer": "bob"}),
        # score on --scale [1, 10]: (7.5 - 1) / 9 = 13/18; the empty photographer cell left out
        ("photos/c.jpg", 7.5, 1.0, 10.0, pytest.approx(13 / 18), {}),
        # without import roots the path is only listed; resolve_inside judges it (below)
        ("../escape.jpg", 3.0, 1.0, 5.0, 0.5, {}),
    ]
    assert where(res) == [5, 6, 7]
    assert "score is not a number: 'abc'" in res.errors[0].message
    assert "score 6 is outside the declared scale [1, 5]" in res.errors[1].message
    assert "score_min and score_max go together" in res.errors[2].message
    assert all(Path(e.file).name == "manifest.csv" for e in res.errors)


def test_csv_without_scale_needs_per_row_scales():
    res = parse(SAMPLES / "manifest" / "manifest.csv")
    assert res.scale is None
    recs = {r.path: r for r in res.records}
    assert set(recs) == {"photos/a.jpg", "photos/b.jpg", "../escape.jpg"}
    assert (recs["photos/b.jpg"].score_min, recs["photos/b.jpg"].score_max) == (0.0, 1.0)
    assert where(res) == [4, 5, 6, 7]
    assert "has a score but no scale: pass --scale MIN MAX" in res.errors[0].message


def test_jsonl_with_scale_flag():
    res = parse(SAMPLES / "manifest" / "manifest.jsonl", scale=(1, 10))
    got = [
        (r.path, r.raw_score, r.score_min, r.score_max, r.normalized, r.extra) for r in res.records
    ]
    assert got == [
        ("photos/a.jpg", 4.0, 1.0, 5.0, 0.75, {"tags": ["portrait", "outdoor"]}),
        ("photos/b.jpg", None, 1.0, 10.0, None, {}),
        ("photos/c.jpg", 7.5, 1.0, 10.0, pytest.approx(13 / 18), {"split": "train"}),
        ("../escape.jpg", 0.5, 0.0, 1.0, 0.5, {}),
    ]
    # line 4 is blank (skipped); 5 a boolean score; 6 not JSON; 7 not an object; 8 no path
    assert where(res) == [5, 6, 7, 8]
    assert "score is not a number: True" in res.errors[0].message
    assert "not valid JSON" in res.errors[1].message
    assert "expected a JSON object, found list" in res.errors[2].message
    assert res.errors[3].message == "path is missing"


def test_relative_and_absolute_paths_inside_the_roots(tmp_path):
    root = tmp_path / "imports"
    (root / "batch" / "photos").mkdir(parents=True)
    (root / "shared").mkdir()
    inside = root / "shared" / "x.jpg"
    outside_dir = tmp_path / "private"
    outside_dir.mkdir()
    outside = outside_dir / "y.jpg"
    for f in (root / "batch" / "photos" / "a.jpg", inside, outside):
        f.write_bytes(b"jpeg")
    manifest = root / "batch" / "list.jsonl"
    rows = [
        {"path": "photos/a.jpg", "score": 0.25},
        {"path": str(inside), "score": 0.5},  # absolute, inside a root: fine
        {"path": "../shared/x.jpg", "score": 0.75},  # '..' that stays inside a root: fine
        {"path": str(outside), "score": 1},  # absolute, elsewhere: refused
        {"path": "../../private/y.jpg"},  # '../' escape: refused
    ]
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    res = parse(manifest, scale=(0, 1), roots=[root])
    assert [r.path for r in res.records] == ["photos/a.jpg", str(inside), "../shared/x.jpg"]
    assert [res.resolve(r, [root]) for r in res.records] == [
        (root / "batch" / "photos" / "a.jpg").resolve(),
        inside.resolve(),
        inside.resolve(),
    ]
    assert where(res) == [4, 5]
    assert str(outside) in res.errors[0].message and str(root) in res.errors[0].message
    assert "'..' climbs out of the import roots" in res.errors[1].message


def test_a_manifest_outside_the_roots_is_refused(tmp_path):
    (tmp_path / "roots").mkdir()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\na.jpg\n")
    with pytest.raises(PathOutsideRoots, match=r"m\.csv"):
        parse(manifest, roots=[tmp_path / "roots"])
    with pytest.raises(PathOutsideRoots, match="no import roots are configured"):
        parse(manifest, roots=[])


def test_scale_flag_must_be_an_interval(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,score\na.jpg,3\n")
    with pytest.raises(SourceFileError, match=r"--scale minimum must be below its maximum"):
        parse(manifest, scale=(5, 1))
    with pytest.raises(SourceFileError, match=r"--scale must be finite"):
        parse(manifest, scale=(0, float("inf")))


def test_row_scale_must_be_an_interval(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,score,score_min,score_max\na.jpg,3,5,1\nb.jpg,3,1,x\nc.jpg,3,1,5\n")
    res = parse(manifest)
    assert [r.path for r in res.records] == ["c.jpg"]
    assert where(res) == [2, 3]
    assert "minimum must be below its maximum" in res.errors[0].message
    assert "score_max is not a number: 'x'" in res.errors[1].message


def test_csv_header_without_path(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,score\na.jpg,3\n")
    with pytest.raises(SourceFileError, match=r"header has no 'path' column \(found: 'file'"):
        parse(manifest)


def test_formats_by_extension_and_content(tmp_path):
    tsv = tmp_path / "m.tsv"
    tsv.write_text("path\tscore\tnote\na.jpg\t2\tx, y\n")
    (rec,) = parse(tsv, scale=(0, 4)).records
    assert (rec.path, rec.normalized, rec.extra) == ("a.jpg", 0.5, {"note": "x, y"})

    txt = tmp_path / "list.txt"  # no telling extension: the first character decides
    txt.write_text('\n{"path": "b.jpg", "score": 1, "score_min": 0, "score_max": 2}\n')
    (rec,) = parse(txt).records
    assert (rec.path, rec.normalized) == ("b.jpg", 0.5)

    quoted = tmp_path / "quoted.csv"
    quoted.write_text('path,score,caption\n"dir with, comma/c.jpg",1,"two\nlines"\nd.jpg,1,\n')
    res = parse(quoted, scale=(0, 1))
    assert [r.path for r in res.records] == ["dir with, comma/c.jpg", "d.jpg"]
    assert res.records[0].extra == {"caption": "two\nlines"}


def test_missing_or_folder(tmp_path):
    with pytest.raises(MissingLabelFile, match="does not exist"):
        parse(tmp_path / "none.csv")
    with pytest.raises(SourceFileError, match="is a folder; pass the manifest file"):
        parse(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceFileError, match="the file is empty"):
        parse(empty)


def test_duplicate_paths_and_utf8(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes("\ufeffpath,score,who\nä.jpg,1,Zoë\nä.jpg,2,\n".encode())
    res = parse(manifest, scale=(0, 2))
    assert [(r.path, r.extra) for r in res.records] == [("ä.jpg", {"who": "Zoë"})]
    assert where(res) == [3]
    assert "duplicate image path 'ä.jpg'" in res.errors[0].message

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("path\nZo\xeb.jpg\n".encode("latin-1"))
    with pytest.raises(SourceFileError, match="not UTF-8"):
        parse(latin1)
