"""Image input/output that keeps what the user gave us: bit depth, gray/colour, alpha, colour profile, EXIF.

``read_image`` returns a float32 (H, W, C) array in [0, 1] (float TIFFs, and integer ones beyond 16 bits or
signed, keep their values) and an :class:`ImageInfo`; ``write_image`` writes an array back with the same bit
depth, re-attaching the alpha channel that was set aside on reading and the embedded ICC colour profile and
EXIF block (so a phone photo keeps its colour space and its orientation tag: the pixels are restored as
stored, and the output displays as the input did). EXIF goes to JPEG, PNG and WebP outputs (its orientation
to TIFF as the Orientation tag, and a TIFF's tag back); the ICC profile to those and to TIFF; the resolution
(dpi) to PNG, JPEG and TIFF; XMP to every one of these (a TIFF's tag 700, a PNG's iTXt chunk); a photo's
descriptive text (PHOTO_TAGS: camera make, model, date, artist, copyright ..., a TIFF's or its EXIF block's) to
TIFF; a JPEG's comment, IPTC (APP13) and progressive coding to JPEG; a PNG's gAMA / cHRM / sRGB to PNG.
Every write is atomic (:mod:`selfrestore.atomic_files`): a temporary file in the target folder, then a
rename, so a crash never leaves a half-written image or checkpoint behind.
"""
from __future__ import annotations

import importlib.util
import numbers
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .atomic_files import atomic_path
from .errors import ImageReadError, UserError, unreadable_image
from .intensity_map import intensity_mapping

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm",
                  ".fits", ".fit", ".fts")
TIFF_SUFFIXES = (".tif", ".tiff")
FITS_SUFFIXES = (".fits", ".fit", ".fts")  #: astronomy images (read and written through astropy)
STACK_SUFFIXES = TIFF_SUFFIXES + FITS_SUFFIXES  #: formats that hold float pixels and stacks of planes
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m")  #: `selfrestore video`
#: video and animation formats `selfrestore video` does not write: an output named so is refused, not made a folder
OTHER_VIDEO_SUFFIXES = (".gif", ".apng", ".wmv", ".asf", ".flv", ".f4v", ".ts", ".mts", ".m2ts", ".3gp", ".3g2",
                        ".ogv", ".vob", ".rm", ".rmvb", ".mxf", ".divx", ".dv")
NO_ALPHA_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".ppm", ".pgm")  #: formats without alpha (a BMP reads back RGB)
MIN_SIDE = 1
LUMA = (0.299, 0.587, 0.114)  #: ITU-R BT.601 weights: RGB -> gray


@dataclass
class ImageInfo:
    """What is needed to write a restored image back in the input's form."""

    dtype: str = "uint8"               #: "uint8", "uint16" or "float32"
    channels: int = 3                  #: colour channels (1 or 3), alpha excluded
    alpha: np.ndarray | None = None    #: the alpha channel set aside on reading (H, W), same dtype scale [0,1]
    source: str = ""
    icc_profile: bytes | None = None   #: embedded ICC colour profile, written back where the format allows
    exif: bytes | None = None          #: EXIF block (``Exif\0\0`` + TIFF header ...), written back likewise
    stack_shape: tuple[int, ...] = ()  #: a TIFF stack's leading axes (z, time, channel ...): () for one image
    stack_axes: str = ""               #: their tifffile axis letters, e.g. "Z" or "TZC"
    blank: np.ndarray | None = None    #: float images: where the input held NaN or +-inf (blank pixels), NaN on writing
    plane_infinite: tuple = ()         #: per plane, how many of the blank pixels held +-inf, not NaN
    #: where some blank pixels held +-inf: the sign of each blank value (int8, blank's shape: +1 +inf, -1 -inf, 0 NaN),
    #: so that outputs hold the same +-inf there (see :func:`blank_fill`); None where all of them were NaN
    blank_sign: np.ndarray | None = None
    #: the file's own pixel type where it is read as float counts (int16, int32, float64 ...): a TIFF or FITS output
    #: is written in it (integers rounded and clipped to the type; kept float32 where blank pixels must stay NaN)
    stored_type: str | None = None
    fits_header: str | None = None     #: a FITS image's header (WCS, exposure ...), written back unchanged
    fits_dropped: tuple = ()           #: the other HDUs of a multi-extension FITS (masks, tables), not written
    tiff_tags: tuple = ()              #: TIFF tags carried to the output: GeoTIFF / GDAL (code, type, count, value)
    tiff_resolution: tuple | None = None  #: (x resolution, y resolution, unit) as TIFF states it (a PNG / JPEG dpi too)
    imagej: dict | None = None         #: an ImageJ TIFF's metadata (spacing, unit, labels, ranges ...), written back
    ome: dict | None = None            #: an OME-TIFF's pixel sizes, time step and channel names (ome_pixel_metadata)
    webp_lossless: bool = False        #: a lossless WebP, written back lossless (not re-compressed lossy)
    tiff_compression: tuple | None = None  #: a compressed TIFF's (codec, predictor), kept: see _tiff_compression
    stack_alpha_dropped: bool = False  #: a stack whose planes had an alpha channel, which is not carried to outputs
    jpeg_subsampling: int | None = None  #: a JPEG's chroma subsampling (PIL: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0), kept
    xmp: bytes | None = None           #: XMP packet (ratings, edits, captions; a TIFF's tag 700), written back
    png_text: tuple = ()               #: a PNG's text chunks ((key, value), ...: author, XMP, software ...)
    #: a TIFF's descriptive tags ((code, bytes), ...: see PHOTO_TAGS), to TIFF outputs (with an EXIF block's)
    photo_tags: tuple = ()
    jpeg_comment: bytes | None = None  #: a JPEG's comment (COM segment), written back to JPEG outputs
    jpeg_app13: tuple = ()             #: a JPEG's APP13 segments (IPTC caption, keywords, credit), to JPEG outputs
    jpeg_progressive: bool = False     #: a progressive JPEG: JPEG outputs are progressive too
    png_colour: tuple = ()             #: a PNG's gAMA / cHRM / sRGB chunks ((type, data), ...), to PNG outputs

    @property
    def infinite(self) -> int:
        """How many of the blank pixels (all planes) held +-inf, not NaN."""
        return sum(self.plane_infinite)

    @property
    def bit_depth(self) -> int:
        return {"uint8": 8, "uint16": 16}.get(self.dtype, 32)

    @property
    def frame_blanks(self) -> np.ndarray | list[np.ndarray] | None:
        """The blank pixels of each frame :func:`read_frames` gives (indexable per frame), or None."""
        if self.blank is None:
            return None
        return self.blank if self.stack_shape else [self.blank]


# --------------------------------------------------------------------------------------------- reading
def pixel_type(array: np.ndarray) -> str | None:
    """The pixel type ("uint8", "uint16" or "float32") an image of decoded pixels ``array`` is read as and
    written back in (32-bit integer pixels that fit in 16 bits are 16-bit); None for an unsupported type."""
    if array.dtype in (np.uint8, np.bool_):
        return "uint8"
    if array.dtype == np.uint16:
        return "uint16"
    if np.issubdtype(array.dtype, np.floating):
        return "float32"
    if np.issubdtype(array.dtype, np.integer):  # 32-bit integer images (PIL "I" mode), signed types
        return integer_pixel_type(int(array.min()), int(array.max()), array.dtype) if array.size else "float32"
    return None


def integer_pixel_type(low: int, high: int, dtype: np.dtype | type = np.int32) -> str:
    """The pixel type of integers other than 8/16-bit unsigned whose values span ``low`` .. ``high`` (of a
    whole stack, so that every plane is read alike): a 32-bit type (PIL keeps 16-bit PNGs as 32-bit "I") is
    16-bit where the values fit; anything else, and every signed 8/16-bit type (int16 FITS / TIFF data, which
    may hold negative values in another file of the same camera), is float in its own units."""
    if np.dtype(dtype).itemsize <= 2:  # int8, int16: signed data, never the 0..65535 scale of uint16
        return "float32"
    return "uint16" if low >= 0 and high <= 65535 else "float32"


def depth_name(dtype: str) -> str:
    """How a user knows a pixel type: 8-bit, 16-bit or float."""
    return {"uint8": "8-bit", "uint16": "16-bit"}.get(dtype, "float")


def beyond_float32(array: np.ndarray) -> float | None:
    """The largest finite magnitude of a float array wider than 32 bits when it lies beyond the float32 range
    (which the networks and files compute in: such values became inf, and a restored image all inf), else
    None."""
    if array.dtype.kind != "f" or array.dtype.itemsize <= 4 or array.size == 0:
        return None
    finite = np.abs(array[np.isfinite(array)])
    top = float(finite.max()) if finite.size else 0.0
    return top if top > float(np.finfo(np.float32).max) else None


def _to_float(array: np.ndarray, path: Path) -> tuple[np.ndarray, str]:
    kind = pixel_type(array)
    if kind is None:
        raise ImageReadError(f"{path}: unsupported pixel type {array.dtype}")
    if (top := beyond_float32(array)) is not None:
        raise ImageReadError(f"{path}: values up to {top:.3g} lie beyond the range of 32-bit floats (3.4e38), "
                             "which selfrestore computes in; rescale the data first")
    if array.dtype == bool:
        return array.astype(np.float32), kind
    if kind == "uint8":
        return array.astype(np.float32) / 255.0, kind
    if kind == "uint16":
        return array.astype(np.float32) / 65535.0, kind
    # integers beyond 16 bits or below 0 keep their values, as float data (counts), which intensity_mapping maps to
    # [0, 1] for the networks and back: scaled by the type's maximum, a signed 32-bit image was about 0
    return array.astype(np.float32), kind


