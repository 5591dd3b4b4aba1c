"""Image decoding policy: how an image file becomes the float32 RGB tensor that RADN scores.

Formats are PNG, JPEG, WebP, TIFF and BMP, recognised by content (the file suffix is not used). A GIF
is refused with a message saying to convert it to PNG.

- Bit depth: 8-bit samples are divided by 255, 16-bit samples by 65535; 16-bit data is never reduced
  to 8 bits. Pillow reduces 16-bit colour PNGs to 8 bits, so they are decoded here in two passes of
  Pillow's PNG decoder, one for each byte of the samples. 16-bit grey TIFFs are read by Pillow; other
  16-bit TIFFs (grey + alpha, RGB, RGBA, min-is-white grey; strips or tiles; contiguous or separate
  planes; either byte order; uncompressed, Deflate or PackBits, with or without a predictor) are read
  by tifffile, which is imported only then. LZW and other codecs need the optional imagecodecs
  package; without it such a file is refused with a message that says so.
- Grey, 1-bit and palette images become RGB by repeating the grey channel or expanding the palette.
- EXIF orientation (all 8 values) is applied: width, height and pixels are those of the image as
  displayed. In a PNG only an eXIf chunk before the image data counts, as the PNG specification says.
- Colour: an embedded ICC profile is converted to sRGB with the relative colorimetric intent (the
  only one that matrix/TRC profiles define; no black-point compensation). A profile that maps every
  probe colour to within 2/255 of itself counts as sRGB and is left alone; so are images without a
  profile. 8-bit images are converted by LittleCMS (PIL.ImageCms). 16-bit images are converted in
  float32 here, which covers matrix/TRC profiles (Adobe RGB, Display P3, ProPhoto, ...); a 16-bit
  image with a LUT-based profile is refused rather than reduced to 8 bits.
- Alpha: alpha that is opaque everywhere is dropped. Any other alpha is composited over white, in
  sRGB after the colour conversion, and a note says how many pixels were not opaque; non-opaque alpha
  is never dropped silently.
- Size: an image over ``max_pixels`` (default 100 megapixels, or RADN_MAX_PIXELS) is refused from its
  header, before any pixel is decoded. While this package opens and decodes a file, Pillow's own
  decompression-bomb limit is switched off so that this limit and its message apply.
- Errors: every failure is an ImageError with a one-line message naming the file. Truncated data is
  an error, never grey pixels (this relies on Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` staying
  False, and on tifffile raising on short or missing segments).

Modules: ``api`` (the public functions), ``files`` (opening, limits, format sniffing, headers),
``decode`` (pixels), ``tiff16`` (16-bit TIFFs via tifffile), ``color`` (ICC profiles), ``finish``
(alpha, grey -> RGB, orientation) and ``pixels`` (the decoded planes every decoder hands on).
Imports point one way: ``api`` -> ``files``, ``decode``, ``finish``; ``decode`` -> ``tiff16``,
``color``, ``pixels``; ``tiff16`` -> ``color`` -> ``pixels``.
"""

from __future__ import annotations

from ..constants import PATCH
from .api import LoadedImage, check_pair, load_image, read_size
from .files import DEFAULT_MAX_PIXELS, SUPPORTED_SUFFIXES

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PATCH",
    "SUPPORTED_SUFFIXES",
    "LoadedImage",
    "check_pair",
    "load_image",
    "read_size",
]
