"""Per-list branding rules: accent colour with a readable contrast, logo images we accept.

Pure functions: the service fetches the logo, these decide whether it may be shown.
"""

from __future__ import annotations

import re

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: WCAG 2 AA for normal text: the accent is a button background under white text and the
#: colour of links and borders on white, so it must reach this ratio against white.
MIN_CONTRAST = 4.5
LOGO_MAX_BYTES = 256 * 1024
#: Raster formats only: an SVG can carry scripts and external references.
LOGO_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class BrandingError(ValueError):
    """A branding value that cannot be used; ``reason`` is safe to show to the marketer."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _luminance(colour: str) -> float:
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1.0 to 21.0)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def check_accent(colour: str) -> str:
    """``#RRGGBB`` -> ``#rrggbb`` if white text on it (and it on white) stays readable."""
    if not isinstance(colour, str) or not COLOUR.match(colour):
        raise BrandingError("A colour as #rrggbb.")
    colour = colour.lower()
    ratio = contrast(colour, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise BrandingError(f"Too light: contrast with white is {ratio:.1f}:1, at least {MIN_CONTRAST}:1 is needed.")
    return colour


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes really are (by signature), or ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_logo(data: bytes, declared_type: str | None) -> str:
    """The content type of an acceptable logo; the declared type must match the bytes."""
    if len(data) > LOGO_MAX_BYTES:
        raise BrandingError(f"The logo is larger than {LOGO_MAX_BYTES // 1024} KiB.")
    declared = (declared_type or "").split(";", 1)[0].strip().lower()
    if declared not in LOGO_TYPES:
        raise BrandingError("The logo must be served as image/png, image/jpeg, image/gif or image/webp.")
    actual = sniff_image(data)
    if actual != declared:
        raise BrandingError("The logo's bytes are not the image type it was served as.")
    return actual
