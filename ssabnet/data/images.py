"""Image files of a dataset: cheap size reading from the header and optional full decoding.

Loading a dataset reads only each image's header (Pillow parses the size without decoding the
pixels), so listing hundreds of images takes milliseconds. Decoding every image, which finds
truncated or corrupt files, is done only when asked (``verify=True`` / ``data stats --verify``).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ssabnet.data.record import AnnotationError

#: File suffixes (lower case) that are treated as images when a folder is listed.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by suffix, case-insensitive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, without decoding the pixels.

    Raises:
        AnnotationError: the file is missing, empty or not a readable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError as exc:
        raise AnnotationError(path, "image file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise AnnotationError(path, f"unreadable or corrupt image ({exc})") from exc
    if width <= 0 or height <= 0:
        raise AnnotationError(path, f"image has invalid size {width}x{height}")
    return int(width), int(height)


def verify_image(path: str | Path) -> tuple[int, int]:
    """Fully decode an image (finds truncated/corrupt data) and return ``(width, height)``.

    Raises:
        AnnotationError: the image cannot be decoded completely.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decodes every byte; truncated JPEGs raise OSError here
            width, height = image.size
    except FileNotFoundError as exc:
        raise AnnotationError(path, "image file not found") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise AnnotationError(path, f"unreadable or corrupt image ({exc})") from exc
    return int(width), int(height)


def make_default_permissions(folder: Path) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (mode 0o700) the usual ``0o755``."""
    os.chmod(folder, 0o755)  # not via os.umask(): reading it that way races with other threads
