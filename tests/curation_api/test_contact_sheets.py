"""Contact sheets: a PNG per group and page, cached until a decision changes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from curation.imaging.contact_sheet import Layout, Tile, render_contact_sheet, thumbnail
from curation.models import Decision
from curation.services.contact_sheets import SHEET_LIMIT, sheet_dir

pytestmark = pytest.mark.django_db(transaction=True)


LAYOUT = Layout()


def sheet_size(n: int, lay: Layout = LAYOUT) -> tuple[int, int]:
    """The size a sheet of n tiles has (the layout's own arithmetic, restated)."""
    cols = max(1, min(lay.columns, n))
    rows = max(1, -(-n // cols))
    width = max(2 * lay.margin + cols * lay.thumb + (cols - 1) * lay.gap, 520)
    return width, lay.header + lay.margin + rows * lay.cell_h + (rows - 1) * lay.gap


def tile_centre(i: int, n: int, lay: Layout = LAYOUT) -> tuple[int, int]:
    cols = max(1, min(lay.columns, n))
    r, c = divmod(i, cols)
    x = lay.margin + c * (lay.thumb + lay.gap) + lay.thumb // 2
    y = lay.header + r * (lay.cell_h + lay.gap) + lay.thumb // 2
    return x, y


def png(response) -> Image.Image:
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.format == "PNG"
    return image


def test_each_group_gets_its_own_sheet(client_as, finished_job):
    job = finished_job
    client = client_as("researcher")
    url = f"/api/jobs/{job.pk}/contact-sheet/"
    for group, n in (("accepted", 2), ("no_face", 3), ("corrupt", 2), ("rejected", 7)):
        response = client.get(url, {"group": group})
        assert response.status_code == 200, (group, response.content)
        assert response["Content-Type"] == "image/png"
        assert response["X-Sheet-Count"] == str(n) and response["X-Sheet-Pages"] == "1"
        sheet = png(response)
        assert sheet.size == sheet_size(n), group

    # What is in the cells: the people of "accepted" are photos (many colours, a face's
    # skin tones), the "no_face" gradients are smooth, the corrupt files are placeholders.
    accepted = png(client.get(url, {"group": "accepted"})).convert("RGB")
    no_face = png(client.get(url, {"group": "no_face"})).convert("RGB")
    corrupt = png(client.get(url, {"group": "corrupt"})).convert("RGB")

    def cell(sheet, i, n):
        x, y = tile_centre(i, n)
        return np.asarray(sheet.crop((x - 40, y - 40, x + 40, y + 40)), dtype=float)

    for i in range(2):
        assert cell(accepted, i, 2).std() > 30  # a photo
        placeholder = cell(corrupt, i, 2)
        assert placeholder.std() < 40 and placeholder.mean() > 200  # light grey hatch, a label
    for i in range(3):
        gradient = cell(no_face, i, 3)
        # a gradient: smooth (neighbouring pixels close) yet not one flat colour
        assert np.abs(np.diff(gradient, axis=1)).mean() < 4 and gradient.std() > 3

    assert client.get(url, {"group": "../../etc"}).status_code == 400
    assert client.get(url, {"group": "accepted", "page": 2}).status_code == 400
    assert client.get(url, {"group": "accepted", "page": "x"}).status_code == 400
    empty = client.get(url, {"group": "error"})
    assert empty.status_code == 200 and empty["X-Sheet-Count"] == "0"


def test_sheets_are_cached_until_a_decision_changes(client_as, finished_job):
    job = finished_job
    client = client_as("curator")
    url = f"/api/jobs/{job.pk}/contact-sheet/?group=no_face"
    first = client.get(url)
    etag = first["ETag"]
    b"".join(first.streaming_content)
    files = sorted(sheet_dir(job).glob("no_face-p1-*.png"))
    assert len(files) == 1 and files[0].stem.endswith(etag.strip('"'))
    mtime = files[0].stat().st_mtime_ns
    again = client.get(url)
    assert again["ETag"] == etag
    b"".join(again.streaming_content)
    assert files[0].stat().st_mtime_ns == mtime  # served from the cache, not drawn again
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304

    gradient = Decision.objects.get(job=job, item__path="gradient.png")
    client.post(
        f"/api/decisions/{gradient.pk}/override/",
        {"decision": "accepted", "reason": "a person after all"},
        format="json",
    )
    changed = client.get(url)
    assert changed["ETag"] != etag and changed["X-Sheet-Count"] == "2"
    assert png(changed).size == sheet_size(2)
    assert [p.name for p in sheet_dir(job).glob("no_face-p1-*.png")] == [
        f"no_face-p1-{changed['ETag'].strip(chr(34))}.png"
    ]  # the stale sheet is gone
    accepted = client.get(f"/api/jobs/{job.pk}/contact-sheet/?group=accepted")
    assert accepted["X-Sheet-Count"] == "3"


def test_the_drawing_itself(tmp_path):
    """The pure module: grid geometry, thumbnails in place, placeholders for bad files."""
    red = tmp_path / "red.jpg"
    Image.new("RGB", (900, 600), (220, 30, 30)).save(red, quality=95)
    blue = tmp_path / "blue.png"
    Image.new("RGBA", (50, 300), (30, 30, 220, 255)).save(blue)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(red.read_bytes()[:400])
    tiles = [
        Tile(red, "red.jpg", "900 x 600", tone="ok"),
        Tile(blue, "deep/folder/blue.png", "narrow", tone="bad", badge="override: rejected"),
        Tile(broken, "broken.jpg", "corrupt", tone="bad"),
        Tile(None, "gone.jpg", "unreadable", tone="bad"),
    ] * 3
    lay = Layout(columns=5)
    sheet = render_contact_sheet(tiles, title="Job 1 · rejected", subtitle="12 images", layout=lay)
    assert sheet.size == sheet_size(12, lay)
    px = sheet.convert("RGB").load()
    x, y = tile_centre(0, 12, lay)
    assert px[x, y][0] > 180 and px[x, y][1] < 80  # red photo in cell 0
    x, y = tile_centre(5, 12, lay)
    assert px[x, y][2] > 180 and px[x, y][0] < 80  # blue in cell 5 (the second row's first)
    x, y = tile_centre(6, 12, lay)
    assert px[x, y] == (255, 255, 255)  # the broken file's placeholder: its white label
    assert thumbnail(broken, 160)[0] is None
    assert thumbnail(tmp_path / "none.jpg", 160) == (None, "file missing")
    assert thumbnail(red, 160, max_pixels=1000) == (None, "too many pixels")
    thumb, why = thumbnail(red, 160)
    assert why == "" and thumb.size == (160, 107)
    assert render_contact_sheet([], title="empty").size == sheet_size(0)
    assert SHEET_LIMIT == 60


def test_a_big_group_is_split_into_sheets_of_sixty(client_as):
    from curation.models import FilterJob, Image, JobStatus, Source, SourceItem

    source = Source.objects.create(name="many", kind="manifest", location="/nowhere")
    job = FilterJob.objects.create(source=source, status=JobStatus.DONE)
    for i in range(SHEET_LIMIT + 5):
        image = Image.objects.create(
            file=f"images/none/{i}.jpg", sha256=f"{i:064x}", width=300, height=300, format="JPEG"
        )
        item = SourceItem.objects.create(source=source, path=f"{i}.jpg", image=image)
        Decision.objects.create(job=job, item=item, decision="rejected", reasons=["no_face"])
    client = client_as("curator")
    url = f"/api/jobs/{job.pk}/contact-sheet/?group=no_face"
    first = client.get(url)
    assert first["X-Sheet-Pages"] == "2" and first["X-Sheet-Count"] == str(SHEET_LIMIT + 5)
    assert png(first).size == sheet_size(SHEET_LIMIT)
    second = client.get(url + "&page=2")
    assert png(second).size == sheet_size(5)
    assert client.get(url + "&page=3").status_code == 400
    assert sorted(p.name.split("-")[1] for p in sheet_dir(job).glob("no_face-*.png")) == [
        "p1",
        "p2",
    ]