def astropy_fits(path: Path | None = None):
    """astropy.io.fits, or an error saying how to get it (naming the file when reading one, so that a batch
    skips it and goes on)."""
    try:
        from astropy.io import fits
    except ImportError:
        message = "FITS images need astropy: pip install 'selfrestore[astro]'"
        raise (ImageReadError(f"{path}: {message}") if path else UserError(message)) from None
    return fits


#: keywords of a FITS header's structure, not of what it describes (not carried from a primary header)
FITS_STRUCTURE_KEYWORDS = ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "NEXTEND", "XTENSION", "PCOUNT", "GCOUNT",
                           "BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX", "END")


#: the starts of FITS world-coordinate keywords (a primary header's are not mixed into an image's own)
FITS_WCS_PREFIXES = ("CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CD1_", "CD2_", "CD3_", "PC", "PV", "PS",
                     "A_", "B_", "AP_", "BP_", "LONPOLE", "LATPOLE", "RADESYS", "EQUINOX", "WCSAXES")


def _read_fits(path: Path) -> tuple[np.ndarray, dict]:
    """The first image HDU (BZERO/BSCALE applied), its header, and its leading axes as a stack."""
    fits = astropy_fits(path)
    with fits.open(str(path), memmap=False) as hdus:
        hdu = next((h for h in hdus if h.is_image and h.data is not None and h.data.ndim >= 2), None)
        if hdu is None:
            raise ImageReadError(f"{path}: no image in this FITS file")
        header = hdu.header.copy()
        if hdu is not hdus[0]:  # an image in an extension: the primary header's keywords (EXPTIME, TELESCOP ...)
            # describe it too, and the output holds one HDU
            own_wcs = any(key.startswith(FITS_WCS_PREFIXES) for key in header.keys())
            for card in hdus[0].header.cards:
                key = card.keyword
                if key in ("COMMENT", "HISTORY"):  # each card of the primary's, beside the extension's own
                    header.append(card)
                elif key and key not in FITS_STRUCTURE_KEYWORDS and key not in header \
                        and not key.startswith("NAXIS") and not (own_wcs and key.startswith(FITS_WCS_PREFIXES)):
                    header.append(card)  # (not a primary's WCS beside the image's own: two would mix)
        others = [f"{h.name or 'HDU'} ({index})" for index, h in enumerate(hdus)
                  if h is not hdu and not (index == 0 and h.data is None)]
        array, meta = np.asarray(hdu.data), {"fits_header": header.tostring()}
        if others:
            meta["fits_dropped"] = tuple(others)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    if array.ndim > 2 and int(np.prod(array.shape[:-2])) > 1:
        meta.update(stack_shape=tuple(int(n) for n in array.shape[:-2]), stack_axes="Q" * (array.ndim - 2))
        return array.reshape(-1, *array.shape[-2:]), meta
    return array.reshape(array.shape[-2:]), meta


def pil_image():
    """PIL's Image module, its decompression-bomb guard off (a frame over 89 MP printed a raw warning, over
    179 MP was refused): large images are checked against this machine's memory instead (check_fits_in_memory)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # (set at each use: whoever lowered it since does not refuse our images)
    return Image


def compressed_fits_name(name: str) -> bool:
    """Whether ``name`` is that of a compressed FITS file as astropy reads them: tile-compressed (fpack,
    ``NAME.fz``, ``NAME.fits.fz``) or gzipped (``NAME.fits.gz``); they are restored into ``NAME.fits``."""
    stem, suffix = os.path.splitext(name.lower())
    return suffix == ".fz" or (suffix == ".gz" and os.path.splitext(stem)[1] in FITS_SUFFIXES)


def is_fits_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a FITS file: a FITS suffix, a compressed FITS name, or a file that starts as FITS
    does (Pillow's own FITS reader would decode an fpack file's table as an 8-bit image)."""
    path = Path(path)
    if path.suffix.lower() in FITS_SUFFIXES or compressed_fits_name(path.name):
        return True
    try:
        with open(path, "rb") as file:
            return file.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def uncompressed_fits_name(name: str) -> str:
    """The name a restored FITS file gets for an input ``name``: a compressed one's as NAME.fits (astropy reads
    them; the image is written uncompressed); others unchanged."""
    if not compressed_fits_name(name):
        return name
    stem = os.path.splitext(name)[0]
    return stem if os.path.splitext(stem)[1].lower() in FITS_SUFFIXES else stem + ".fits"


def _read_pixels(path: Path) -> tuple[np.ndarray, dict]:
    """The stored pixels and the metadata to carry to the output (``icc_profile``, ``exif``, FITS header)."""
    suffix = path.suffix.lower()
    if suffix not in TIFF_SUFFIXES and is_fits_file(path):
        return _read_fits(path)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        with tifffile.TiffFile(str(path)) as tif:
            tiff_pages_lost(tif, path)
            array = tif.asarray()
            axes = tif.series[0].axes if tif.series else ""
            page = tif.pages[0]
            meta = tiff_metadata(page)
            if tif.is_imagej and tif.imagej_metadata:
                meta["imagej"] = dict(tif.imagej_metadata)
            elif tif.is_ome and tif.ome_metadata and (ome := ome_pixel_metadata(tif.ome_metadata)):
                meta["ome"] = ome
            array, axes, photometric, samples = _tiff_as_displayed(array, axes, page, meta)
            # gray + 2nd sample: alpha only where ExtraSamples says so (1 associated, 2 unassociated), else a band
            second_is_alpha = tuple(int(e) for e in page.extrasamples)[:1] in ((1,), (2,))
            bands = samples > 4 or (photometric in (0, 1) and (samples >= 3 or samples == 2
                                                               and not second_is_alpha))
        if len(axes) == array.ndim and axes.endswith(("YX", "YXS", "SYX")) and array.ndim > 2:
            if bands and axes.endswith(("YXS", "SYX")):  # multispectral bands: a stack of gray planes
                if axes.endswith("YXS"):
                    array, axes = np.moveaxis(array, -1, -3), axes[:-3] + "SYX"
                axes = axes[:-3] + "BYX"  # "B": bands, stored last (contiguous) or planar as read
            elif axes.endswith("SYX"):  # planar colour: channels last
                array, axes = np.moveaxis(array, -3, -1), axes[:-3] + "YXS"
            image_axes = 3 if axes.endswith("YXS") else 2
            leading = tuple(int(n) for n in array.shape[:-image_axes])
            if int(np.prod(leading)) > 1:  # a stack of images: z-slices, time points, microscope channels
                meta.update(stack_shape=leading, stack_axes=axes[:-image_axes])
                return array.reshape(-1, *array.shape[-image_axes:]), meta
            return array.reshape(array.shape[-image_axes:]), meta
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = np.moveaxis(array, 0, -1)  # planar (C, H, W) TIFF
        return array, meta
    Image = pil_image()
    if suffix == ".png" and png16_colour_type(path):
        with Image.open(path) as img:  # metadata only: PIL would reduce the pixels to 8 bits
            meta = _pil_metadata(img)
        return _read_png16_colour(path), meta
    deep_ppm = _read_ppm16(path) if suffix in (".ppm", ".pnm") else None  # PIL would reduce 16 bits to 8
    if deep_ppm is not None:
        return deep_ppm, {}
    with Image.open(path) as img:
        refuse_animation(img, path)
        img.load()
        meta = _pil_metadata(img)
        if img.format == "WEBP" and _webp_is_lossless(path):
            meta["webp_lossless"] = True
        if img.mode == "CMYK":
            meta.pop("icc_profile", None)  # a CMYK profile does not describe the converted RGB pixels
        return pil_pixels(img), meta


def pil_pixels(img) -> np.ndarray:
    """The pixels of a PIL image as :func:`read_image` gives a file's: a palette through its colours (RGBA where a
    colour is transparent), a transparent colour (tRNS) as alpha, CMYK / YCbCr / LAB / HSV as RGB, 1-bit as 8-bit
    gray, 16-bit gray as uint16 (its transparent value as alpha); other modes as numpy reads them."""
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    elif img.mode in ("L", "RGB") and "transparency" in img.info:  # a PNG's transparent colour (tRNS): alpha
        img = img.convert("LA" if img.mode == "L" else "RGBA")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif img.mode == "1":
        img = img.convert("L")
    elif img.mode.startswith("I;16"):
        gray = np.asarray(img, dtype=np.uint16)
        if isinstance(img.info.get("transparency"), int):  # a 16-bit gray PNG's transparent value (tRNS)
            return np.stack([gray, np.where(gray == img.info["transparency"], 0, 65535).astype(np.uint16)], axis=2)
        return gray
    return np.asarray(img)


