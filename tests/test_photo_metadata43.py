"""A photographer's metadata through `read_image` / `write_image` and `selfrestore restore` (audit 43):
a TIFF's descriptive tags and XMP, a camera JPEG's EXIF fields as TIFF tags, XMP between JPEG / PNG / TIFF,
a JPEG's comment, IPTC (APP13) and progressive coding, a PNG's gAMA / cHRM / sRGB (8 and 16 bits)."""
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, IptcImagePlugin

from selfrestore.cli import main
from selfrestore.io import read_image, write_image

XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta><?xpacket end="w"?>')
#: an APP13 payload: Photoshop IRB holding an IPTC record (2:120 caption "hello", 2:80 by-line "Ann")
IPTC = b"\x1c\x02\x78\x00\x05hello\x1c\x02\x50\x00\x03Ann"
APP13 = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(IPTC)) + IPTC + b"\x00" * (len(IPTC) & 1)
TIFF_TAGS = {270: "A sunset over the bay", 271: "Nikon", 272: "D850", 305: "Lightroom 13",
             306: "2024:01:02 03:04:05", 315: "Bob", 33432: "(c) Bob 2024"}
CAMERA = {271: "Canon", 272: "EOS R5", 305: "Firmware 1.2", 306: "2023:05:06 07:08:09", 315: "Ann",
          33432: "(c) Ann"}


def _pixels(channels=3, dtype=np.uint8):
    rng = np.random.default_rng(43)
    return (rng.random((64, 64, channels)) * np.iinfo(dtype).max).astype(dtype).squeeze()


def _camera_jpeg(path, **options):
    exif = Image.Exif()
    for code, value in CAMERA.items():
        exif[code] = value
    exif[274] = 1
    Image.fromarray(_pixels()).save(path, quality=90, exif=exif.tobytes(), xmp=XMP, comment=b"shot at dawn",
                                    extra=b"\xff\xed" + struct.pack(">H", len(APP13) + 2) + APP13, **options)
    return path


def _photo_tiff(path, **options):
    tags = [(code, 2, 0, value, True) for code, value in TIFF_TAGS.items() if code not in (270, 305)]
    tifffile.imwrite(path, _pixels(), photometric="rgb", description=TIFF_TAGS[270], metadata=None,
                     software=TIFF_TAGS[305], extratags=tags + [(700, 1, len(XMP), XMP, True)], **options)
    return path


def _tiff_tags(path):
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return {tag.code: tag.value for tag in page.tags}, [tag.code for tag in page.tags]


def _roundtrip(source, target):
    pixels, info = read_image(source)
    write_image(target, pixels, info)
    return target


def test_tiff_to_tiff_keeps_descriptive_tags_and_xmp_once(tmp_path):
    out = _roundtrip(_photo_tiff(tmp_path / "in.tif"), tmp_path / "out.tif")
    values, codes = _tiff_tags(out)
    assert {code: values.get(code) for code in TIFF_TAGS} == TIFF_TAGS
    assert values[700] == XMP
    assert codes.count(270) == 1 and codes.count(305) == 1  # the input's, not beside tifffile's own
    assert read_image(out)[0].shape == (64, 64, 3)


def test_imagej_tiff_keeps_its_description_and_gains_the_photo_tags(tmp_path):
    source = tmp_path / "ij.tif"
    tifffile.imwrite(source, np.zeros((64, 64), np.uint16) + 300, imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "YX"},
                     extratags=[(271, 2, 0, "Zeiss", True), (700, 1, len(XMP), XMP, True)])
    out = _roundtrip(source, tmp_path / "out.tif")
    values, codes = _tiff_tags(out)
    assert values[271] == "Zeiss" and values[700] == XMP
    assert codes.count(270) == 1 and values[270].startswith("ImageJ=")
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej and tif.imagej_metadata["spacing"] == 0.5 and tif.imagej_metadata["unit"] == "um"


