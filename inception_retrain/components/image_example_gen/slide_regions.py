"""Region labels of a whole-slide image from a GeoJSON annotation file (QuPath's export:
polygon features with properties.classification.name, level-0 pixel coordinates), rasterised
on the tissue mask's grid so each tile takes the class of the region covering it. Plain Python
(json, numpy, Pillow)."""
import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from inception_retrain.components import artifact_files

Ring = Sequence[Tuple[float, float]]


class RegionError(ValueError):
    """An annotation file that cannot be used; the message names the file."""


def annotation_path(slide_path: str) -> str:
    """The sidecar annotation of a slide: `<slide stem>.geojson` beside it ("" when none)."""
    path = os.path.splitext(slide_path)[0] + ".geojson"
    return path if artifact_files.exists(path) else ""


def is_annotation_of_a_slide(path: str, slide_extensions: Sequence[str]) -> bool:
    """Whether path is a `.geojson` beside a slide of the same stem (a sidecar, not an image)."""
    stem, ext = os.path.splitext(path)
    return ext.lower() == ".geojson" and any(artifact_files.exists(stem + e) or
                                             artifact_files.exists(stem + e.upper())
                                             for e in slide_extensions)


def read_regions(path: str, name: str) -> Dict[str, List[List[Ring]]]:
    """{class name: [polygon as [exterior ring, hole rings...]]} of the file's Polygon and
    MultiPolygon features; features without a classification name are ignored."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise RegionError(f"annotation {name}: not readable GeoJSON: {err}") from None
    features = data.get("features", []) if isinstance(data, dict) else data
    regions: Dict[str, List[List[Ring]]] = {}
    for feature in features if isinstance(features, list) else []:
        props = (feature.get("properties") or {}) if isinstance(feature, dict) else {}
        label = (props.get("classification") or {}).get("name") or props.get("name")
        geometry = feature.get("geometry") or {} if isinstance(feature, dict) else {}
        kind, coords = geometry.get("type"), geometry.get("coordinates") or []
        polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
        if label and polygons:
            regions.setdefault(str(label), []).extend(polygons)
    if not regions:
        raise RegionError(f"annotation {name}: no Polygon or MultiPolygon feature with a "
                          "classification name (QuPath: properties.classification.name)")
    return regions


def region_masks(regions: Dict[str, List[List[Ring]]], shape: Tuple[int, int],
                 downsample: float) -> Dict[str, np.ndarray]:
    """{class: boolean mask of shape (rows, cols)} on a grid downsample level-0 pixels apart;
    holes cut out."""
    from PIL import Image, ImageDraw

    masks = {}
    for label, polygons in sorted(regions.items()):
        image = Image.new("1", (shape[1], shape[0]), 0)
        draw = ImageDraw.Draw(image)
        for polygon in polygons:
            for i, ring in enumerate(polygon):
                points = [(float(x) / downsample, float(y) / downsample) for x, y in ring]
                if len(points) >= 3:
                    draw.polygon(points, fill=0 if i else 1)
        masks[label] = np.asarray(image, dtype=bool)
    return masks
