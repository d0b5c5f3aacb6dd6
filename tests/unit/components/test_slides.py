"""Slide tiling on synthetic pyramidal TIFFs through OpenSlide: physical scale, tissue mask,
accounting, and slides refused with the reason (no scale, truncated)."""
import numpy as np
import pytest

from inception_retrain.components.image_example_gen import slides
from inception_retrain.components.image_example_gen.ingest import IngestOptions
from slide_writer import slide_pixels, truncate, write_slide


def test_only_the_tissue_corner_is_tiled_at_the_target_scale(tmp_path):
    # 2048 x 1536 at 0.25 um/px: 128-um tiles are 512 level-0 px, read at level 1 (2x).
    path = write_slide(tmp_path / "corner.tiff",
                       slide_pixels((1536, 2048), [(0, 0, 1024, 512)]), mpp=0.25)
    account = slides.SlideAccount("corner.tiff")
    tiles = list(slides.tile_slide(str(path), "corner.tiff", IngestOptions(), account))
    assert sorted((t.x, t.y) for t in tiles) == [(0, 0), (512, 0)]
    assert all(t.rgb.shape == (256, 256, 3) and t.tissue == 1.0 for t in tiles)
    assert account.as_dict() == {
        "slide": "corner.tiff", "mpp": 0.25, "level": 1, "level_downsample": 2.0, "scale": 1.0,
        "tiles_kept": 2, "background_skipped": 10, "dropped_out_of_bounds": 0,
        "outside_regions": 0, "dropped_blurry": 0}
    assert tuple(tiles[0].rgb[10, 10]) != (236, 236, 240)   # tissue pixels, not glass


def test_edge_tiles_are_dropped_and_min_tissue_applies(tmp_path):
    # 1000 x 700 px at 0.5 um/px: 256-px tiles, the grid's last column and row reach past.
    pixels = slide_pixels((700, 1000), [(0, 0, 384, 256)])
    path = write_slide(tmp_path / "edge.tiff", pixels, levels=3)
    account = slides.SlideAccount("edge.tiff")
    kept = list(slides.tile_slide(str(path), "edge.tiff", IngestOptions(slide_min_tissue=0.4),
                                  account))
    assert [(t.x, t.y) for t in kept] == [(0, 0), (256, 0)]
    assert account.dropped_out_of_bounds == 4 + 3 - 1   # 4 columns x 3 rows: last col and row
    assert account.background_skipped == 4
    strict = list(slides.tile_slide(str(path), "edge.tiff", IngestOptions(slide_min_tissue=0.9)))
    assert [(t.x, t.y) for t in strict] == [(0, 0)]


def test_slide_without_scale_is_refused_by_name_unless_a_default_is_set(tmp_path):
    path = write_slide(tmp_path / "noscale.tiff",
                       slide_pixels((1024, 1024), [(0, 0, 512, 512)]), mpp=None, levels=3)
    with pytest.raises(slides.SlideError, match="noscale.tiff.*slide_default_mpp") as err:
        list(slides.tile_slide(str(path), "noscale.tiff"))
    assert err.value.category == "no_scale"
    tiles = list(slides.tile_slide(str(path), "noscale.tiff",
                                   IngestOptions(slide_default_mpp=0.5)))
    assert len(tiles) == 4


def test_truncated_slide_raises_naming_the_file(tmp_path):
    path = truncate(write_slide(tmp_path / "cut.tiff",
                                slide_pixels((1024, 1024), [(0, 0, 512, 512)]), levels=3))
    with pytest.raises(slides.SlideError, match="cut.tiff.*(truncated|Short read)"):
        list(slides.tile_slide(str(path), "cut.tiff"))


def test_plain_and_single_level_tiffs_are_images_not_slides(tmp_path):
    import tifffile

    pixels = slide_pixels((512, 512), [(0, 0, 256, 256)])
    tifffile.imwrite(tmp_path / "plain.tiff", pixels)
    assert not slides.is_slide(str(tmp_path / "plain.tiff"))
    assert not slides.is_slide(str(write_slide(tmp_path / "one.tiff", pixels, levels=1)))
    assert slides.is_slide(str(write_slide(tmp_path / "pyramid.tiff", pixels, levels=2)))
    assert not slides.is_slide(str(tmp_path / "x.png"))


