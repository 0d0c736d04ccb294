"""Tags for the pieces every page repeats: a card's heading and a table that the page's
script fills (`{% load pages %}`)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("_card_head.html", takes_context=True)
def card_head(
    context: template.Context,
    heading_id: str,
    title: str,
    sub: str = "",
    sub_id: str = "",
    controls: str = "",
) -> dict[str, object]:
    """A card's <header>: its title (the id the section's aria-labelledby names), a line under
    it (`sub_id`: the script rewrites that line) and `controls`, the template of what stands
    on its right (a picker), rendered with the page's context."""
    return {
        **context.flatten(),
        "heading_id": heading_id,
        "title": title,
        "sub": sub,
        "sub_id": sub_id,
        "controls": controls,
    }


@register.inclusion_tag("_data_table.html")
def data_table(
    table_id: str, *columns: str, classes: str = "cur-table", empty: str = "Loading…"
) -> dict[str, object]:
    """A data table with its column heads and one row that says `empty` until the script
    fills it. A column "Label:cls" has the class `cls` ("num": right-aligned); "Label:sr" is
    read by screen readers only; an empty column is left out (a column only some users see:
    `can_manage|yesno:"Actions:actions-col,"`)."""
    heads = []
    for column in filter(None, columns):
        label, _, kind = column.partition(":")
        heads.append({"label": label, "sr": kind == "sr", "cls": "" if kind == "sr" else kind})
    return {"table_id": table_id, "classes": classes, "columns": heads, "empty": empty}


@register.inclusion_tag("_form_actions.html")
def form_actions(prefix: str, label: str, busy: str = "") -> dict[str, str]:
    """A form's end: the box for its refusal (`{prefix}-error`) and its submit button
    (`{prefix}-submit`; `busy`: its label while the request runs)."""
    return {"prefix": prefix, "label": label, "busy": busy}


@register.inclusion_tag("_seg_picker.html")
def seg_picker(
    picker_id: str, label: str, attr: str, *options: str, pressed: str = ""
) -> dict[str, object]:
    """A segmented picker: a button per option "value:Label" (or "value:Label:title"), each
    with `data-{attr}="value"`; `pressed` (else the first) starts pressed."""
    buttons = []
    for option in options:
        value, _, rest = option.partition(":")
        text, _, title = rest.partition(":")
        buttons.append({"value": value, "label": text, "title": title})
    chosen = pressed or (buttons[0]["value"] if buttons else "")
    for b in buttons:
        b["pressed"] = b["value"] == chosen
    return {"picker_id": picker_id, "label": label, "attr": attr, "buttons": buttons}
