"""The page tags every template uses (core/templatetags/pages.py, a template builtin): what
they render is what the pages' scripts and styles look for."""

from __future__ import annotations

from django.template import engines


def render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def test_a_data_table_has_its_heads_and_a_placeholder_row_as_wide():
    html = render(
        '{% data_table "t" "Name" "Count:num" "Actions:sr" manage|yesno:"Edit:actions-col," %}',
        manage=False,
    )
    assert '<table class="data-table cur-table" id="t">' in html
    assert '<th scope="col" class="num">Count</th>' in html
    assert '<th scope="col"><span class="sr-only">Actions</span></th>' in html
    assert "Edit" not in html  # the column only managers see is left out
    assert '<td colspan="3" class="muted">Loading…</td>' in html
    shown = render('{% data_table "t" "A" manage|yesno:"Edit:actions-col," %}', manage=True)
    assert '<th scope="col" class="actions-col">Edit</th>' in shown and 'colspan="2"' in shown


def test_a_card_head_escapes_what_the_page_passes_but_keeps_its_own_markup():
    html = render(
        '{% card_head "h" title sub="Runs <code>x</code>" sub_id="s" %}', title="<b>bold</b>"
    )
    assert '<h2 id="h">&lt;b&gt;bold&lt;/b&gt;</h2>' in html
    assert '<p class="chart-sub" id="s">Runs <code>x</code></p>' in html
    assert "chart-sub" not in render('{% card_head "h" "Plain" %}')


def test_a_seg_picker_presses_one_button():
    html = render('{% seg_picker "p" "Bins" "bins" "5:5:One per level" "10:10" pressed="10" %}')
    assert '<div class="seg" role="group" aria-label="Bins" id="p">' in html
    assert 'data-bins="5" aria-pressed="false" title="One per level">5<' in html
    assert 'data-bins="10" aria-pressed="true">10<' in html
    first = render('{% seg_picker "p" "Filter" "decision" ":All" "error:Errors" %}')
    assert 'data-decision="" aria-pressed="true">All<' in first


def test_a_form_end_names_its_error_box_and_button():
    html = render('{% form_actions "release" "Build" busy="Queuing…" %}')
    assert 'id="release-error" role="alert" hidden' in html
    assert 'id="release-submit" data-busy="Queuing…">Build</button>' in html