def test_tissue_mask_splits_stain_from_glass_and_finds_none_on_blank_glass():
    pixels = slide_pixels((64, 64), [(0, 0, 32, 64)])
    mask = slides.tissue_mask(pixels)
    assert mask[:, :32].all() and not mask[:, 32:].any()
    assert not slides.tissue_mask(slide_pixels((64, 64), [])).any()
    noisy_glass = np.clip(slide_pixels((64, 64), []).astype(int)
                          + np.random.default_rng(0).integers(-3, 4, (64, 64, 3)), 0, 255)
    assert not slides.tissue_mask(noisy_glass.astype(np.uint8)).any()


def test_scale_from_tiff_resolution_in_inches_or_centimetres():
    assert slides.microns_per_pixel({"openslide.mpp-x": "0.2527"}, "s") == 0.2527
    assert slides.microns_per_pixel({"tiff.ResolutionUnit": "inch",
                                     "tiff.XResolution": "50800"}, "s") == pytest.approx(0.5)
    assert slides.microns_per_pixel({"tiff.ResolutionUnit": "centimeter",
                                     "tiff.XResolution": "40000"}, "s") == pytest.approx(0.25)
    with pytest.raises(slides.SlideError, match="slide s: states no microns-per-pixel"):
        slides.microns_per_pixel({"tiff.ResolutionUnit": "none", "tiff.XResolution": "1"}, "s")


def test_annotation_without_classified_polygons_is_refused_by_name(tmp_path):
    import json

    path = write_slide(tmp_path / "s.tiff", slide_pixels((512, 512), [(0, 0, 256, 256)]),
                       levels=2)
    (tmp_path / "s.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
         "properties": {"classification": {"name": "tumour"}}}]}))
    with pytest.raises(slides.SlideError, match="annotation s.geojson: no Polygon"):
        list(slides.tile_slide(str(path), "s.tiff", annotation=str(tmp_path / "s.geojson")))


def test_blurry_tiles_are_dropped_only_with_a_sharpness_floor(tmp_path):
    pixels = slide_pixels((512, 1024), [(0, 0, 256, 256)])         # textured tissue
    ramp = np.linspace(0, 1, 256)[None, :, None]                     # smooth, out of focus
    pixels[0:256, 512:768] = (np.array([190, 70, 150]) * (0.8 + 0.2 * ramp)).astype(np.uint8)
    path = write_slide(tmp_path / "blur.tiff", pixels, levels=2)
    assert [t.x for t in slides.tile_slide(str(path), "blur.tiff")] == [0, 512]
    account = slides.SlideAccount("blur.tiff")
    kept = slides.tile_slide(str(path), "blur.tiff", IngestOptions(slide_min_sharpness=5.0),
                             account)
    assert [t.x for t in kept] == [0]
    assert account.dropped_blurry == 1


def test_plain_tiff_never_reaches_openslide_and_a_slide_is_opened_once(tmp_path, monkeypatch):
    import openslide
    import tifffile

    opened = []
    real_open = openslide.OpenSlide

    class Counting(real_open):
        def __init__(self, path):
            opened.append(path)
            super().__init__(path)

        @classmethod
        def detect_format(cls, path):
            opened.append(path)
            return real_open.detect_format(path)

    monkeypatch.setattr(openslide, "OpenSlide", Counting)
    pixels = slide_pixels((512, 512), [(0, 0, 256, 256)])
    tifffile.imwrite(tmp_path / "plain.tiff", pixels)
    assert not slides.is_slide(str(tmp_path / "plain.tiff"))
    assert opened == []
    pyramid = str(write_slide(tmp_path / "pyramid.tiff", pixels, levels=2))
    assert slides.is_slide(pyramid)
    list(slides.tile_slide(pyramid, "pyramid.tiff"))
    assert opened == [pyramid]
