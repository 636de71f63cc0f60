"""Code 128 barcodes (code set B: printable ASCII), drawn as bars for an inline SVG on
the printable pages and as rectangles in their PDFs.

Code 128 (ISO/IEC 15417): a start symbol, one symbol per character, a checksum symbol
((start value + Σ position × value) mod 103) and the stop symbol. Each symbol is six
alternating bar and space widths in modules (11 modules; the stop, with its final bar,
13). A quiet zone of ten modules either side.
"""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

# Bar/space widths of the symbol values 0–106 (106: the stop with its termination bar).
PATTERNS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)
START_B, STOP = 104, 106
QUIET = 10
MAX_LENGTH = 80


@dataclass(frozen=True)
class Barcode:
    text: str
    bars: tuple[tuple[int, int], ...]  # (x, width) of each bar, in modules from the left edge
    width: int  # modules, quiet zones included


def symbols(text: str) -> list[int]:
    """The symbol values of ``text`` in code set B, with start, checksum and stop.
    ValueError for characters outside printable ASCII or an over-long text."""
    if not text or len(text) > MAX_LENGTH:
        raise ValueError(f"a Code 128 barcode holds 1 to {MAX_LENGTH} characters")
    values = []
    for char in text:
        code = ord(char)
        if not 32 <= code <= 126:
            raise ValueError(f"“{char}” can't be written in a Code 128 barcode (code set B)")
        values.append(code - 32)
    checksum = (START_B + sum(position * value for position, value in enumerate(values, 1))) % 103
    return [START_B, *values, checksum, STOP]


def code128(text: str) -> Barcode:
    bars = []
    x = QUIET
    for value in symbols(text):
        for index, width in enumerate(int(w) for w in PATTERNS[value]):
            if index % 2 == 0:  # bars at even positions, spaces between
                bars.append((x, width))
            x += width
    return Barcode(text, tuple(bars), x + QUIET)


def svg(text: str, *, height: int = 50, module: float = 1.5, label: str | None = None) -> Markup:
    """An inline SVG of the barcode (no script, no style attribute: the CSP allows it),
    or an empty string when ``text`` can't be encoded."""
    try:
        code = code128(text)
    except ValueError:
        return Markup("")
    rects = "".join(f'<rect x="{x}" y="0" width="{w}" height="{height}"/>' for x, w in code.bars)
    title = escape(label or f"Barcode {text}")
    return Markup(
        f'<svg class="barcode" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" '
        f'width="{code.width * module:g}" height="{height}" viewBox="0 0 {code.width} {height}" '
        f'preserveAspectRatio="none" shape-rendering="crispEdges"><title>{title}</title>'
        f'<rect x="0" y="0" width="{code.width}" height="{height}" fill="#fff"/><g fill="#000">{rects}</g></svg>')