def test_camera_jpeg_to_tiff_gets_its_exif_fields_as_tags_and_its_xmp(tmp_path):
    out = _roundtrip(_camera_jpeg(tmp_path / "in.jpg"), tmp_path / "out.tif")
    values, codes = _tiff_tags(out)
    assert {code: values.get(code) for code in CAMERA} == CAMERA
    assert values[700] == XMP and codes.count(305) == 1


def test_xmp_goes_from_jpeg_to_png_and_from_tiff_to_jpeg(tmp_path):
    png = _roundtrip(_camera_jpeg(tmp_path / "in.jpg"), tmp_path / "out.png")
    with Image.open(png) as img:
        assert img.text["XML:com.adobe.xmp"].encode("utf-8") == XMP
    jpeg = _roundtrip(_photo_tiff(tmp_path / "in.tif"), tmp_path / "out.jpg")
    with Image.open(jpeg) as img:
        assert img.info["xmp"] == XMP


def test_jpeg_comment_iptc_and_progressive_coding_are_kept(tmp_path):
    out = _roundtrip(_camera_jpeg(tmp_path / "in.jpg", progressive=True), tmp_path / "out.jpg")
    with Image.open(out) as img:
        assert img.info["comment"] == b"shot at dawn"
        assert img.info.get("progressive") == 1
        assert [data for marker, data in img.applist if marker == "APP13"] == [APP13]
        iptc = IptcImagePlugin.getiptcinfo(img)
        assert iptc[(2, 120)] == b"hello" and iptc[(2, 80)] == b"Ann"
        assert img.info["xmp"] == XMP  # (beside them, as before)


def _with_chunks(path, chunks):
    """``path``'s PNG with ``chunks`` inserted right after IHDR."""
    data = path.read_bytes()
    extra = b"".join(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
                     for kind, body in chunks)
    path.write_bytes(data[:33] + extra + data[33:])
    return path


COLOUR_CHUNKS = [(b"gAMA", struct.pack(">I", 45455)),
                 (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)),
                 (b"sRGB", b"\x01")]


@pytest.mark.parametrize("kind", ["rgb8", "gray16", "rgb16"])
def test_png_gamma_chromaticity_and_srgb_are_kept(tmp_path, kind):
    source = tmp_path / "in.png"
    if kind == "rgb16":  # PIL cannot write it: OpenCV
        import cv2

        cv2.imwrite(str(source), _pixels(3, np.uint16))
    else:
        Image.fromarray(_pixels(1, np.uint16) if kind == "gray16" else _pixels()).save(source)
    out = _roundtrip(_with_chunks(source, COLOUR_CHUNKS), tmp_path / "out.png")
    with Image.open(out) as img:
        assert img.info["gamma"] == pytest.approx(0.45455)
        assert img.info["chromaticity"] == pytest.approx((0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06))
        assert img.info["srgb"] == 1
    assert read_image(out)[1].dtype == ("uint8" if kind == "rgb8" else "uint16")


def _restore(source, target):
    assert main(["restore", str(source), "--model", "unet-gauss25", "-o", str(target), "--quiet"]) in (0, None)
    return target


def test_restore_jpeg_to_jpeg_keeps_comment_iptc_xmp_and_progressive(tmp_path):
    out = _restore(_camera_jpeg(tmp_path / "in.jpg", progressive=True), tmp_path / "out.jpg")
    with Image.open(out) as img:
        assert img.info["comment"] == b"shot at dawn" and img.info.get("progressive") == 1
        assert IptcImagePlugin.getiptcinfo(img)[(2, 120)] == b"hello"
        assert img.info["xmp"] == XMP
        assert img.getexif()[271] == "Canon"


def test_restore_tiff_to_tiff_keeps_descriptive_tags_and_xmp(tmp_path):
    out = _restore(_photo_tiff(tmp_path / "in.tif"), tmp_path / "out.tif")
    values, codes = _tiff_tags(out)
    assert {code: values.get(code) for code in TIFF_TAGS} == TIFF_TAGS
    assert values[700] == XMP and codes.count(270) == 1 and codes.count(305) == 1
