"""Contact sheets: thumbnails in a grid with captions, one PNG per page of a group.

Pure PIL (no Django): `render_contact_sheet(tiles, title=...)` returns a PIL image and
`contact_sheet_png(...)` its PNG bytes. A tile whose file cannot be shown (corrupt, truncated,
missing, larger than `max_pixels`) becomes a hatched placeholder that says why, so the sheet of
"corrupt" images still shows one cell per image. JPEGs are decoded in draft mode (DCT scaling)
straight to about the thumbnail's size, which makes a 60-image sheet of multi-megapixel photos
cheap; a few threads decode in parallel (PIL releases the GIL while decoding).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

# Colours (the platform's light theme).
BACKGROUND = (255, 255, 255)
CELL = (240, 241, 244)
CELL_EDGE = (217, 219, 225)
TEXT = (28, 29, 33)
MUTED = (93, 97, 112)
HATCH = (226, 228, 233)
TONES = {
    "ok": (47, 143, 91),
    "bad": (194, 54, 47),
    "warn": (183, 121, 31),
    "info": (47, 111, 222),
    "neutral": (138, 143, 156),
}


@dataclass(frozen=True)
class Tile:
    """One cell: the file to show (None: nothing to show), a caption and a second line.

    `tone` colours the bar under the thumbnail (a key of TONES); `badge` is a short tag drawn
    on the thumbnail's corner (for example an override).
    """

    path: str | os.PathLike[str] | None
    caption: str
    detail: str = ""
    tone: str = "neutral"
    badge: str = ""


@dataclass(frozen=True)
class Layout:
    columns: int = 8
    thumb: int = 160
    gap: int = 12
    margin: int = 20
    header: int = 70
    caption_size: int = 12
    detail_size: int = 11
    title_size: int = 20

    @property
    def cell_w(self) -> int:
        return self.thumb

    @property
    def cell_h(self) -> int:
        return self.thumb + 6 + self.caption_size + 4 + self.detail_size + 6


# A system font with wide coverage where there is one (paths are not always ASCII), else the
# font Pillow embeds.
FONT_FILES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf")


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int, *, keep_end: bool = False) -> str:
    """`text` shortened with an ellipsis to fit `width` pixels (from the left if keep_end)."""
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix (or suffix) that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        part = "…" + text[-mid:] if keep_end else text[:mid] + "…"
        if draw.textlength(part, font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return "…" + text[-lo:] if keep_end else text[:lo] + "…"


def thumbnail(
    path: str | os.PathLike[str] | None, size: int, *, max_pixels: int | None = None
) -> tuple[Image.Image | None, str]:
    """(an RGB thumbnail fitting size x size, "") or (None, why it cannot be shown)."""
    if path is None:
        return None, "no file"
    try:
        with Image.open(path) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                return None, "too many pixels"
            if im.format == "JPEG":
                im.draft("RGB", (size * 2, size * 2))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, CELL)
                flat.paste(rgba, mask=rgba.getchannel("A"))
                im = flat
            elif im.mode != "RGB":
                im = im.convert("RGB")
            im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return im.copy(), ""
    except FileNotFoundError:
        return None, "file missing"
    except Image.DecompressionBombError:
        return None, "too many pixels"
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as exc:
        text = str(exc).lower()
        return None, "truncated" if "truncated" in text else "cannot decode"
    except Exception:  # a sheet must not fail on one odd file
        return None, "cannot decode"


def _placeholder(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, why: str) -> None:
    draw.rectangle((x, y, x + size - 1, y + size - 1), fill=CELL)
    for k in range(-size, size, 14):  # diagonal hatch
        draw.line(
            (
                x + max(0, k),
                y + max(0, -k),
                x + min(size, size + k) - 1,
                y + min(size, size - k) - 1,
            ),
            fill=HATCH,
            width=1,
        )
    font = _font(13)
    label = _fit(draw, why, font, size - 16)
    w = draw.textlength(label, font=font)
    draw.rounded_rectangle(
        (x + (size - w) / 2 - 8, y + size / 2 - 12, x + (size + w) / 2 + 8, y + size / 2 + 11),
        radius=5,
        fill=BACKGROUND,
        outline=CELL_EDGE,
    )
    draw.text((x + size / 2, y + size / 2), label, font=font, fill=MUTED, anchor="mm")


def _line(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font,
    width: int,
    fill: tuple[int, int, int],
    *,
    keep_end: bool = False,
) -> None:
    """One line of text at `xy`, shortened with an ellipsis to fit `width` pixels."""
    draw.text(xy, _fit(draw, text, font, width, keep_end=keep_end), font=font, fill=fill)


def _canvas(n: int, lay: Layout) -> tuple[Image.Image, int]:
    """The blank sheet for n tiles (at least one cell's room, at least 520 px wide), and how
    many columns its grid has."""
    columns = max(1, min(lay.columns, n))
    rows = max(1, -(-n // columns))
    width = max(2 * lay.margin + columns * lay.cell_w + (columns - 1) * lay.gap, 520)
    height = lay.header + lay.margin + rows * lay.cell_h + (rows - 1) * lay.gap
    return Image.new("RGB", (width, height), BACKGROUND), columns


def _draw_header(
    draw: ImageDraw.ImageDraw, lay: Layout, width: int, title: str, subtitle: str
) -> None:
    """The title band: the title, the subtitle under it, a rule."""
    room = width - 2 * lay.margin
    _line(draw, (lay.margin, 14), title, _font(lay.title_size), room, TEXT)
    if subtitle:
        sub_font = _font(lay.detail_size + 1)
        _line(draw, (lay.margin, 14 + lay.title_size + 5), subtitle, sub_font, room, MUTED)
    draw.line((lay.margin, lay.header - 10, width - lay.margin, lay.header - 10), fill=CELL_EDGE)


def _thumbnails(
    tiles: Sequence[Tile], size: int, max_pixels: int | None, threads: int
) -> list[tuple[Image.Image | None, str]]:
    """Every tile's thumbnail (or why it has none), decoded by a few threads."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(lambda t: thumbnail(t.path, size, max_pixels=max_pixels), tiles))


def _draw_tile(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    lay: Layout,
    xy: tuple[int, int],
    tile: Tile,
    shown: tuple[Image.Image | None, str],
) -> None:
    """One cell at `xy`: the thumbnail (or its placeholder), the tone bar, the badge and the
    two lines of text."""
    (x, y), size, (thumb, why) = xy, lay.thumb, shown
    if thumb is None:
        _placeholder(draw, x, y, size, why)
    else:
        draw.rectangle((x, y, x + size - 1, y + size - 1), fill=CELL)
        sheet.paste(thumb, (x + (size - thumb.width) // 2, y + (size - thumb.height) // 2))
    draw.rectangle((x, y, x + size - 1, y + size - 1), outline=CELL_EDGE)
    tone = TONES.get(tile.tone, TONES["neutral"])
    draw.rectangle((x, y + size, x + size - 1, y + size + 2), fill=tone)
    if tile.badge:
        badge_font = _font(11)
        label = _fit(draw, tile.badge, badge_font, size - 20)
        w = draw.textlength(label, font=badge_font)
        draw.rounded_rectangle((x + 5, y + 5, x + 5 + w + 10, y + 22), radius=4, fill=tone)
        draw.text((x + 10, y + 13.5), label, font=badge_font, fill=BACKGROUND, anchor="lm")
    ty = y + size + 6
    _line(draw, (x, ty), tile.caption, _font(lay.caption_size), size, TEXT, keep_end=True)
    if tile.detail:
        detail_xy = (x, ty + lay.caption_size + 4)
        _line(draw, detail_xy, tile.detail, _font(lay.detail_size), size, MUTED)


def render_contact_sheet(
    tiles: Sequence[Tile],
    *,
    title: str,
    subtitle: str = "",
    layout: Layout | None = None,
    max_pixels: int | None = None,
    threads: int = 4,
) -> Image.Image:
    """The sheet: a title band, then the tiles left to right, top to bottom."""
    lay = layout or Layout()
    sheet, columns = _canvas(len(tiles), lay)
    draw = ImageDraw.Draw(sheet)
    _draw_header(draw, lay, sheet.width, title, subtitle)
    if not tiles:
        xy = (sheet.width / 2, lay.header + lay.cell_h / 2)
        draw.text(xy, "No images in this group", font=_font(15), fill=MUTED, anchor="mm")
        return sheet
    thumbs = _thumbnails(tiles, lay.thumb, max_pixels, threads)
    for i, (tile, shown) in enumerate(zip(tiles, thumbs, strict=True)):
        r, c = divmod(i, columns)
        xy = (lay.margin + c * (lay.cell_w + lay.gap), lay.header + r * (lay.cell_h + lay.gap))
        _draw_tile(sheet, draw, lay, xy, tile, shown)
    return sheet


def contact_sheet_png(tiles: Sequence[Tile], **kwargs) -> bytes:
    """render_contact_sheet(...) as PNG bytes."""
    buf = io.BytesIO()
    render_contact_sheet(tiles, **kwargs).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_contact_sheet(target: str | os.PathLike[str], tiles: Sequence[Tile], **kwargs) -> Path:
    """Write the PNG atomically (a temporary file renamed into place) and return its path."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(contact_sheet_png(tiles, **kwargs))
    os.replace(tmp, target)
    return target