def tiff_pages_lost(tif, path: str | os.PathLike) -> None:
    """An :class:`ImageReadError` when the file's own metadata counts more images than tifffile could read
    (a truncated copy: tifffile then returns the pages before the damage, and a 5-plane ImageJ stack came back
    as one image with exit code 0). Checked for ImageJ files (their ``images`` count) and tifffile's shaped
    files (the shape in their description); a plain multi-page TIFF states no count: there, the last image read
    pointing to one that cannot be read (:func:`_tiff_chain_cut`). Also a file of several same-size series, of
    which only the first would be read, and one whose first series (what is read) is not its largest; a first
    series followed by smaller ones (a full image and its thumbnail) reads as the first."""
    if not tif.series:
        return
    series = tif.series[0]
    alike = [s for s in tif.series if s.shape == series.shape and s.dtype == series.dtype and s.axes == series.axes]
    if len(tif.series) > 1 and len(alike) == len(tif.series):  # only the first would be read
        size = "x".join(str(int(n)) for n in series.shape)
        raise ImageReadError(f"{path}: holds {len(alike)} separate images of {size} (TIFF series, as tifffile "
                             "writes one per write() call), not one stack; selfrestore reads one image or one stack "
                             "per file: save them as one stack (tifffile.imwrite(path, numpy.stack(images))) or as "
                             "separate files")
    area = lambda s: int(np.prod([int(n) for a, n in zip(s.axes, s.shape) if a in "YX"]))  # noqa: E731
    larger = [s for s in tif.series[1:] if area(s) > area(series)]
    if larger:  # a reduced preview stored first: restoring it would silently drop the real image
        sizes = ", ".join("x".join(str(int(n)) for n in s.shape) for s in tif.series)
        raise ImageReadError(f"{path}: holds {len(tif.series)} images of different sizes ({sizes}; TIFF series) and "
                             "the first, the one selfrestore reads, is not the largest (a preview stored first?); "
                             "save the image to restore alone, e.g. tifffile.imwrite(path, tifffile.imread(file, "
                             f"series={tif.series.index(max(tif.series, key=area))}))")
    planes = int(np.prod([int(n) for axis, n in zip(series.axes, series.shape) if axis not in "YXS"]))
    if tif.is_imagej and tif.imagej_metadata:
        lost = int(tif.imagej_metadata.get("images", 1) or 1) > planes
    elif tif.is_shaped and tif.shaped_metadata and "shape" in tif.shaped_metadata[0]:
        lost = int(np.prod([int(n) for n in tif.shaped_metadata[0]["shape"]])) > int(np.prod(series.shape))
    elif _tiff_chain_cut(tif):  # a plain multi-page TIFF states no count: its chain of images is cut
        raise ImageReadError(f"{path}: incomplete TIFF: its last readable image ({len(tif.pages)}) points to a next "
                             "one that cannot be read; a truncated copy? copy the file again")
    else:
        lost = False
    if lost:
        raise ImageReadError(f"{path}: incomplete TIFF: its metadata counts more images than the file holds "
                             f"({planes} readable); a truncated copy? copy the file again")


def _tiff_chain_cut(tif) -> bool:
    """Whether the last image tifffile read points to a next one that it could not read: a multi-page TIFF cut
    between images or inside the next image's header (tifffile logs an error and returns the images before the
    cut; a plain multi-page TIFF states no count to compare with). Reads the last image's next-IFD offset: 0 ends
    the chain, an image already read closes a loop; a field cut off is a cut too."""
    import struct

    try:
        pages, fh, layout = tif.pages, tif.filehandle, tif.tiff
        last = pages[-1]
        fh.seek(last.offset)
        tags = struct.unpack(layout.tagnoformat, fh.read(layout.tagnosize))[0]
        fh.seek(last.offset + layout.tagnosize + tags * layout.tagsize)
        field = fh.read(layout.offsetsize)
    except (AttributeError, IndexError, OSError, struct.error):  # nothing to check, or damage found elsewhere
        return False
    if len(field) < layout.offsetsize:
        return True
    following = struct.unpack(layout.offsetformat, field)[0]
    return following != 0 and following not in {page.offset for page in pages}


def refuse_animation(img, path: Path) -> None:
    """An ImageReadError for an animated WebP / PNG / GIF opened by PIL as ``img``, which would be read as its
    first frame alone (not for MPO: a phone JPEG's second image is a preview)."""
    if img.format in ("WEBP", "PNG", "GIF") and getattr(img, "is_animated", False):
        raise ImageReadError(f"{path}: an animated {img.format} of {img.n_frames} frames, not one image: save its "
                             "frames as images in a folder and restore them with `selfrestore video FOLDER -o OUT/`")


def _tiff_as_displayed(array: np.ndarray, axes: str, page, meta: dict) -> tuple[np.ndarray, str, int, int]:
    """A TIFF's stored ``array`` (its series ``axes``) as a viewer shows it, since the output is written as plain
    gray / RGB (MinIsBlack, RGB): palette indices through the colour map (RGB), CMYK inks as RGB (the CMYK
    profile dropped from ``meta``), MinIsWhite gray inverted. Returns (array, axes, the photometric and samples
    per pixel it now has); anything else is returned as it is."""
    photometric, samples = int(page.photometric), int(page.samplesperpixel)
    if len(axes) != array.ndim:
        return array, axes, photometric, samples
    if photometric == 3 and samples == 1 and page.colormap is not None:  # palette
        colours = palette_colours(page)
        index = np.clip(array.astype(np.intp), 0, len(colours) - 1)
        return colours[index], axes + "S", 2, 3
    inkset = page.tags.get(332)  # 1 (or absent): CMYK
    if photometric == 5 and samples - len(page.extrasamples) == 4 and (inkset is None or int(inkset.value) == 1) \
            and axes.endswith(("YXS", "SYX")) and (array.dtype.kind == "f" or array.dtype in (np.uint8, np.uint16)):
        axis = -1 if axes.endswith("YXS") else -3
        full = 1.0 if array.dtype.kind == "f" else float(np.iinfo(array.dtype).max)
        ink = np.take(array, [0, 1, 2, 3], axis=axis).astype(np.float64) / full
        rgb = (1.0 - np.take(ink, [0, 1, 2], axis=axis)) * (1.0 - np.take(ink, [3], axis=axis))  # as PIL converts
        rgb = rgb.astype(array.dtype) if array.dtype.kind == "f" else np.round(rgb * full).astype(array.dtype)
        meta.pop("icc_profile", None)  # a CMYK profile does not describe the converted RGB pixels
        extra = np.take(array, range(4, samples), axis=axis)  # alpha
        return np.concatenate([rgb, extra], axis=axis), axes, 2, samples - 1
    extra = tuple(int(e) for e in page.extrasamples)
    if photometric in (1, 2) and extra[:1] == (1,) and axes.endswith(("YXS", "SYX")) and array.dtype.kind in "uf":
        return _unpremultiplied(array, -1 if axes.endswith("YXS") else -3, samples - len(extra)), axes, \
            photometric, samples
    if photometric == 0 and samples == 1:  # MinIsWhite: 0 is white
        meta["_inverted"] = True  # its values are written back reversed, as float: no type of its own to keep
        if array.dtype.kind in "bi":  # ~v = -1 - v for signed values: reversed order, no overflow
            return ~array, axes, 1, 1
        if array.dtype.kind == "u" and int(page.bitspersample) <= 16:
            white = (1 << int(page.bitspersample)) - 1
            return (np.asarray(white, array.dtype) - array).astype(array.dtype), axes, 1, 1
        if array.dtype.kind == "u" and array.dtype.itemsize <= 4:  # counts, read as float data in their own
            return -1 - array.astype(np.int64), axes, 1, 1  # units: 2**32 - 1 - v would lose their precision
        if array.dtype.kind == "f":  # no white value: reversed order, as a viewer's inverted display
            return -array, axes, 1, 1
    return array, axes, photometric, samples


def _unpremultiplied(array: np.ndarray, axis: int, colours: int) -> np.ndarray:
    """Samples with associated (premultiplied) alpha, the ``colours`` first ones along ``axis`` and alpha next,
    as straight colour (divided by alpha; 0 where transparent): what the network restores and every output
    (PNG, WebP, a TIFF's unassociated alpha) holds. Kept premultiplied, half-transparent areas came out dark."""
    full = 1.0 if array.dtype.kind == "f" else float(np.iinfo(array.dtype).max)
    colour = np.take(array, range(colours), axis=axis).astype(np.float64)
    alpha = np.take(array, [colours], axis=axis).astype(np.float64)
    straight = np.where(alpha > 0, colour * full / np.where(alpha > 0, alpha, 1.0), 0.0)
    if array.dtype.kind == "f":  # float data keeps its values (counts above 1 too)
        straight = straight.astype(array.dtype)
    else:
        straight = np.round(np.clip(straight, 0.0, full)).astype(array.dtype)
    return np.concatenate([straight, np.take(array, range(colours, array.shape[axis]), axis=axis)], axis=axis)


