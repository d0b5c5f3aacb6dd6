"""Issue 13, item 4: class names, paths and config values went into the Markdown model card raw:
rendered with the `markdown` package, `<svg onload=...>` in a class name became a live tag (it
ran in Chromium) and a `|` shifted the counts into the wrong columns. Every user-supplied string
is escaped now; the card is rendered here with `markdown` and parsed back."""
from html.parser import HTMLParser

import markdown
import pytest

from inception_retrain.run_reading.record import (
    DataSection,
    EvaluationSection,
    Phase,
    PushSection,
    RunInfo,
    RunRecord,
    TrainingSection,
)
from inception_retrain.run_rendering import model_card

HOSTILE = ["<svg onload=alert(1)>", "a|b", "*bold* _it_ `code`", "[x](javascript:alert(1))",
           "<img src=x onerror=alert(2)>", "&amp; #h \\ ~~s~~"]
COUNTS = {"train": {name: 10 + i for i, name in enumerate(HOSTILE)},
          "eval": {name: i + 1 for i, name in enumerate(HOSTILE)}}


class _Parsed(HTMLParser):
    """Tags and the cells of every table row, as a browser would build them."""

    def __init__(self):
        super().__init__()
        self.tags, self.rows, self._row, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _record() -> RunRecord:
    training = TrainingSection(
        report={}, base_weights="weights file /w/<script>alert(3)</script>.h5",
        base_weights_random=False, class_names=HOSTILE, strategy=None,
        config={"unfreeze_blocks": "<b>2</b>", "image_size": 75},
        phases=(Phase("phase1", epochs_run=2, history={"val_loss": [1.0, 0.5]}),
                Phase("phase2", skipped="phase2_epochs=0 <i>x</i>")))
    evaluation = EvaluationSection(
        metrics={"sparse_categorical_accuracy": 0.5, "example_count": 21.0},
        per_class={name: {"top1_precision": 0.5, "top1_recall": 0.25} for name in HOSTILE},
        baseline=None, blessed=True, failures=[], validation_ok=True,
        checks=[{"metric": "top1_recall", "class": HOSTILE[0], "value": 0.25,
                 "condition": ">= 0.1 <u>", "passed": True}])
    return RunRecord(
        pipeline="p<em>x</em>", run=RunInfo(run_id="r`1`", data_root="/data/<img src=y>|z",
                                            started="2026-01-01T00:00:00"),
        data=DataSection(class_counts=COUNTS, warnings=["class <svg/onload=alert(4)> is rare"]),
        training=training, evaluation=evaluation,
        push=PushSection(pushed=True, destination="/serve/m/7", version=7, by_this_run=True))


def test_no_user_supplied_tag_survives_markdown_rendering():
    """Item 4: no raw tag from a class name, path or config value in the rendered card."""
    text = model_card.render(_record(), "/reports/<script>x</script>/report.html")
    parsed = _Parsed()
    parsed.feed(markdown.markdown(text, extensions=["tables"]))
    tags = {tag for tag, _ in parsed.tags}
    for tag in ("svg", "img", "script", "b", "i", "u", "em", "a"):
        assert tag not in tags, (tag, text)
    assert all(not any(k.startswith("on") for k in attrs) for _, attrs in parsed.tags)
    assert "code" in tags  # the run id with backticks still is a code span
    rendered_text = markdown.markdown(text, extensions=["tables"])
    assert "&lt;svg onload=alert(1)&gt;" in rendered_text


def test_the_counts_table_keeps_its_columns():
    """Item 4: a | in a class name shifted the counts into the wrong columns."""
    text = model_card.render(_record())
    parsed = _Parsed()
    parsed.feed(markdown.markdown(text, extensions=["tables"]))
    counts_header = ["class", "train", "eval"]
    start = parsed.rows.index(counts_header)
    body = parsed.rows[start + 1:start + 1 + len(HOSTILE)]
    # the rendered cell text is the class name exactly, its counts in their own columns
    assert {row[0]: row[1:] for row in body} == {
        name: [str(COUNTS["train"][name]), str(COUNTS["eval"][name])] for name in HOSTILE}
    assert parsed.rows[start + 1 + len(HOSTILE)] == ["total", str(sum(COUNTS["train"].values())),
                                                     str(sum(COUNTS["eval"].values()))]
    per_class = [row for row in parsed.rows if len(row) == 3 and row[0] in HOSTILE
                 and row[1] == "0.5000"]
    assert sorted(row[0] for row in per_class) == sorted(HOSTILE)


@pytest.mark.parametrize("value", ["plain", "a`b", "``x", "a|b", "<x>", "C:\\path"])
def test_code_spans_render_the_value_literally(value):
    html = markdown.markdown(model_card.code(value))
    parsed = _Parsed()
    parsed.feed(html)
    assert not {tag for tag, _ in parsed.tags} - {"p", "code"}
    import html as html_lib

    assert html_lib.unescape(html.replace("<p>", "").replace("</p>", "").replace(
        "<code>", "").replace("</code>", "")).strip() == value
