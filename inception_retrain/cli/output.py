"""How listing commands print: `-o table` (aligned columns, the default) or `-o json` (one JSON
document a script can parse), newest first, cut to `--limit N`. Shared by every listing
(history, report --list, rollback, schedule list, predict), so they read and behave alike."""
import argparse
import json
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from inception_retrain.components import artifact_files

TABLE, JSON = "table", "json"
FORMATS = (TABLE, JSON)

# A column: its header and the row's key (or a function of the row) giving the cell.
Column = Tuple[str, Union[str, Callable[[Dict[str, Any]], Any]]]


def add_output_args(parser: argparse.ArgumentParser, formats: Sequence[str] = FORMATS,
                    limit: bool = True) -> None:
    """-o/--output FORMAT (first of formats by default) and, for listings, --limit N."""
    parser.add_argument("-o", "--output", dest="output_format", choices=tuple(formats),
                        default=formats[0],
                        help=f"output format (default {formats[0]}); json is one document "
                             "for scripts")
    if limit:
        parser.add_argument("--limit", type=positive_int, metavar="N",
                            help="only the N newest entries (newest first in every format)")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def newest_first(items: Iterable[Any], key: Callable[[Any], Any],
                 limit: Optional[int] = None) -> List[Any]:
    """items sorted newest first by key (None keys last), the first limit of them."""
    ordered = sorted(items, key=lambda item: (key(item) is not None, key(item) or 0),
                     reverse=True)
    return ordered[:limit] if limit else ordered


def _cell(row: Dict[str, Any], source) -> str:
    value = source(row) if callable(source) else row.get(source)
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(rows: Sequence[Dict[str, Any]], columns: Sequence[Column]) -> str:
    """rows as aligned columns under a header line; the last column is not padded."""
    cells = [[header for header, _ in columns]]
    cells += [[_cell(row, source) for _, source in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in cells)


def to_json(document: Any) -> str:
    """document as indented JSON; NaN and infinities (not JSON) become null."""
    return json.dumps(artifact_files.json_safe(document), indent=2, sort_keys=False)


def emit(fmt: str, document: Any, table: Callable[[], str], stream=None) -> None:
    """Prints document as JSON, or the text table() renders, on stream (stdout)."""
    stream = stream or sys.stdout
    stream.write((to_json(document) if fmt == JSON else table()) + "\n")