def palette_colours(page) -> np.ndarray:
    """A palette TIFF page's colour map as (entries, 3) RGB: uint8 where its colours are 8-bit ones (stored as v,
    v * 256 or v * 257), else uint16 (the standard's 16 bits): the pixel type the image is read as."""
    colours = np.asarray(page.colormap).T
    if colours.max() <= 255:  # an 8-bit colour map (not the standard's 16 bits)
        return colours.astype(np.uint8)
    if not (colours % 256).any() or not (colours % 257).any():  # 8-bit colours, as v * 256 or v * 257
        return (colours // (256 if not (colours % 256).any() else 257)).astype(np.uint8)
    return colours.astype(np.uint16)


def _read_ppm16(path: Path) -> np.ndarray | None:
    """A binary colour PPM (P6) of more than 8 bits (maximum value over 255) as uint16 (H, W, 3) on the full
    16-bit scale, read here since PIL reduces it to 8 bits; None for any other file."""
    with open(path, "rb") as f:
        head = f.read(1024)
        fields = re.match(rb"P6(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)(?:\s|#[^\n]*\n)+(\d+)\s", head)
        if fields is None or not 255 < int(fields[3]) <= 65535:
            return None
        width, height, top = (int(v) for v in fields.groups())
        f.seek(fields.end())
        data = f.read(width * height * 6)
    if len(data) < width * height * 6:
        raise ImageReadError(f"{path}: cannot read image: truncated 16-bit PPM")
    pixels = np.frombuffer(data, ">u2").reshape(height, width, 3).astype(np.uint16)
    if top == 65535:
        return pixels
    return np.round(np.minimum(pixels, top) * (65535.0 / top)).astype(np.uint16)  # as PIL scales 16-bit PGM


def _webp_is_lossless(path: Path) -> bool:
    """Whether a WebP file's (first) image is stored lossless (a VP8L chunk), so the output is written so too."""
    with open(path, "rb") as f:
        if f.read(12)[8:] != b"WEBP":
            return False
        while len(header := f.read(8)) == 8:
            kind, size = header[:4], int.from_bytes(header[4:], "little")
            if kind in (b"VP8L", b"VP8 "):
                return kind == b"VP8L"
            f.seek(16 if kind == b"ANMF" else size + (size & 1), os.SEEK_CUR)  # an animation: its first frame's
    return False


#: TIFF tags that describe where and what the pixels are (GeoTIFF model, GDAL metadata and no-data value)
CARRIED_TIFF_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)
#: a photo's descriptive text, as TIFF tags and as the same fields of an EXIF block's first IFD: ImageDescription,
#: Make, Model, Software, DateTime, Artist, Copyright; carried to TIFF outputs (see tiff_write_options)
PHOTO_TAGS = (270, 271, 272, 305, 306, 315, 33432)
#: tifffile's page flags that say nothing of the ImageDescription: any other one (shaped, imagej, ome, a
#: microscope's ...) means the description holds that format's metadata, which is not carried as a photo's text
PLAIN_PAGE_FLAGS = frozenset({"multipage", "volumetric", "subifd", "frame", "virtual", "geotiff", "gdal", "dng",
                              "tiffep"})


def tiff_metadata(page) -> dict:
    """The ICC profile, resolution, georeferencing, descriptive (PHOTO_TAGS) and XMP tags of a TIFF page, to
    write back."""
    tags = page.tags
    meta: dict = {}
    icc = tags.get(34675)  # InterColorProfile
    if icc is not None and icc.value:
        meta["icc_profile"] = bytes(icc.value)
    photo = tuple((code, tags[code].value.encode("utf-8")) for code in PHOTO_TAGS
                  if code in tags and isinstance(tags[code].value, str) and tags[code].value.strip()
                  and (code != 270 or set(page.flags) <= PLAIN_PAGE_FLAGS))
    if photo:
        meta["photo_tags"] = photo
    xmp = tags.get(700)  # XMP packet (BYTE or UNDEFINED)
    if xmp is not None and isinstance(xmp.value, (bytes, tuple)) and xmp.value:
        meta["xmp"] = bytes(xmp.value)
    carried = tuple((t.code, int(t.dtype), t.count, t.value) for t in (tags.get(code) for code in CARRIED_TIFF_TAGS)
                    if t is not None)
    if carried:
        meta["tiff_tags"] = carried
    x, y, unit = tags.get(282), tags.get(283), tags.get(296)
    if x is not None and y is not None:
        meta["tiff_resolution"] = (tuple(x.value), tuple(y.value), int(unit.value) if unit is not None else 2)
    if int(page.compression) != 1:  # compressed: the output is too (an LZW stack written plain was 3x larger)
        meta["tiff_compression"] = (page.compression.name, int(page.predictor) != 1)
    orientation = tags.get(274)  # how to display the stored pixels: carried like a photo's EXIF orientation
    if orientation is not None and isinstance(orientation.value, numbers.Integral) \
            and int(orientation.value) in range(2, 9):  # (a damaged tag, e.g. two values, is left out)
        from PIL import Image

        exif = Image.Exif()
        exif[274] = int(orientation.value)
        meta["exif"] = exif.tobytes()
    return meta


def _exif_fields(exif: bytes | None, codes: Sequence[int]) -> dict:
    """The fields ``codes`` of an EXIF block's first IFD that it holds ({code: value as PIL reads it}); none for
    no block or a damaged one (nothing to carry)."""
    if not exif:
        return {}
    from PIL import Image

    try:
        found = Image.Exif()
        found.load(exif)
        return {code: found[code] for code in codes if code in found}
    except Exception:
        return {}


def exif_orientation(exif: bytes | None) -> int | None:
    """The orientation tag (2..8: rotated or mirrored for display) of an EXIF block, or None."""
    try:
        value = int(_exif_fields(exif, (274,)).get(274, 1))
    except (TypeError, ValueError):  # a damaged value: no orientation to carry
        return None
    return value if value in range(2, 9) else None


def exif_photo_tags(exif: bytes | None) -> dict:
    """The descriptive fields (:data:`PHOTO_TAGS`) of an EXIF block's first IFD, as {code: bytes as stored}."""
    values = _exif_fields(exif, PHOTO_TAGS)
    stored = {code: value.encode("latin-1", "replace") if isinstance(value, str) else value  # (PIL reads latin-1)
              for code, value in values.items() if isinstance(value, (str, bytes))}
    return {code: value for code, value in stored.items() if value.strip(b" \0")}


#: ImageJ metadata that tifffile derives from the written array (the rest is carried over)
IMAGEJ_SHAPE_KEYS = ("ImageJ", "images", "channels", "slices", "frames", "hyperstack")


#: the OME Pixels attributes carried from an OME-TIFF to its output (what the restored pixels still are)
OME_PIXEL_ATTRIBUTES = ("PhysicalSizeX", "PhysicalSizeXUnit", "PhysicalSizeY", "PhysicalSizeYUnit", "PhysicalSizeZ",
                        "PhysicalSizeZUnit", "TimeIncrement", "TimeIncrementUnit")


