"""`predict --heatmap`: a whole-slide image tiled as at ingest (slides.tile_slide), its tissue
tiles classified by the model, and the answer drawn over the slide's thumbnail: one colour per
class, opacity by the tile's score, a legend; per-class tile fractions and the slide's call
(the class of most tiles)."""
import csv
import dataclasses
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from inception_retrain.components.image_example_gen import slides
from inception_retrain.components.image_example_gen.ingest import IngestOptions

# Class colours (RGB), in the order of the classes' names; repeats past the tenth class.
PALETTE = [(228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163), (255, 127, 0),
           (166, 86, 40), (247, 129, 191), (153, 153, 153), (255, 255, 51), (0, 0, 0)]
_THUMBNAIL_SIDE = 1024


@dataclasses.dataclass(frozen=True)
class TileAnswer:
    x: int
    y: int
    predicted: str
    scores: Dict[str, float]


def classify_slide(path: str, call: Callable[[Sequence[bytes]], List[Tuple[List[str],
                                                                          List[float]]]],
                   options: IngestOptions = IngestOptions(), batch_size: int = 8
                   ) -> Tuple[List[TileAnswer], slides.SlideAccount]:
    """Every tissue tile's answer (classes and scores from call, TF Serving's REST shape)."""
    account = slides.SlideAccount(path)
    answers: List[TileAnswer] = []
    batch: List[slides.Tile] = []

    def flush():
        for tile, (classes, scores) in zip(batch, call([slides.encode_png(t.rgb)
                                                        for t in batch])):
            by_class = dict(zip(classes, scores))
            answers.append(TileAnswer(tile.x, tile.y, max(by_class, key=by_class.get),
                                      by_class))
        batch.clear()

    for tile in slides.tile_slide(path, path, options, account):
        batch.append(tile)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return answers, account


def fractions(answers: Sequence[TileAnswer]) -> Dict[str, float]:
    """Share of the tissue tiles called each class, largest first."""
    counts = Counter(a.predicted for a in answers)
    return {name: n / len(answers) for name, n in counts.most_common()}


def write_tiles_csv(answers: Sequence[TileAnswer], path: str) -> None:
    """One row per tile: level-0 x, y, the predicted class and every class's score."""
    classes = sorted({c for a in answers for c in a.scores})
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "class"] + [f"score_{c}" for c in classes])
        for a in answers:
            writer.writerow([a.x, a.y, a.predicted]
                            + [f"{a.scores.get(c, 0.0):.6f}" for c in classes])


def write_heatmap(path: str, answers: Sequence[TileAnswer], account: slides.SlideAccount,
                  out: str, options: IngestOptions = IngestOptions()) -> None:
    """The slide's thumbnail with each classified tile filled in its class colour, opacity the
    tile's score, and a legend of the classes below it."""
    from PIL import Image, ImageDraw

    slide = slides.open_slide(path, path)
    try:
        thumb = slide.get_thumbnail((_THUMBNAIL_SIDE, _THUMBNAIL_SIDE)).convert("RGBA")
        scale = thumb.size[0] / slide.dimensions[0]
    finally:
        slide.close()
    classes = sorted({c for a in answers for c in a.scores})
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}
    overlay = Image.new("RGBA", thumb.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    side = options.slide_tile_um / account.mpp * scale
    for a in answers:
        x, y = a.x * scale, a.y * scale
        alpha = int(round(255 * 0.75 * max(0.0, min(1.0, a.scores[a.predicted]))))
        draw.rectangle([x, y, x + side - 1, y + side - 1], fill=colours[a.predicted] + (alpha,))
    image = Image.alpha_composite(thumb, overlay).convert("RGB")
    legend_height = 20 * max(1, len(classes)) + 10
    canvas = Image.new("RGB", (image.width, image.height + legend_height), (255, 255, 255))
    canvas.paste(image, (0, 0))
    pen = ImageDraw.Draw(canvas)
    share = fractions(answers)
    for i, name in enumerate(classes):
        top = image.height + 5 + 20 * i
        pen.rectangle([5, top, 19, top + 14], fill=colours[name], outline=(0, 0, 0))
        pen.text((26, top + 1), f"{name}: {share.get(name, 0.0):.0%} of tissue tiles",
                 fill=(0, 0, 0))
    canvas.save(out, format="PNG")


def summary_line(path: str, answers: Sequence[TileAnswer]) -> str:
    """`slide<TAB>call<TAB>tiles<TAB>class share, ...`; the call is the class of most tiles."""
    if not answers:
        return f"{path}\tno tissue tiles\t0\t"
    share = fractions(answers)
    return (f"{path}\t{next(iter(share))}\t{len(answers)}\t"
            + ", ".join(f"{name} {value:.3f}" for name, value in share.items()))


def heatmap_path(out: str, slide: str, several: bool) -> str:
    """OUT itself for one slide; OUT's stem with the slide's name for several."""
    if not several:
        return out
    import os

    stem, ext = os.path.splitext(out)
    return f"{stem}-{os.path.splitext(os.path.basename(slide))[0]}{ext or '.png'}"


def run(paths: Sequence[str], call, heatmap: Optional[str], tiles_csv: Optional[str],
        options: IngestOptions = IngestOptions(), batch_size: int = 8,
        emit: Callable[[str], None] = print, warn: Callable[[str], None] = print) -> int:
    """Classifies each slide (a folder: its slides), one summary line each; 1 if any slide
    could not be tiled."""
    import os

    found = []
    for p in paths:
        found += ([os.path.join(p, n) for n in sorted(os.listdir(p))
                   if slides.has_slide_extension(n)] if os.path.isdir(p) else [p])
    failed = 0
    for path in found:
        try:
            answers, account = classify_slide(path, call, options, batch_size)
        except slides.SlideError as err:
            warn(f"{path}: skipped, {err}")
            failed += 1
            continue
        emit(summary_line(path, answers))
        if heatmap:
            write_heatmap(path, answers, account, heatmap_path(heatmap, path, len(found) > 1),
                          options)
        if tiles_csv:
            write_tiles_csv(answers, heatmap_path(tiles_csv, path, len(found) > 1))
    return 1 if failed else 0
