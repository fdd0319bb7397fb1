"""Restore TIFF stacks larger than memory, one plane at a time (light-sheet and time-lapse microscopy).

:func:`selfrestore.io.read_frames` decodes a whole stack to float32, which a stack of tens of GB does not
survive. Here the stored pixels are opened as a memory map instead (an uncompressed file maps directly; a
compressed one is decoded once into a temporary file beside the output), each plane is converted and
restored on its own, and the restored planes are written, in order, into a TIFF of the same axes, shape, bit
depth (an int16, uint32, float64 ... stack in its own type, as io.in_stored_type writes it), resolution,
georeferencing tags and codec (compressed plane by plane as the in-memory path compresses the whole stack),
renamed into place when complete. Only a few planes are ever in memory. Layouts: gray planes (axes ...YX) and
contiguous colour (...YXS); others are refused. The float32 --uncertainty stack is filled
into a memory map beside the output, then compressed from it as the in-memory path compresses it. Left
uncompressed: an ImageJ output that may not fit a classic TIFF compressed (io.tiff_packing: ImageJ files
are not BigTIFF, and offsets past 4 GB are only readable when the pixels are stored contiguously).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic_files import discard, publish, temporary_beside
from .errors import ImageReadError, UserError, unreadable_image
from .io import (ImageInfo, blank_fill, in_stored_type, integer_pixel_type, kept_stored_type, quantize,
                 stored_output_type, stored_to_float_image, stored_type_clipped_share, stored_type_clipping_said,
                 tiff_metadata, tiff_packing, tiff_pages_lost, tiff_write_options, type_range)


class NotStreamable(UserError):
    """The file is not a TIFF stack of a layout that can be read plane by plane."""


class StreamedStack:
    """The planes of a TIFF stack, read lazily from a memory map: ``open()``, then ``len(stack)`` and
    ``stack.plane(i)``. Constructing it only reads the header (and raises :class:`NotStreamable`). A compressed
    stack is decoded once into a hidden temporary file beside ``scratch`` (the output), removed on close."""

    def __init__(self, path: str | os.PathLike, scratch: Path):
        import tifffile

        self.path, self._scratch_name, self._scratch = Path(path), scratch, None
        try:
            with tifffile.TiffFile(str(self.path)) as tif:
                tiff_pages_lost(tif, self.path)
                series = tif.series[0]
                axes, shape, page = series.axes, tuple(int(n) for n in series.shape), tif.pages[0]
                meta = tiff_metadata(page)
                if tif.is_imagej and tif.imagej_metadata:  # spacing, unit, labels ...: carried as in io
                    meta["imagej"] = dict(tif.imagej_metadata)
                samples, photometric = int(page.samplesperpixel), int(page.photometric)
                extra = tuple(int(e) for e in page.extrasamples)
        except ImageReadError:
            raise
        except Exception as exc:  # tifffile raises many types for damaged files
            raise ImageReadError(f"{self.path}: cannot read TIFF: {str(exc).splitlines()[0] if str(exc) else exc!r}") \
                from None
        colour = axes.endswith("YXS") and photometric == 2 and samples in (3, 4)
        if photometric in (0, 3) or extra[:1] == (1,):  # read_frames shows them as displayed: in memory only
            raise NotStreamable(f"{self.path}: a MinIsWhite, palette or premultiplied-alpha stack is restored in "
                                "memory")
        if not (axes.endswith("YX") and samples == 1 or colour):
            raise NotStreamable(f"{self.path}: a stack with axes {axes} cannot be restored plane by plane (gray "
                                "...YX or colour ...YXS planes can)")
        image_axes = 3 if colour else 2
        self.stack_shape, self.stack_axes = shape[:-image_axes], axes[:-image_axes]
        if not self.stack_shape:
            raise NotStreamable(f"{self.path}: one image, not a stack")
        self._meta, self._image_shape = meta, shape[-image_axes:]

    def open(self) -> None:
        """Map the pixels (decoding a compressed file into the scratch file first)."""
        import tifffile

        try:
            pixels = tifffile.memmap(str(self.path), mode="r")
        except ValueError:  # compressed or scattered strips: decode once into a file-backed array
            self._scratch = temporary_beside(self._scratch_name)  # a killed run's: removed by the next one
            try:
                with tifffile.TiffFile(str(self.path)) as tif:
                    pixels = tif.series[0].asarray(out=str(self._scratch))
            except Exception as exc:  # a damaged strip (e.g. a cut-off copy): the codecs raise many types
                raise unreadable_image(self.path, exc) from None
        self._pixels = pixels
        self.planes = pixels.reshape(-1, *self._image_shape)  # a view: nothing is read yet
        self._cast = None  # integers beyond 16 bits: one pixel type for every plane, as read_frames decides
        if self.planes.dtype.kind in "iu" and self.planes.dtype not in (np.uint8, np.uint16):
            low = min(int(np.min(plane)) for plane in self.planes)
            high = max(int(np.max(plane)) for plane in self.planes)
            self._cast = np.dtype(integer_pixel_type(low, high, self.planes.dtype))
        first, self.info = stored_to_float_image(self._plane_array(0), self.path, self._meta)
        self.info.stored_type = kept_stored_type(self.planes.dtype, self.info.dtype)  # (MinIsWhite: NotStreamable)
        self.info.stack_alpha_dropped = self.info.alpha is not None
        self.info.stack_shape, self.info.stack_axes, self.info.alpha = self.stack_shape, self.stack_axes, None
        self.height, self.width, self.channels = first.shape

    def __len__(self) -> int:
        return len(self.planes)

    def plane(self, index: int) -> tuple[np.ndarray, ImageInfo]:
        """Plane ``index`` as float32 (H, W, C) (alpha dropped), and its own ImageInfo: where it held NaN or +-inf
        (blank, blank_sign)."""
        return stored_to_float_image(self._plane_array(index), self.path, {})

    def _plane_array(self, index: int) -> np.ndarray:
        plane = np.asarray(self.planes[index])
        return plane if self._cast is None else plane.astype(self._cast)

    def close(self) -> None:
        self._pixels = self.planes = None  # type: ignore[assignment]
        if self._scratch is not None:
            discard(self._scratch)


class _LazyPlanes(Sequence):
    """The planes of an open :class:`StreamedStack` as a sequence, each read when indexed (blank pixels NaN)."""

    def __init__(self, stack: StreamedStack) -> None:
        self.stack = stack

    def __len__(self) -> int:
        return len(self.stack)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not 0 <= index < len(self.stack):
            raise IndexError(index)
        pixels, plane = self.stack.plane(index)
        return pixels if plane.blank is None else np.where(plane.blank, np.float32(np.nan), pixels)


def restore_stack_streaming(source: str | os.PathLike, target: str | os.PathLike,
                            restore: Callable[[np.ndarray, Any], np.ndarray | tuple[np.ndarray, np.ndarray]],
                            progress: bool = False, announce: Callable[[str], None] | None = None,
                            std_target: str | os.PathLike | None = None,
                            decide: Callable[..., list[Any]] | None = None,
                            alpha_dropped: Callable[[str], None] | None = None, keep_target: bool = False,
                            clipped: Callable[[str], None] | None = None) -> int:
    """Restore every plane of the TIFF stack ``source`` with ``restore`` ((H, W, C), the plane's decision ->
    (H, W, C)) into the TIFF ``target``, plane by plane; returns the number of planes. ``decide``
    (planes, stack_shape, stack_axes) gives each plane's decision, reading the planes it needs lazily, one at a
    time (:meth:`selfrestore.restore.Restorer.stack_clipping`: one extra pass over the file); without it the
    decision is None. ``std_target``: ``restore`` returns (mean, std) and the std planes go to that
    float32 TIFF of the same layout. Outputs appear only when complete. :class:`NotStreamable` (before
    anything is written) for other files; ``announce`` is told it started, ``alpha_dropped`` that the planes'
    alpha channel is not restored (an RGBA stack), ``clipped`` that restored values were clipped to the range of
    the input's integer type (the target keeps the input's own type as the in-memory path does:
    :func:`selfrestore.io.in_stored_type`). ``keep_target``: the target is there already, written by a run
    stopped before its ``std_target`` (``restore --skip-existing``): it is kept when it has this stack's layout
    and pixel type (a UserError otherwise, before any work) and only the std is written."""
    import tifffile
    from tqdm import tqdm

    target = Path(target)
    stack = StreamedStack(source, scratch=target)  # a compressed stack is decoded into a file beside the target
    if target.suffix.lower() not in (".tif", ".tiff"):
        raise UserError(f"{source}: a stack restored plane by plane is written as TIFF; choose -o NAME.tif")
    if announce:
        announce(f"{source}: larger than memory allows at once; restoring it plane by plane")
    target.parent.mkdir(parents=True, exist_ok=True)
    if keep_target and std_target is None:
        raise ValueError("keep_target: only the std_target is written, and none is given")
    finals = ([] if keep_target else [target]) + ([Path(std_target)] if std_target is not None else [])
    partials: list[Path] = []
    try:
        for path in finals:  # (named as remove_stale_temporaries knows them; one made is removed if the next fails)
            partials.append(temporary_beside(path))
        stack.open()
        info: ImageInfo = stack.info
        if info.stack_alpha_dropped and alpha_dropped:
            alpha_dropped(f"{source}: the alpha channel of this stack's images is not restored; the output has none")
        colour = stack.channels >= 3
        plane_shape = (stack.height, stack.width, 3) if colour else (stack.height, stack.width)
        out_type = stored_output_type(info, target.suffix) or np.dtype(info.dtype)  # int16, float64 ... kept
        if keep_target and _stack_layout(target) != ((*stack.stack_shape, *plane_shape), out_type):
            raise UserError(f"{target}: exists (pass --overwrite to replace it)")  # not this stack's restoration
        axes = stack.stack_axes + ("YXS" if colour else "YX")

        def options(dtype: str) -> dict:
            """The writer's keywords for a stack of ``dtype``: ICC, resolution, and the axes (as ImageJ
            metadata where the input was an ImageJ file and ImageJ can hold that dtype)."""
            like = np.empty((3,) if colour else (1,), dtype=dtype)  # what tiff_write_options reads of the pixels
            found = tiff_write_options(info, like, axes)
            return {"photometric": "rgb" if colour else "minisblack",
                    **{k: v for k, v in found.items() if v is not None}}

        decisions = decide(_LazyPlanes(stack), stack.stack_shape, stack.stack_axes) if decide else [None] * len(stack)
        main_options = options(out_type.name)
        nbytes = len(stack) * int(np.prod(plane_shape)) * out_type.itemsize
        packing = tiff_packing(info, out_type, nbytes, imagej=bool(main_options.get("imagej")))
        std_out = std_packing = None
        if std_target is not None:  # float32, memory-mapped: filled beside the restored planes (then compressed)
            std_options = options("float32")
            std_packing = tiff_packing(info, np.dtype(np.float32), len(stack) * int(np.prod(plane_shape)) * 4,
                                        imagej=bool(std_options.get("imagej")))
            if std_packing.get("compression"):
                partials.append(temporary_beside(Path(std_target)))  # the uncompressed map, removed at the end
            std_out = tifffile.memmap(str(partials[-1]), shape=(*stack.stack_shape, *plane_shape),
                                      dtype=np.float32, **std_options).reshape(-1, *plane_shape)

        shares: list[float] = []  # of each plane's values clipped to the input's integer type (planes alike)

        def restored_planes():
            """Each plane restored, quantised to the output's bit depth and in the input's own type, in file order
            (its std into std_out)."""
            for index in tqdm(range(len(stack)), desc="planes", unit="plane", disable=not progress):
                pixels, plane = stack.plane(index)
                blank = plane.blank
                result = restore(pixels, decisions[index])
                mean, std = (result if std_out is not None else (result, None))
                if std_out is not None:
                    std = np.asarray(std, dtype=np.float32) * np.float32(type_range(info.dtype))  # data's units
                    std_out[index] = (std if blank is None else np.where(blank, np.float32(np.nan), std)
                                      ).reshape(plane_shape)
                mean = np.asarray(mean, dtype=np.float32)
                if blank is not None and info.dtype == "float32":  # NaN, or the input's +-inf, as they were
                    mean = np.where(blank, blank_fill(plane), mean)
                shares.append(stored_type_clipped_share(target, [mean], info))
                yield _in_type(in_stored_type(quantize(mean, info.dtype), info, target.suffix.lower()),
                               out_type, source).reshape(plane_shape)

        if keep_target:  # the planes' std alone is written
            for _ in restored_planes():
                pass
        elif packing.get("compression"):  # pages compressed as they come
            tifffile.imwrite(str(partials[0]), restored_planes(), shape=(*stack.stack_shape, *plane_shape),
                             dtype=out_type, **main_options, **packing)
        else:
            out = tifffile.memmap(str(partials[0]), shape=(*stack.stack_shape, *plane_shape),
                                  dtype=out_type, **main_options)
            planes_out = out.reshape(-1, *plane_shape)
            for index, plane in enumerate(restored_planes()):
                planes_out[index] = plane
            out.flush()
            del planes_out, out
        if std_out is not None:
            std_out.flush()
            if std_packing.get("compression"):  # plane by plane from the map, with the input's codec
                tifffile.imwrite(str(partials[len(finals) - 1]), (np.asarray(plane) for plane in std_out),
                                 shape=(*stack.stack_shape, *plane_shape), dtype=np.float32, **std_options,
                                 **std_packing)
            del std_out
        for partial, final in zip(partials, finals):
            publish(partial, final)
        if clipped and not keep_target and \
                (said := stored_type_clipping_said(source, target, float(np.mean(shares or [0.0])), info)):
            clipped(said)
    finally:
        stack.close()
        for partial in partials:
            discard(partial)
    return int(np.prod(stack.stack_shape))


def _in_type(plane: np.ndarray, out_type: np.dtype, source: str | os.PathLike) -> np.ndarray:
    """A restored plane from :func:`selfrestore.io.in_stored_type` in the streamed output's one type: a plane it
    left float32 for NaN, which no integer type holds, is refused (an integer input has no blank pixels, so only a
    restoration that failed makes them; the in-memory path would keep the whole stack float32)."""
    if plane.dtype != out_type:
        raise UserError(f"{source}: restored values are not numbers (NaN) where its {out_type} pixels were; "
                        "the output is not written")
    return plane


def _stack_layout(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """The shape and pixel type of the TIFF ``path``'s first series, read from its header (no pixels), or None
    if unreadable."""
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            return tuple(tif.series[0].shape), np.dtype(tif.series[0].dtype)
    except Exception:  # noqa: BLE001 - not a TIFF we wrote: some other file, left alone
        return None
