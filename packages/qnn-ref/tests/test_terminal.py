import io

import numpy as np
import pytest

from qnn_ref import terminal


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("no_color", "stream", "expected"),
    [
        (None, _Tty(), True),
        ("", _Tty(), True),  # an empty NO_COLOR does not count (no-color.org)
        ("1", _Tty(), False),
        (None, io.StringIO(), False),  # redirected output
        (None, object(), False),  # no isatty at all
    ],
)
def test_color_enabled(monkeypatch, no_color, stream, expected):
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert terminal.color_enabled(stream) is expected


def test_render_digit_plain_is_ascii_two_characters_per_pixel():
    image = np.array([[0, 255, 128], [25, 26, 230]], dtype=np.uint8)
    # Ramp " .:-=+*#%@": level * 10 // 256 picks the character.
    assert terminal.render_digit(image, color=False) == "  @@++\n  ..%%"


def test_render_digit_float_matches_uint8():
    levels = np.arange(0, 256, 17, dtype=np.uint8).reshape(4, 4)
    as_float = levels.astype(np.float32) / 255
    for color in (False, True):
        assert terminal.render_digit(as_float, color=color) == terminal.render_digit(
            levels, color=color
        )


def test_render_digit_color_uses_half_blocks_two_rows_per_line():
    image = np.array([[10, 20], [30, 40], [50, 60]], dtype=np.uint8)
    expected = (
        "\x1b[38;2;10;10;10m\x1b[48;2;30;30;30m▀\x1b[38;2;20;20;20m\x1b[48;2;40;40;40m▀\x1b[0m\n"
        # The odd last row gets a black row below it.
        "\x1b[38;2;50;50;50m\x1b[48;2;0;0;0m▀\x1b[38;2;60;60;60m\x1b[48;2;0;0;0m▀\x1b[0m"
    )
    assert terminal.render_digit(image, color=True) == expected


def test_render_digit_mnist_size():
    image = np.zeros((28, 28), np.uint8)
    plain = terminal.render_digit(image, color=False).split("\n")
    assert (len(plain), {len(line) for line in plain}) == (28, {56})
    colored = terminal.render_digit(image, color=True)
    assert (len(colored.split("\n")), terminal.visible_width(colored)) == (14, 28)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros(4, np.uint8), r"^image must be a 2-D array, not of shape \[4\]$"),
        (
            np.zeros((2, 2), np.int16),
            r"^image must be uint8 \(0-255\) or float \(0-1\), not int16$",
        ),
    ],
)
def test_render_digit_rejects(image, message):
    with pytest.raises(ValueError, match=message):
        terminal.render_digit(image, color=False)


def test_bar_chart_plain():
    chart = terminal.bar_chart([-2, 0, 6], labels=["a", "b", "c"], highlight=2, width=8)
    assert chart == "a |         -2\nb |##        0\nc |########  6 <"


def test_bar_chart_notes_and_color():
    chart = terminal.bar_chart([1, 3], notes=["x 1", "y 3"], highlight=1, width=3, color=True)
    lines = chart.split("\n")
    assert lines[0] == "0 |█   1   x 1"
    assert lines[1] == "1 |\x1b[38;2;80;220;100m███\x1b[0m 3 < y 3"


def test_bar_chart_rejects_mismatched_labels():
    with pytest.raises(
        ValueError,
        match=r"^bar chart needs one label and one note per value: 2 values, 1 labels, 2 notes$",
    ):
        terminal.bar_chart([1, 2], labels=["a"])


def test_table_aligns_numbers_right():
    text = terminal.table(["name", "n"], [["a", 1], ["bbb", 100]])
    assert text == "name    n\n----  ---\na       1\nbbb   100"


def test_table_wraps_text_columns_to_the_width():
    rows = [["conv", "one two three", "0.5..0.25 per channel", 12345], ["fc", "x", "1", 7]]
    headers = ["layer", "op", "scale", "n"]
    wide = terminal.table(headers, rows)
    assert max(len(line) for line in wide.splitlines()) == 50
    assert terminal.table(headers, rows, width=50) == wide  # fits: unchanged
    # The widest text column narrows first; a range may break after its "..", a word never;
    # the number column keeps its width; no line is longer than asked.
    assert terminal.table(headers, rows, width=30) == (
        "layer  op       scale        n\n"
        "-----  -------  -------  -----\n"
        "conv   one two  0.5..    12345\n"
        "       three    0.25\n"
        "                per\n"
        "                channel\n"
        "fc     x        1            7"
    )
    # Narrower than the longest words allow: as narrow as they allow (28 here).
    narrowest = terminal.table(headers, rows, width=28)
    assert max(len(line) for line in narrowest.splitlines()) == 28
    assert terminal.table(headers, rows, width=10) == narrowest


def test_table_rejects_ragged_rows():
    with pytest.raises(
        ValueError, match=r"^table row has 1 cells, not 2 like the header: \['a'\]$"
    ):
        terminal.table(["x", "y"], [["a"]])


def test_side_by_side_ignores_color_codes():
    left = "\x1b[31mab\x1b[0m\ncd"
    assert terminal.side_by_side([left, "X\nY\nZ"], gap=1) == ("\x1b[31mab\x1b[0m X\ncd Y\n   Z")
