"""The listing output every inspection command shares: -o json is one parseable document,
-o table aligned columns, newest first, cut by --limit."""
import argparse
import io
import json

import pytest

from inception_retrain.cli import output


def _parser():
    parser = argparse.ArgumentParser()
    output.add_output_args(parser)
    return parser


def test_table_is_the_default_and_json_is_chosen_with_o():
    assert _parser().parse_args([]).output_format == "table"
    args = _parser().parse_args(["-o", "json", "--limit", "2"])
    assert (args.output_format, args.limit) == ("json", 2)


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_limit_must_be_a_positive_whole_number(bad, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["--limit", bad])
    assert exit_info.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_newest_first_with_a_limit_and_unknown_times_last():
    items = [{"t": "2026-01-02"}, {"t": None}, {"t": "2026-03-01"}, {"t": "2026-02-01"}]
    assert [i["t"] for i in output.newest_first(items, lambda i: i["t"])] == [
        "2026-03-01", "2026-02-01", "2026-01-02", None]
    assert [i["t"] for i in output.newest_first(items, lambda i: i["t"], limit=2)] == [
        "2026-03-01", "2026-02-01"]


def test_table_aligns_columns_under_their_headers():
    rows = [{"id": "a", "acc": 0.5}, {"id": "longer", "acc": None}]
    text = output.format_table(rows, [("RUN", "id"), ("ACC", "acc"), ("X", lambda r: r["id"][0])])
    lines = text.splitlines()
    assert lines[0].split() == ["RUN", "ACC", "X"]
    assert lines[1].split() == ["a", "0.5000", "a"]
    assert lines[2].split() == ["longer", "–", "l"]
    assert lines[0].index("ACC") == lines[1].index("0.5000") == lines[2].index("–")


def test_json_is_valid_even_with_nan_and_infinity():
    stream = io.StringIO()
    output.emit("json", {"a": float("nan"), "b": [float("inf"), 1.5]}, lambda: "table",
                stream=stream)
    assert json.loads(stream.getvalue()) == {"a": None, "b": [None, 1.5]}
    stream = io.StringIO()
    output.emit("table", {}, lambda: "the table", stream=stream)
    assert stream.getvalue() == "the table\n"
