"""The data report's whole-slide section: one row per tiled slide with its accounting."""
from inception_retrain.components.data_gate import report

FACTS = {"class_counts": {"train": {"a": 3, "b": 2}}, "class_weights": {}, "failures": [],
         "warnings": [], "span": 0, "quarantined": 0, "skipped": 0}
ACCOUNT = {"slide": "a/s1.tiff", "mpp": 0.25, "level": 1, "level_downsample": 2.0,
           "scale": 1.0, "tiles_kept": 3, "background_skipped": 17, "dropped_out_of_bounds": 4,
           "outside_regions": 2, "dropped_blurry": 1}


def test_report_lists_each_slide_with_background_skipped():
    text = report.render(dict(FACTS, slides=[ACCOUNT]), [], [], {}, {})
    assert "## Whole-slide images (1)" in text
    assert "| `a/s1.tiff` | 3 | 17 | 4 | 1 | 2 | 0.25 | 1 (2x) | 1 |" in text


def test_report_without_slides_has_no_slide_section():
    assert "Whole-slide" not in report.render(FACTS, [], [], {}, {})
