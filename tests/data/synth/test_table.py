"""pairs.csv of a synthetic data set (neipalette_tf.data.synth.table): its column groups and the palette
columns' text form. Which columns a generated set carries is checked in tests/data/test_synth*.py."""

import numpy as np
import pytest

from neipalette_tf.data.synth import table

GROUPS = (table.CSV_COLUMNS, table.PEOPLE_COLUMNS, table.PALETTE_COLUMNS, table.HARD_SCENE_COLUMNS)


def test_column_groups_are_disjoint_and_start_with_what_every_manifest_has():
    every = [c for group in GROUPS for c in group]
    assert len(every) == len(set(every))  # a set's header (the groups joined) never repeats a column
    assert table.CSV_COLUMNS[:4] == ("top", "bottom", "label", "split")
    for role in ("top", "bottom"):  # each garment: its category and main colour; palette and scene columns
        assert {f"{role}_category", f"{role}_L", f"{role}_C", f"{role}_h"} <= set(table.CSV_COLUMNS)
        assert {f"{role}_pattern", f"{role}_palette"} == {c for c in table.PALETTE_COLUMNS if c.startswith(role)}
        assert {f"{role}_scene", f"{role}_scene_info"} == {c for c in table.HARD_SCENE_COLUMNS if c.startswith(role)}


def test_a_palette_is_written_to_four_decimals_main_colour_first():
    palette = [((0.61234567, 0.1, 25.0), 0.75), ((0.3, 0.05432, 300.12346), 0.25)]
    text = table.format_palette(palette)
    assert text == "0.6123 0.1000 25.0000 0.7500;0.3000 0.0543 300.1235 0.2500"
    assert table.format_palette([((np.float32(0.5), np.float64(0.1), 10), 1)]) == "0.5000 0.1000 10.0000 1.0000"


def test_parse_reads_back_what_format_wrote():
    rng = np.random.default_rng(0)
    for n in (1, 2, 4):
        shares = rng.dirichlet(np.ones(n))
        palette = [((rng.uniform(0.2, 0.95), rng.uniform(0, 0.35), rng.uniform(0, 360)), s) for s in shares]
        back = table.parse_palette(table.format_palette(palette))
        assert len(back) == n
        for (c0, s0), (c1, s1) in zip(palette, back):
            assert isinstance(c1, tuple) and len(c1) == 3
            assert np.allclose(c0, c1, atol=5e-5) and abs(s0 - s1) <= 5e-5
        assert table.parse_palette(table.format_palette(back)) == back  # stable once written


@pytest.mark.parametrize("text, entry", [
    ("0.5 0.1 30", "0.5 0.1 30"),                             # a value missing
    ("0.5 0.1 30 1.0 2", "0.5 0.1 30 1.0 2"),                 # one too many
    ("0.5 0.1 30 0.6;0.4 0.2 10", "0.4 0.2 10"),              # the second entry
    ("0.5 0.1 30 1.0;", ""),                                  # a trailing separator
    ("", ""),                                                 # nothing at all
])
def test_a_malformed_palette_is_one_line_naming_the_entry(text, entry):
    with pytest.raises(ValueError) as e:
        table.parse_palette(text)
    message = str(e.value)
    assert "\n" not in message and f"palette entry {entry!r}" in message


def test_a_palette_with_a_word_for_a_number_is_a_one_line_value_error():
    with pytest.raises(ValueError) as e:
        table.parse_palette("0.5 0.1 red 1.0")
    assert "\n" not in str(e.value) and "red" in str(e.value)
