"""The data section's pictures: a few sample images per class (thumbnails) and the distribution
of image sizes (the longest side as ingested, per split), read from ImageExampleGen's examples.
Report-only; TensorFlow is imported only here (to read the TFRecords)."""
import collections
import os
from typing import Any, Dict, List, Optional

from inception_retrain.components import artifact_files
from inception_retrain.run_reading.misclassified import thumbnail

PER_CLASS = 4
# Longest-side buckets of the size distribution: (upper bound inclusive, label).
SIZE_BUCKETS = ((99, "< 100 px"), (199, "100-199"), (299, "200-299"), (499, "300-499"),
                (999, "500-999"), (1999, "1000-1999"), (float("inf"), ">= 2000"))


def bucket(longest_side: int) -> str:
    return next(label for bound, label in SIZE_BUCKETS if longest_side <= bound)


def read(examples_uri: Optional[str], per_class: int = PER_CLASS,
         split: str = "train") -> Optional[Dict[str, Any]]:
    """{"samples": {class: [{path, thumbnail, width, height}]}, "sizes": {split: {bucket:
    count}}, "min_side", "max_side"} from an Examples artifact; None without one."""
    if not examples_uri or not artifact_files.isdir(examples_uri):
        return None
    import tensorflow as tf

    from inception_retrain.components import features

    samples: Dict[str, List[Dict[str, Any]]] = collections.defaultdict(list)
    sizes: Dict[str, Dict[str, int]] = {}
    sides: List[int] = []
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(examples_uri, "Split-*"))):
        name = os.path.basename(split_dir)[len("Split-"):]
        counts = collections.Counter()
        files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*")))
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            height = int(feature[features.HEIGHT_KEY].int64_list.value[0])
            width = int(feature[features.WIDTH_KEY].int64_list.value[0])
            counts[bucket(max(height, width))] += 1
            sides.append(max(height, width))
            label = feature[features.LABEL_KEY].bytes_list.value[0].decode("utf-8")
            if name == split and len(samples[label]) < per_class:
                samples[label].append({
                    "path": feature[features.PATH_KEY].bytes_list.value[0].decode("utf-8"),
                    "width": width, "height": height,
                    "thumbnail": thumbnail(feature[features.IMAGE_KEY].bytes_list.value[0])})
        sizes[name] = {label: counts[label] for _, label in SIZE_BUCKETS if counts[label]}
    return {"samples": dict(samples), "sizes": sizes,
            "min_side": min(sides) if sides else None, "max_side": max(sides) if sides else None}
