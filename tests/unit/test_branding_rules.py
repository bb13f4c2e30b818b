"""Branding rules: WCAG contrast of the accent against white, and logo bytes that must be the raster type served."""

from __future__ import annotations

import pytest

from flexmail.domain.branding import LOGO_MAX_BYTES, BrandingError, check_accent, check_logo, contrast, sniff_image
from flexmail.domain.languages import choose, supported
from tests.branding_support import png


def test_contrast_matches_wcag_reference_values():
    """Black on white is 21:1, white on white 1:1, and #767676 is the lightest grey that reaches 4.5:1."""
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_accent_must_keep_white_text_readable():
    """A dark accent is accepted in lower case; a light one, or anything but #rrggbb, is refused."""
    assert check_accent("#0A66C2") == "#0a66c2"
    for bad in ("#777777", "#ffff00", "#fff", "0a66c2", "#0a66c2; background:url(x)", "red", None):
        with pytest.raises(BrandingError):
            check_accent(bad)


def test_logo_type_comes_from_the_bytes_and_must_match_what_was_declared():
    """PNG, JPEG, GIF and WebP are recognised by signature; a mismatch, an SVG or an oversize logo is refused."""
    assert sniff_image(png()) == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image(b"GIF89a....") == "image/gif"
    assert sniff_image(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert check_logo(png(), "image/png; charset=binary") == "image/png"
    for data, declared in ((png(), "image/jpeg"), (b"<svg/>", "image/svg+xml"), (b"<html>", "image/png"),
                           (png() + b"\0" * LOGO_MAX_BYTES, "image/png"), (png(), None)):
        with pytest.raises(BrandingError):
            check_logo(data, declared)


def test_language_choice_takes_the_first_supported_tag():
    """Region subtags reduce to the language; unknown or empty tags are skipped; English is the last resort."""
    assert supported("de-AT") == "de" and supported("nl_BE") == "nl" and supported("es") is None
    assert choose(None, "xx", "fr-BE", "de") == "fr"
    assert choose(None, "", "ja") == "en"
