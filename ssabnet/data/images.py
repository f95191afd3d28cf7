"""Image files: the one function that reads pixels, and cheap size reading from the header.

Every consumer of pixels (training and validation loaders, ``predict``, ``val --weights``,
``data stats --verify``, the app, FiftyOne checks) reads an image through
:func:`read_image_rgb`. It guarantees, or raises :class:`ImageError` naming the file:

* **Stored pixels, EXIF orientation ignored.** The array is the image as stored in the file,
  never rotated or flipped by an EXIF ``Orientation`` tag. VisDrone and UAVDT annotations (and
  every box SSABNet writes) are in stored-pixel coordinates, and :func:`read_image_size` reads
  the stored size from the header, so pixels, sizes and boxes always agree. (A viewer that
  applies EXIF orientation, e.g. a web browser, shows such an image rotated relative to its
  boxes; :func:`exif_orientation` lets a consumer detect that case.)
* **Size checked.** The decoded array has exactly the width and height of the header.
* **Complete data.** A truncated or corrupt file is an error, never a partly grey image
  (OpenCV and libjpeg only print "Premature end of JPEG file" and carry on).
* **Bounded memory.** An image whose header announces more than :func:`max_image_pixels`
  pixels (default 50 megapixels, ``$SSABNET_MAX_IMAGE_PIXELS`` to change it) is refused from
  its header, before anything is decoded: a 20000x20000 "decompression bomb" or a PNG that
  inflates to gigabytes costs nothing.

Loading a dataset reads only each image's header (:func:`read_image_size`, which applies the
same pixel cap), so listing hundreds of images takes milliseconds; decoding every image is done
when asked (``verify=True`` / ``data stats --verify``) and, for training, once at the start
(:func:`ssabnet.engine.train.fit` loads its datasets with ``verify=True``).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ssabnet.data.record import AnnotationError

#: File suffixes (lower case) that are treated as images when a folder is listed.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

#: Default pixel cap (width x height): 50 MP holds an 8K frame (33 MP); a larger aerial mosaic
#: should be tiled before use. Decoded as RGB that is at most 150 MB per image.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

_EXIF_ORIENTATION_TAG = 0x0112


class ImageError(AnnotationError):
    """An image cannot be used: missing, unreadable, truncated, too large, or its decoded size
    differs from its header. Like every :class:`AnnotationError` it names the file, and readers
    with ``skip_invalid=True`` count it as a skipped image."""


def max_image_pixels() -> int:
    """The pixel cap: ``$SSABNET_MAX_IMAGE_PIXELS`` if set (a positive integer), else 50 MP."""
    raw = os.environ.get("SSABNET_MAX_IMAGE_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ImageError("$SSABNET_MAX_IMAGE_PIXELS", f"must be a positive integer, got {raw!r}")
    return int(raw)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (by suffix, case-insensitive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _open(source: str | Path | bytes, name: str) -> Image.Image:
    """Open (header only) and check the announced size against the pixel cap."""
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError as exc:
        raise ImageError(name, "image file not found") from exc
    except IsADirectoryError as exc:
        raise ImageError(name, "is a folder, not an image file") from exc
    except Image.DecompressionBombError:
        # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fired while parsing the header
        raise ImageError(
            name, _too_large(f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0)}")
        ) from None
    except UnidentifiedImageError as exc:
        raise ImageError(name, f"unreadable or corrupt image: not an image file ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(name, f"unreadable or corrupt image ({exc})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageError(name, f"image has invalid size {width}x{height}")
    if width * height > max_image_pixels():
        image.close()
        raise ImageError(name, _too_large(f"{width}x{height} = {width * height}"))
    return image


def _too_large(pixels: str) -> str:
    return (
        f"image of {pixels} pixels exceeds the limit of {max_image_pixels()} pixels (a "
        "decompression bomb, or a frame to tile first; $SSABNET_MAX_IMAGE_PIXELS raises it)"
    )


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` as stored, from the header, without decoding the pixels.

    Raises:
        ImageError: the file is missing, empty, not a readable image, or over the pixel cap.
    """
    with _open(Path(path), str(path)) as image:
        width, height = image.size
    return int(width), int(height)


def read_image_rgb(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Decode an image file (or its bytes) as stored: RGB ``uint8[H, W, 3]``, EXIF ignored.

    The one pixel reader of SSABNet (see the module docstring for the guarantees).

    Args:
        source: a path, or the file's bytes (an upload).
        name: what error messages call it (default: the path; ``"upload"`` for bytes).

    Raises:
        ImageError: missing, unreadable, truncated or corrupt, over the pixel cap, or decoded
            to another size than its header says.
    """
    label = name or ("upload" if isinstance(source, bytes) else str(source))
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # another library switched Pillow to pad silently
        raise ImageError(label, "Pillow is set to accept truncated images; refusing to read")
    with _open(source if isinstance(source, bytes) else Path(source), label) as image:
        header = image.size
        try:
            image.load()  # decodes every byte; truncated data raises OSError here
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            array = np.array(rgb, dtype=np.uint8)
        except Image.DecompressionBombError:
            raise ImageError(label, _too_large(f"{header[0]}x{header[1]}")) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(
                label, f"unreadable or corrupt image: truncated or damaged pixel data ({exc})"
            ) from None
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[1::-1] != header:
        raise ImageError(
            label,
            f"decoded to {array.shape[1]}x{array.shape[0]} pixels but the header says "
            f"{header[0]}x{header[1]}",
        )
    return array


def verify_image(path: str | Path) -> tuple[int, int]:
    """Fully decode an image with :func:`read_image_rgb`; return ``(width, height)``.

    Raises:
        ImageError: see :func:`read_image_rgb`.
    """
    array = read_image_rgb(path)
    return int(array.shape[1]), int(array.shape[0])


def exif_orientation(path: str | Path) -> int:
    """The EXIF ``Orientation`` tag (1..8; 1 = as stored, also when absent) of an image file."""
    with _open(Path(path), str(path)) as image:
        try:
            value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        except (OSError, ValueError, SyntaxError):
            return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def make_default_permissions(folder: Path) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (mode 0o700) the usual ``0o755``."""
    os.chmod(folder, 0o755)  # not via os.umask(): reading it that way races with other threads