def ome_pixel_metadata(xml: str) -> dict:
    """From an OME-XML description, the first image's pixel sizes, time step (with their units) and channel
    names, as tifffile's OME writer takes them ({} when there are none or the XML cannot be read): a restored
    OME-TIFF came back a plain TIFF, its microscope's calibration lost."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return {}
    pixels = next((element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    found: dict = {}
    for key in OME_PIXEL_ATTRIBUTES:
        value = pixels.get(key)
        if value is None:
            continue
        if key.endswith("Unit"):  # a unit only with its value (a size that could not be read is left out)
            if key[:-4] in found:
                found[key] = value
            continue
        try:
            found[key] = float(value)
        except ValueError:
            continue
    names = [channel.get("Name") for channel in pixels if channel.tag.rsplit("}", 1)[-1] == "Channel"]
    if names and all(names):
        found["Channel"] = {"Name": names}
    return found


def tiff_write_options(info: "ImageInfo | None", pixels: np.ndarray | None = None, axes: str = "") -> dict:
    """tifffile.imwrite keywords that carry ``info``'s ICC profile, resolution, georeferencing tags, XMP (tag
    700) and descriptive tags (:data:`PHOTO_TAGS`: the TIFF's own, else its EXIF block's: a camera JPEG's Make,
    Model ... as TIFF tags; Software in place of tifffile's own); given the ``pixels`` to write and their
    ``axes``, also the axes description: as ImageJ metadata (so ImageJ opens the output as the hyperstack the
    input was) where the input was an ImageJ file and ImageJ can hold the pixels (8/16-bit or float32 planes,
    8-bit RGB), as OME metadata (pixel sizes, time step, channel names) where it was an OME-TIFF; else, for one
    image (axes YX / YXS) with an ImageDescription to carry, that description in place of tifffile's shape
    description (which one page does not need; a stack's layout does: there the input's is left out)."""
    options: dict = {}
    description = None
    if info is not None:
        options["iccprofile"] = info.icc_profile
        extratags = [(code, dtype, count, value, True) for code, dtype, count, value in info.tiff_tags]
        orientation = exif_orientation(info.exif)  # a phone photo's EXIF orientation as the TIFF tag
        if orientation is not None:
            extratags.append((274, 3, 1, orientation, True))
        photo = {**exif_photo_tags(info.exif), **dict(info.photo_tags)}  # (a TIFF's own tags win)
        description = photo.pop(270, None)
        if photo.get(305):  # in place of tifffile's "tifffile.py", not beside it
            options["software"] = photo.pop(305)
        extratags += [(code, 2, 0, value, True) for code, value in photo.items()]
        if info.xmp:
            extratags.append((700, 1, len(info.xmp), info.xmp, True))
        if extratags:
            options["extratags"] = extratags
        if info.tiff_resolution:
            x, y, unit = info.tiff_resolution
            options.update(resolution=(x, y), resolutionunit=unit)
    if pixels is None:
        return options
    options["metadata"] = {"axes": axes}
    dtype = pixels.dtype.name
    if (info is not None and info.imagej is not None and set(axes) <= set("TZCYXS")
            and dtype in ("uint8", "uint16", "float32") and (not axes.endswith("S") or dtype == "uint8"
                                                             and pixels.shape[-1] == 3)):
        display = ("min", "max", "Ranges") if dtype != info.dtype else ()  # a display range of other values
        kept = {k: v for k, v in info.imagej.items() if k not in IMAGEJ_SHAPE_KEYS + display}
        options.update(imagej=True, metadata={**kept, "axes": axes})
    elif info is not None and info.ome and pixels.ndim == len(axes):  # (not a streamed stack's stand-in pixels)
        ome = dict(info.ome)
        names = ome.pop("Channel", {}).get("Name", [])
        if names and "C" in axes and pixels.shape[axes.index("C")] == len(names):
            ome["Channel"] = {"Name": names}
        options.update(ome=True, metadata={**ome, "axes": axes})
    elif description and axes in ("YX", "YXS"):
        options.update(description=description, metadata=None)
    return options


#: TIFF codecs written back as they were read (tifffile's names); any other one (JPEG, WebP, JPEG 2000 ...:
#: lossy) gives lossless Deflate, since restored pixels re-compressed lossy would lose what was restored
LOSSLESS_TIFF_CODECS = {"LZW": "lzw", "ADOBE_DEFLATE": "zlib", "DEFLATE": "zlib", "ZSTD": "zstd",
                        "PACKBITS": "packbits", "LZMA": "lzma"}


def _tiff_compression(info: "ImageInfo | None", dtype: np.dtype, imagej: bool = False) -> dict:
    """tifffile.imwrite keywords that compress pixels of ``dtype`` as the input TIFF was (its codec where
    lossless, else Deflate; its predictor), so a compressed stack does not come back several times larger; {}
    for an uncompressed input. Codecs that need imagecodecs fall back to Deflate (zlib) where it is missing,
    and an ImageJ output keeps to what ImageJ reads (LZW, Deflate, PackBits; a predictor only with LZW on
    integers: a float predictor or one with Deflate shows as garbage there)."""
    if info is None or not info.tiff_compression:
        return {}
    name, predictor = info.tiff_compression
    codec = LOSSLESS_TIFF_CODECS.get(name, "zlib")
    if imagej and codec not in ("lzw", "zlib", "packbits"):
        codec = "zlib"
    if codec not in ("zlib", "packbits") and importlib.util.find_spec("imagecodecs") is None:
        codec = "zlib"  # (imagecodecs: tifffile's encoders for LZW, Zstandard, LZMA)
    predictor = bool(predictor) and codec != "packbits"
    if imagej and (codec != "lzw" or np.dtype(dtype).kind == "f"):
        predictor = False
    return {"compression": codec, "predictor": predictor}


#: the most pixel bytes a classic TIFF surely holds (offsets are 32-bit; tifffile's own margin)
TIFF_CLASSIC_LIMIT = 2**32 - 2**25
#: how much larger than the pixels compressed data may come out (LZW grows noisy data; 1.37x in an ad hoc probe)
COMPRESSED_GROWTH = 2


def tiff_packing(info: "ImageInfo | None", dtype: np.dtype, nbytes: int, imagej: bool = False) -> dict:
    """:func:`_tiff_compression`'s keywords for ``nbytes`` of pixels, and a file format that holds them:
    BigTIFF past 4 GB (tifffile picks it by itself only for uncompressed pixels it is given whole: a compressed
    stack that did not shrink enough was an error after the whole restoration; compressed, from 2 GB of pixels,
    since noise can make them grow); an ImageJ file, never BigTIFF, is then left uncompressed, since ImageJ
    reads pixels past 4 GB only when they are stored contiguously."""
    packing = _tiff_compression(info, dtype, imagej)
    if nbytes * (COMPRESSED_GROWTH if packing else 1) <= TIFF_CLASSIC_LIMIT:
        return packing
    return {} if imagej else {**packing, "bigtiff": True}


def _states_resolution(img) -> bool:
    """Whether a JPEG's EXIF block holds a resolution (XResolution), which PIL's ``dpi`` then reports."""
    try:
        return 0x011A in img.getexif()
    except Exception:  # a damaged EXIF block: no resolution read from it
        return False


def _pil_metadata(img) -> dict:
    meta: dict = {}
    if img.info.get("icc_profile"):
        meta["icc_profile"] = bytes(img.info["icc_profile"])
    dpi = img.info.get("dpi")  # the print size of a scan: written back (PNG, JPEG, TIFF)
    if img.format in ("JPEG", "MPO") and img.info.get("jfif_unit") not in (1, 2) and not _states_resolution(img):
        dpi = None  # PIL's 72 dpi default for a JPEG that states no resolution: not the file's
    if isinstance(dpi, tuple) and len(dpi) == 2 and all(isinstance(d, numbers.Real) and 0 < float(d) < 1e9
                                                        for d in dpi):
        from fractions import Fraction

        x, y = (Fraction(round(float(d), 2)).limit_denominator(100) for d in dpi)
        meta["tiff_resolution"] = ((x.numerator, x.denominator), (y.numerator, y.denominator), 2)
    if img.format in ("JPEG", "MPO"):  # re-encoded as it was: a 4:4:4 original lost colour detail to PIL's 4:2:0
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(img)
        if sampling in (0, 1, 2):
            meta["jpeg_subsampling"] = sampling
        if isinstance(img.info.get("comment"), bytes) and img.info["comment"]:
            meta["jpeg_comment"] = img.info["comment"]
        app13 = tuple(bytes(data) for marker, data in getattr(img, "applist", ()) if marker == "APP13" and data)
        if app13:
            meta["jpeg_app13"] = app13
        if img.info.get("progressive"):
            meta["jpeg_progressive"] = True
    if img.format in ("JPEG", "MPO", "WEBP", "PNG") and isinstance(img.info.get("xmp"), (bytes, str)) \
            and img.info["xmp"]:  # (a PNG's: its iTXt chunk "XML:com.adobe.xmp", in png_text too)
        xmp = img.info["xmp"]
        meta["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    if img.format == "PNG" and getattr(img, "text", None):
        meta["png_text"] = tuple((str(k), str(v)) for k, v in img.text.items())
    if img.format == "PNG" and (colour := png_colour_chunks(img.info)):
        meta["png_colour"] = colour
    if img.info.get("exif"):  # the block as stored (maker notes and sub-IFDs included)
        meta["exif"] = bytes(img.info["exif"])
    else:
        try:
            exif = img.getexif()
            if len(exif):
                meta["exif"] = exif.tobytes()
        except Exception:  # a damaged EXIF block must not stop the image from being restored
            pass
    return meta


def png_colour_chunks(info: dict) -> tuple:
    """The gAMA, cHRM and sRGB chunks ((type, data), ...) of a PNG whose values PIL read into ``info``
    (``gamma``, ``chromaticity``, ``srgb``: how the stored values map to light), to write back."""
    import struct

    chunks = []
    gamma = info.get("gamma")
    if isinstance(gamma, numbers.Real) and 0 < gamma * 100000 < 2**32:  # (stored as 100000 x gamma)
        chunks.append((b"gAMA", struct.pack(">I", round(gamma * 100000))))
    chromaticity = info.get("chromaticity")
    if isinstance(chromaticity, tuple) and len(chromaticity) == 8 \
            and all(isinstance(v, numbers.Real) and 0 <= v * 100000 < 2**32 for v in chromaticity):
        chunks.append((b"cHRM", struct.pack(">8I", *(round(v * 100000) for v in chromaticity))))
    if isinstance(info.get("srgb"), numbers.Integral) and int(info["srgb"]) in range(4):  # rendering intent
        chunks.append((b"sRGB", bytes([int(info["srgb"])])))
    return tuple(chunks)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageInfo]:
    """Read an image as float32 (H, W, C), C in {1, 3}, plus the info needed to write it back.

    Raises :class:`ImageReadError` with a one-line reason for anything that is not a readable image (a
    TIFF stack included: :func:`read_frames` reads those).
    """
    frames, info = read_frames(path)
    if info.stack_shape:
        raise ImageReadError(f"{path}: a stack of {len(frames)} images (axes {info.stack_axes}"
                             f"{'YXS' if info.channels == 3 else 'YX'}) where one image is expected (`restore` "
                             f"INPUT, `fit` and `video` take stacks)")
    return frames[0], info


def read_frames(path: str | os.PathLike) -> tuple[list[np.ndarray], ImageInfo]:
    """Every image a file holds, each float32 (H, W, C): one for an ordinary image, one per plane for a
    TIFF stack (z-slices, time points, microscope channels), whose leading axes ``info.stack_shape`` keeps
    so that :func:`write_frames` writes the restored stack back in the same layout."""
    if not isinstance(path, (str, os.PathLike)):
        raise UserError(f"{path!r}: expected an image file name (a str or pathlib.Path), not {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise ImageReadError(f"{path}: a video, not an image: `selfrestore video {shlex.quote(str(path))} -o OUT` "
                             "restores videos")
    try:
        array, meta = _read_pixels(path)
    except (ImageReadError, UserError):
        raise
    except Exception as exc:  # PIL / tifffile / astropy raise many types for corrupt data
        raise unreadable_image(path, exc) from None
    array = np.asarray(array)
    inverted = meta.pop("_inverted", False)
    frames, info = _frames_of(array, path, meta)
    info.stored_type = kept_stored_type(array.dtype, info.dtype, inverted)
    return frames, info


#: pixel types read as float counts that outputs keep (TIFF, FITS): see :attr:`ImageInfo.stored_type`
STORED_TYPES = ("int8", "int16", "int32", "int64", "uint32", "uint64", "float64")


def kept_stored_type(stored: np.dtype, dtype: str, inverted: bool = False) -> str | None:
    """The :attr:`ImageInfo.stored_type` of pixels stored as ``stored`` in the file and read as ``dtype``: the
    file's own type where it is read as float counts ("float32") and outputs can hold it (:data:`STORED_TYPES`),
    else None; never for a MinIsWhite image (``inverted``: its values are reversed, no type of its own to keep).
    One rule for every reader (an image or stack in memory, a streamed stack, a video's frames), so they agree."""
    name = np.dtype(stored).newbyteorder("=").name
    return name if dtype == "float32" and name in STORED_TYPES and not inverted else None


def _frames_of(array: np.ndarray, path: Path, meta: dict) -> tuple[list[np.ndarray], ImageInfo]:
    """:func:`read_frames` of the decoded ``array``."""
    stack = {k: meta.pop(k) for k in ("stack_shape", "stack_axes") if k in meta}
    if stack:
        kind = pixel_type(array)  # one pixel type for every plane (an int32 plane in 0..1000 would be 16-bit alone)
        if array.dtype.kind in "iu" and array.dtype not in (np.uint8, np.uint16) and kind in ("uint16", "float32"):
            array = array.astype(np.uint16 if kind == "uint16" else np.float32)
        frames = [stored_to_float_image(plane, path, meta) for plane in array]
        info = frames[0][1]
        info.stack_shape, info.stack_axes, info.alpha = stack["stack_shape"], stack["stack_axes"], None
        info.stack_alpha_dropped = any(i.alpha is not None for _, i in frames)
        if any(i.blank is not None for _, i in frames):  # blank pixels of every plane: (N, H, W, C)
            info.blank = np.stack([i.blank if i.blank is not None else np.zeros(p.shape, bool) for p, i in frames])
        info.plane_infinite = tuple(i.infinite for _, i in frames)
        if info.infinite:  # the signs of every plane's blank values, as blank
            info.blank_sign = np.stack([i.blank_sign if i.blank_sign is not None else np.zeros(p.shape, np.int8)
                                        for p, i in frames])
        return [pixels for pixels, _ in frames], info
    pixels, info = stored_to_float_image(array, path, meta)
    return [pixels], info


def stored_to_float_image(array: np.ndarray, path: Path, meta: dict) -> tuple[np.ndarray, ImageInfo]:
    """One stored image (H, W) or (H, W, C) as float32 (H, W, C) in [0, 1] with its alpha set aside."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[0] < MIN_SIDE or array.shape[1] < MIN_SIDE:
        raise ImageReadError(f"{path}: unsupported image shape {array.shape}")
    channels = array.shape[2]
    if not 1 <= channels <= 4:  # 0 (an empty TIFF plane): nothing to restore, and every later step would fail
        raise ImageReadError(f"{path}: {channels} channels; expected gray, RGB or RGBA")
    pixels, dtype = _to_float(array, path)
    alpha = None
    if channels == 2:  # gray + alpha
        pixels, alpha = pixels[:, :, :1], pixels[:, :, 1]
    elif channels == 4:  # RGB + alpha
        pixels, alpha = pixels[:, :, :3], pixels[:, :, 3]
    blank, infinite, sign = None, 0, None
    if dtype == "float32" and not np.isfinite(pixels).all():  # blank pixels (astronomy; +-inf of a ratio image
        blank = ~np.isfinite(pixels)                            # too): the network sees the median, they go back
        infinite = int(np.count_nonzero(np.isinf(pixels).any(axis=2)))  # pixels, not values   (NaN, or their inf)
        sign = np.isposinf(pixels).astype(np.int8) - np.isneginf(pixels) if infinite else None
        pixels = np.where(blank, np.median(pixels[~blank]) if not blank.all() else 0.0, pixels).astype(np.float32)
    pixels = np.ascontiguousarray(pixels)
    return pixels, ImageInfo(dtype=dtype, channels=pixels.shape[2], alpha=alpha, source=str(path), blank=blank,
                             plane_infinite=(infinite,), blank_sign=sign, **meta)


def chroma_subsampled_jpeg(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a colour JPEG whose chroma is stored at reduced resolution (4:2:0, 4:2:2: most
    cameras' and phones' JPEGs): its noise is no longer independent from pixel to pixel."""
    from PIL import JpegImagePlugin

    Image = pil_image()
    if Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return False
    try:
        with Image.open(path) as image:
            return image.format in ("JPEG", "MPO") and image.mode in ("RGB", "YCbCr") and \
                JpegImagePlugin.get_sampling(image) in (1, 2)
    except Exception:  # unreadable: reported where it is read
        return False


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Gray -> RGB by repetition, RGB -> gray by ITU-R BT.601 luma."""
    have = image.shape[2]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return np.repeat(image, 3, axis=2)
    if have == 3 and channels == 1:
        return (image @ np.array(LUMA, dtype=np.float32))[:, :, None]
    raise UserError(f"cannot convert {have} channels to {channels}")


# --------------------------------------------------------------------------------------------- writing
def stack_target_problem(source: str | os.PathLike, info: ImageInfo, planes: int,
                         target: str | os.PathLike) -> str | None:
    """Why ``target`` cannot receive the ``planes`` restored planes of the stack ``source`` (its suffix
    cannot hold a stack: only TIFF and FITS can), or None when it can or ``source`` is one image."""
    target = Path(target)
    if not info.stack_shape or target.suffix.lower() in STACK_SUFFIXES:
        return None
    return (f"{source}: a stack of {planes} images can only be written as TIFF or FITS; choose "
            f"{target.with_suffix('.tif')}")


def type_range(dtype: str | None) -> float:
    """The value of full scale of a pixel type: 255 for uint8, 65535 for uint16, 1 for float (and None)."""
    return {"uint8": 255.0, "uint16": 65535.0}.get(str(dtype), 1.0)


def stored_output_type(info: ImageInfo | None, suffix: str) -> np.dtype | None:
    """The type :func:`in_stored_type` writes float32 pixels of ``info``'s input in to a file of ``suffix``: the
    input's own type (:attr:`ImageInfo.stored_type`) where the format holds it (TIFF, FITS) and no alpha channel
    is written beside (float32 then: alpha in [0, 1] holds no int16 ... levels), else None (float32 stays). A
    writer that must fix its type before the pixels come (a stack streamed plane by plane) asks here, and so does
    the clipped-values warning (:func:`stored_type_clipped_share`), so it never speaks of a type not written."""
    suffix = suffix.lower()
    if info is None or not info.stored_type or suffix not in STACK_SUFFIXES or \
            (info.alpha is not None and suffix not in NO_ALPHA_SUFFIXES):
        return None
    return np.dtype(info.stored_type)


def blank_fill(info: ImageInfo) -> np.ndarray | np.float32:
    """What an output holds at the input's blank pixels (:attr:`ImageInfo.blank`): NaN, and the input's own +-inf
    where it held one (:attr:`ImageInfo.blank_sign`; a ratio image's infinities came back NaN, silently)."""
    sign = info.blank_sign
    if sign is None or info.blank is None or sign.shape != info.blank.shape:
        return np.float32(np.nan)
    return np.choose(sign + 1, [np.float32(-np.inf), np.float32(np.nan), np.float32(np.inf)]).astype(np.float32)


def in_stored_type(pixels: np.ndarray, info: ImageInfo | None, suffix: str) -> np.ndarray:
    """Float32 ``pixels`` of an output in the input's own type (:func:`stored_output_type`) where the format
    holds it (TIFF, FITS): integers rounded and clipped to the type's range, unless a pixel is NaN (a blank one,
    which no integer holds: float32 kept); float64 as float64."""
    target = stored_output_type(info, suffix)
    if target is None or pixels.dtype != np.float32:
        return pixels
    if target.kind == "f":
        return pixels.astype(target)
    if np.isnan(pixels).any():
        return pixels
    bounds = np.iinfo(target)  # the float64 nearest each bound from inside (2**63 - 1 rounds up to 2**63: wrapped)
    low, high = (float(np.nextafter(np.float64(b), np.float64(0))) if abs(float(b)) >= 2.0 ** 53 else float(b)
                 for b in (bounds.min, bounds.max))
    return np.clip(np.round(pixels.astype(np.float64)), low, high).astype(target)


def quantize(array: np.ndarray, dtype: str) -> np.ndarray:
    """Clip to [0, 1] and round to the integer type (float32 is returned unclipped)."""
    if dtype == "float32":
        return array.astype(np.float32)
    scale = 255.0 if dtype == "uint8" else 65535.0
    return np.round(np.clip(array, 0.0, 1.0) * scale).astype(np.uint8 if dtype == "uint8" else np.uint16)


def refuse_clipping(path: str | os.PathLike, images: Sequence[np.ndarray]) -> None:
    """A one-line UserError when float ``images`` far outside [0, 1] (counts, by
    :func:`~selfrestore.intensity_map.intensity_mapping`'s percentiles: not a restoration's slight overshoot) are
    to be written to ``path``'s integer format, which would clip them to [0, 1] silently. Called before the work
    too, on the input's float pixels."""
    if Path(path).suffix.lower() in STACK_SUFFIXES:
        return
    finite = [values for values in (np.asarray(image)[np.isfinite(image)] for image in images) if values.size]
    if finite and intensity_mapping(images) is not None:
        low, high = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
        raise UserError(f"{path}: data outside [0, 1] (float, or integers beyond 16 bits or signed: {low:g} .. "
                        f"{high:g}) needs a .tif/.tiff or .fits output")


def clipped_share(path: str | os.PathLike, images: Sequence[np.ndarray], dtype: str) -> float:
    """The share of ``images``' values that writing them to ``path`` as ``dtype`` would clip by more than a
    restoration's slight overshoot (outside [-0.02, 1.02]): 0 for float TIFF / FITS output. For float data
    just above 1 (an HDR-like float file), which :func:`refuse_clipping` lets through."""
    suffix = Path(path).suffix.lower()
    if dtype == "float32" and suffix in STACK_SUFFIXES:
        return 0.0
    total = sum(np.asarray(image).size for image in images)
    outside = sum(int(np.count_nonzero((image < -0.02) | (image > 1.02))) for image in images)
    return outside / max(total, 1)


def stored_type_clipped_share(path: str | os.PathLike, images: Sequence[np.ndarray], info: ImageInfo) -> float:
    """The share of ``images``' values that writing them to ``path`` in the input's integer type
    (:attr:`ImageInfo.stored_type`, :func:`in_stored_type`) clips to the type's range (0 where it does not apply)."""
    target = stored_output_type(info, Path(path).suffix)
    if target is None or target.kind not in "iu":
        return 0.0
    bounds = np.iinfo(target)
    total = sum(np.asarray(image).size for image in images)
    outside = sum(int(np.count_nonzero((image < bounds.min - 0.5) | (image > bounds.max + 0.5))) for image in images)
    return outside / max(total, 1)


def stored_type_clipping_said(source: str | os.PathLike, target: str | os.PathLike, share: float,
                              info: ImageInfo) -> str | None:
    """The warning that ``share`` (:func:`stored_type_clipped_share`) of the restored values of ``source`` are
    clipped to the range of its integer type in ``target``, or None for under 0.1% (a restoration's odd pixel):
    the same words from every command that writes the input's type (restore, its streamed stacks, video)."""
    if share <= 0.001:
        return None
    return (f"{target}: {100 * share:.1f}% of the restored values of {source} lie outside the range of its "
            f"{info.stored_type} pixels and are clipped to it")


def float_pixels(array: np.ndarray, where: str = "") -> tuple[np.ndarray, str | None]:
    """An image array as (H, W, C) float32 on the [0, 1] scale of its type, and that type when it is an integer
    one ("uint8" / "uint16", either byte order: scaled from its full range) or None (float, bool: taken as
    they are). Any other shape or type is a one-line UserError (``where``: the file it is for, or "")."""
    at = f"{where}: " if where else ""
    raw = np.asarray(array)
    if raw.ndim not in (2, 3) or raw.size == 0:
        raise UserError(f"{at}an image array must be (H, W) or (H, W, C), not of shape {raw.shape}")
    integer = {np.dtype(np.uint8): "uint8", np.dtype(np.uint16): "uint16"}.get(raw.dtype.newbyteorder("="))
    if integer is None and not (np.issubdtype(raw.dtype, np.floating) or raw.dtype == np.bool_):
        raise UserError(f"{at}image arrays must be float, uint8 or uint16, not {raw.dtype}")
    if (top := beyond_float32(raw)) is not None:
        raise UserError(f"{at}values up to {top:.3g} lie beyond the range of 32-bit floats (3.4e38), which "
                        "selfrestore computes in; rescale the data first")
    values = raw.astype(np.float32) / np.float32(type_range(integer))
    return (values[:, :, None] if values.ndim == 2 else values), integer


def _array_to_write(path: Path, array: np.ndarray, dtype: str | None) -> tuple[np.ndarray, str | None]:
    """(``array`` as (H, W, C) float32 on the [0, 1] scale, the bit depth to write when none is asked): a uint8
    / uint16 array is scaled from its full range (written as it is, it was clipped to white) and kept in
    its depth; a shape or type that is no image, a channel count the format cannot hold, or an unknown
    ``dtype`` is a UserError naming ``path``."""
    if dtype not in (None, "uint8", "uint16", "float32"):
        raise UserError(f"{path}: dtype {dtype!r}: use uint8, uint16 or float32")
    values, integer = float_pixels(array, str(path))
    if path.suffix.lower() not in STACK_SUFFIXES and not 1 <= values.shape[2] <= 4:
        hint = " (it looks like (C, H, W): pass array.transpose(1, 2, 0))" if np.shape(array)[0] in (1, 3, 4) else ""
        raise UserError(f"{path}: {values.shape[2]} channels; {path.suffix or 'this format'} holds gray or colour "
                        f"(+ alpha): 1 to 4 channels, a .tif more{hint}")
    return values, integer if dtype is None else dtype


def write_image(path: str | os.PathLike, array: np.ndarray, info: ImageInfo | None = None,
                dtype: str | None = None) -> Path:
    """Write an (H, W, C) or (H, W) float image atomically, in the input's bit depth by default.

    JPEG, BMP and WebP hold 8 bits (PNG, TIFF, PPM / PGM 16 too); float output needs a TIFF or FITS (float
    data far outside [0, 1] is refused for other formats: see :func:`refuse_clipping`). The alpha channel
    recorded in ``info`` is re-attached when the size matches and the format holds alpha (not JPEG, BMP,
    PPM/PGM: there it is left out).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    asked = dtype
    array, dtype = _array_to_write(path, array, dtype)
    dtype = dtype or (info.dtype if info else "uint8")
    if dtype == "float32":
        refuse_clipping(path, [array])
    if suffix in (".jpg", ".jpeg", ".bmp", ".webp"):
        dtype = "uint8"
    elif dtype == "float32" and suffix not in STACK_SUFFIXES:
        dtype = "uint16"
    if dtype == "float32" and info is not None and info.blank is not None and info.blank.shape == array.shape:
        array = np.where(info.blank, blank_fill(info), array)
    alpha = (info is not None and info.alpha is not None and info.alpha.shape == array.shape[:2]
             and suffix not in NO_ALPHA_SUFFIXES)
    if alpha:
        array = np.concatenate([array, info.alpha[:, :, None]], axis=2)
    pixels = quantize(array, dtype)
    if asked is None:  # the input's own type (int16, float64 ...; not beside alpha): see ImageInfo.stored_type
        pixels = in_stored_type(pixels, info, suffix)
    if suffix in FITS_SUFFIXES:  # colour as three planes (NAXIS3 = 3)
        return _write_fits(path, pixels if pixels.shape[2] == 1 else np.moveaxis(pixels, 2, 0), info)
    if pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    meta = {"icc_profile": info.icc_profile, "exif": info.exif,
            "dpi": _dpi(info.tiff_resolution, LARGEST_DPI.get(suffix, 0.0)),
            "lossless": info.webp_lossless and suffix == ".webp",
            "subsampling": info.jpeg_subsampling if suffix in (".jpg", ".jpeg") else None,
            "xmp": info.xmp if suffix in (".jpg", ".jpeg", ".webp") else None,
            "png_text": png_texts(info) if suffix == ".png" else None,
            "png_colour": info.png_colour if suffix == ".png" else None,
            "comment": info.jpeg_comment if suffix in (".jpg", ".jpeg") else None,
            "extra": b"".join(b"\xff\xed" + (len(data) + 2).to_bytes(2, "big") + data  # APP13, as stored
                              for data in info.jpeg_app13) if suffix in (".jpg", ".jpeg") else None,
            "progressive": info.jpeg_progressive and suffix in (".jpg", ".jpeg")} if info is not None else {}
    with atomic_path(path) as tmp:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            samples = pixels.shape[2] if pixels.ndim == 3 else 1
            layout: dict = {"photometric": "rgb" if samples >= 3 else "minisblack"}
            if samples > 1:  # one page of contiguous samples (tifffile would take 2 samples for pages)
                layout["planarconfig"] = "contig"
            if samples == 2:  # gray + alpha, or two bands ("unspecified")
                layout["extrasamples"] = [2 if alpha else 0]
            options = tiff_write_options(info, pixels, "YXS" if samples > 1 else "YX")
            tifffile.imwrite(str(tmp), pixels, **layout, **options,
                             **tiff_packing(info, pixels.dtype, pixels.nbytes, imagej=bool(options.get("imagej"))))
        else:
            _write_with_pil(tmp, pixels, suffix,  # (subsampling 0 is 4:4:4, a value)
                            {k: v for k, v in meta.items() if v or (k == "subsampling" and v is not None)})
    return path


XMP_PNG_KEY = "XML:com.adobe.xmp"  #: the iTXt keyword of a PNG's XMP packet


def png_texts(info: ImageInfo) -> tuple:
    """A PNG output's text chunks: the input's, and its XMP packet (a JPEG's, a TIFF's) where they hold none."""
    if info.xmp and all(key != XMP_PNG_KEY for key, _ in info.png_text):
        return (*info.png_text, (XMP_PNG_KEY, info.xmp.decode("utf-8", "replace")))
    return info.png_text


def _write_fits(path: Path, data: np.ndarray, info: ImageInfo | None) -> Path:
    """Write ``data`` ((H, W, 1), (C, H, W) or a stack) as the primary HDU, atomically, with the input's
    header; astropy sets BITPIX / NAXIS / BZERO from the data, so the input's scaling keywords are dropped, and
    so are the keywords that describe the input's pixels, not the restored ones (CHECKSUM / DATASUM: astropy
    reported the output corrupt; DATAMIN / DATAMAX: the old range)."""
    fits = astropy_fits()
    header = fits.Header.fromstring(info.fits_header) if info is not None and info.fits_header else fits.Header()
    for key in FITS_STRUCTURE_KEYWORDS:
        if key not in ("SIMPLE", "BITPIX", "NAXIS", "END"):  # (astropy writes these from the data)
            header.remove(key, ignore_missing=True, remove_all=True)
    data = data[:, :, 0] if data.ndim == 3 and data.shape[2] == 1 else data
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data=data, header=header).writeto(str(tmp), overwrite=True)
    return path


def write_frames(path: str | os.PathLike, frames: Sequence[np.ndarray], info: ImageInfo | None = None,
                 dtype: str | None = None) -> Path:
    """Write what :func:`read_frames` read: one image through :func:`write_image`, or a stack of (H, W, C)
    frames as one TIFF in the layout ``info.stack_shape`` / ``info.stack_axes`` describe, atomically, in
    the input's bit depth (or ``dtype``)."""
    if info is None or not info.stack_shape:
        if len(frames) != 1:
            raise ValueError(f"{len(frames)} frames but no stack layout to write them in")
        return write_image(path, frames[0], info, dtype)
    path = Path(path)
    if path.suffix.lower() not in STACK_SUFFIXES:
        raise UserError(f"{path}: a stack of {len(frames)} images can only be written as TIFF (.tif) or FITS")
    if len(frames) != int(np.prod(info.stack_shape)):
        raise ValueError(f"{len(frames)} frames do not fill a stack of shape {info.stack_shape}")
    planes = np.stack([np.asarray(f, dtype=np.float32).reshape(*f.shape[:2], -1) for f in frames])
    asked, dtype = dtype, dtype or info.dtype
    if dtype == "float32" and info.blank is not None and info.blank.shape == planes.shape:
        planes = np.where(info.blank, blank_fill(info), planes)
    pixels = quantize(planes, dtype)
    if asked is None:
        pixels = in_stored_type(pixels, info, path.suffix.lower())
    colour = pixels.shape[-1] >= 3
    pixels = pixels.reshape(*info.stack_shape, *(pixels.shape[1:] if colour else pixels.shape[1:3]))
    if path.suffix.lower() in FITS_SUFFIXES:
        return _write_fits(path, pixels, info)
    import tifffile

    axes = info.stack_axes + ("YXS" if colour else "YX")
    if axes.endswith("BYX"):  # multispectral bands go back to samples of each pixel
        pixels, axes = np.moveaxis(pixels, -3, -1), axes[:-3] + "YXS"
    # samples (colour, bands) are contiguous in each page; gray planes are pages of (H, W) each
    options = tiff_write_options(info, pixels, axes)
    with atomic_path(path) as tmp:
        tifffile.imwrite(str(tmp), pixels, photometric="rgb" if colour else "minisblack",
                         planarconfig="contig" if axes.endswith("S") else None, **options,
                         **tiff_packing(info, pixels.dtype, pixels.nbytes, imagej=bool(options.get("imagej"))))
    return path


MAX_JPEG_XMP = 65504  #: the most XMP bytes a JPEG's one APP1 segment holds (larger packets are left out)


def _write_with_pil(tmp: Path, pixels: np.ndarray, suffix: str, meta: dict | None = None) -> None:
    from PIL import Image

    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP",
           ".ppm": "PPM", ".pgm": "PPM"}.get(suffix)
    if fmt is None:
        raise OSError(f"no image format has the suffix {suffix!r}")  # atomic_path names the file asked for
    meta = dict(meta or {}) if fmt in ("PNG", "JPEG", "WEBP") else {}  # BMP / PPM hold neither
    if fmt == "JPEG" and len(meta.get("exif") or b"") > 65533:  # more than a JPEG marker holds: PIL refuses it
        orientation = exif_orientation(meta.pop("exif"))
        if orientation is not None:  # what matters for display: how to turn the pixels
            exif = Image.Exif()
            exif[274] = orientation
            meta["exif"] = exif.tobytes()
    if fmt == "JPEG" and len(meta.get("xmp") or b"") > MAX_JPEG_XMP:  # one APP1 segment: PIL refuses more
        meta.pop("xmp")
    text, colour = meta.pop("png_text", ()), meta.pop("png_colour", ())
    if (text or colour) and (pixels.dtype != np.uint16 or pixels.ndim == 2):  # PIL writes the chunks
        from PIL import PngImagePlugin

        meta["pnginfo"] = PngImagePlugin.PngInfo()
        for kind, data in colour:  # (PIL leaves sRGB out beside an ICC profile, as the PNG specification asks)
            meta["pnginfo"].add(kind, data)
        for key, value in text:
            meta["pnginfo"].add_itxt(key, value)
    elif text or colour:
        meta.update(png_text=text, png_colour=colour)  # a 16-bit colour PNG: _add_png_metadata writes them
    if pixels.dtype == np.uint16 and fmt == "PPM":  # PIL writes 8 bits only: a 16-bit PGM (P5) / PPM (P6) here
        if pixels.ndim == 3 and pixels.shape[2] != 3:
            raise OSError(f"PGM / PPM hold gray or RGB, not {pixels.shape[2]} channels")
        height, width = pixels.shape[:2]
        magic = b"P5" if pixels.ndim == 2 else b"P6"
        tmp.write_bytes(magic + b"\n%d %d\n65535\n" % (width, height) + pixels.astype(">u2").tobytes())
        return
    if pixels.dtype == np.uint16:
        if pixels.ndim == 2:
            Image.fromarray(pixels).save(tmp, format=fmt, **meta)
        else:  # PIL cannot hold 16-bit gray+alpha or RGB(A): write the PNG, then add the metadata chunks
            _write_png16(tmp, pixels)
            _add_png_metadata(tmp, meta)
        return
    options = {"quality": 95, **meta} if fmt in ("JPEG", "WEBP") else meta  # (PIL's WebP default: 80)
    image = Image.fromarray(pixels)
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    image.save(tmp, format=fmt, **options)


#: the largest resolution (dpi) a format's field holds: PNG's pHYs, 2**32 - 1 pixels per metre; JPEG's JFIF
#: density, 65535 per inch (an electron micrograph's 1e8 dpi or more is left out rather than wrapped around)
LARGEST_DPI = {".png": (2**32 - 1) * 0.0254, ".jpg": 65535.0, ".jpeg": 65535.0}


def _dpi(resolution: tuple | None, largest: float = 1e9) -> tuple[float, float] | None:
    """An :attr:`ImageInfo.tiff_resolution` as dots per inch (PIL's ``dpi``), or None without a physical unit
    or beyond ``largest``."""
    if not resolution:
        return None
    *values, unit = resolution
    inches = {2: 1.0, 3: 2.54}.get(int(unit))  # per inch, per centimetre; 1: no unit (an aspect ratio only)
    try:
        dpi = tuple(float(v[0]) / float(v[1]) * inches if isinstance(v, tuple) else float(v) * inches
                    for v in values) if inches else ()
    except (ZeroDivisionError, TypeError, ValueError, IndexError):
        return None
    return (dpi[0], dpi[1]) if len(dpi) == 2 and all(0 < d <= largest for d in dpi) else None


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    """Write a 16-bit gray+alpha or RGB(A) PNG (PIL cannot hold these): gray+alpha by hand (OpenCV writes
    1, 3 or 4 channels only), colour through OpenCV."""
    import cv2

    if pixels.shape[2] == 2:
        import struct
        import zlib

        height, width = pixels.shape[:2]
        rows = np.concatenate([np.zeros((height, 1), np.uint8),  # filter type 0 before each row
                               pixels.astype(">u2").reshape(height, -1).view(np.uint8)], axis=1)
        header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)  # 16 bits, colour type 4: gray + alpha
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                         + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))
        return
    order = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
    if not cv2.imwrite(str(path), cv2.cvtColor(pixels, order), [cv2.IMWRITE_PNG_COMPRESSION, 3]):
        raise OSError("OpenCV could not encode the 16-bit PNG")  # atomic_path names the file asked for


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _add_png_metadata(path: Path, meta: dict) -> None:
    """Insert gAMA / cHRM / sRGB / pHYs / iCCP / eXIf / iTXt chunks right after IHDR (where the PNG specification
    wants them: before IDAT); sRGB not beside an ICC profile (as PIL writes them, and the specification asks)."""
    import struct
    import zlib

    chunks = b"".join(_png_chunk(kind, data) for kind, data in meta.get("png_colour", ())
                      if not (kind == b"sRGB" and meta.get("icc_profile")))
    if meta.get("dpi"):  # pixels per metre, unit 1 (metre)
        chunks += _png_chunk(b"pHYs", struct.pack(">IIB", *(int(d / 0.0254 + 0.5) for d in meta["dpi"]), 1))
    if meta.get("icc_profile"):
        chunks += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta["icc_profile"]))
    if meta.get("exif"):
        exif = meta["exif"]
        chunks += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    for key, value in meta.get("png_text", ()):  # international text: keyword, no compression, no language
        chunks += _png_chunk(b"iTXt", key.encode("latin-1", "replace")[:79] + b"\x00\x00\x00\x00\x00"
                             + value.encode("utf-8"))
    if not chunks:
        return
    data = path.read_bytes()
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length + type, IHDR data, CRC
    path.write_bytes(data[:end_of_ihdr] + chunks + data[end_of_ihdr:])


def png16_colour_type(path: Path) -> int | None:
    """The PNG colour type of a 16-bit RGB (2), RGBA (6) or gray+alpha (4) PNG, which PIL would silently
    reduce to 8 bits; None for other files."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 and head[24] == 16 and head[25] in (2, 4, 6):
        return head[25]
    return None


def _read_png16_colour(path: Path) -> np.ndarray:
    """A 16-bit RGB(A) or gray+alpha PNG (see :func:`png16_colour_type`) through OpenCV."""
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ImageReadError(f"{path}: cannot read image: corrupt 16-bit PNG")
    if png16_colour_type(path) == 4:  # OpenCV expands gray + alpha to BGRA: keep gray and alpha
        return np.ascontiguousarray(array[:, :, [0, 3]])
    order = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, order)


# --------------------------------------------------------------------------------------------- helpers
def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) float array -> (1, C, H, W) float32 tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).unsqueeze(0).float()


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> (H, W, C) float32 array."""
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        t = t[0]
    return t.numpy().transpose(1, 2, 0).copy()
