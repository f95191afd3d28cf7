"""Datasets: VisDrone, UAVDT, COCO JSON and synthetic drone scenes, all as :class:`ImageRecord`.

Entry point: :func:`load_dataset` (catalog name, catalog YAML or folder)
-> :class:`DetectionDataset`.
"""

from ssabnet.data.dataset import load_dataset
from ssabnet.data.record import AnnotationError, DatasetInfo, DetectionDataset, ImageRecord

__all__ = ["AnnotationError", "DatasetInfo", "DetectionDataset", "ImageRecord", "load_dataset"]
