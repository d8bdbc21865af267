"""The body map: a front and a back view of the body whose regions are the anatomic sites the
classifier knows (the HAM10000 / ISIC localisation vocabulary, diagnosis.models.AnatomicSite).

One source for three things: the static drawing `static/diagnosis/body-map.svg` (written by
`python -m diagnosis.body_map`; tests/diagnosis/test_body_map.py checks the file is the render
of REGIONS), what a click on a region sets on the lesion form (site and laterality), and where
the patient page puts a lesion's mark.

The drawing is ours (simple shapes, no external asset). It follows the clinical convention for
body diagrams: the figures stand in the anatomical position, palms forward, and the patient's
right is on the viewer's left in the front view and on the viewer's right in the back view (the
"R" and "L" under each figure say so). So the front view's hands are palms and the back view's
feet are soles: both "acral" (palms and soles), as HAM10000 names them; the back of the hand is
"hand" and the top of the foot "foot".

Sites the map does not draw as their own region (trunk, unknown) stay in the drop-down, which
remains the way to choose a site without the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 400, 440
FRONT_X, BACK_X = 0, 200  # each view is 200 wide; the back view is the front's shape moved
STATIC_PATH = "diagnosis/body-map.svg"

FILL = "#f3e6dc"
STROKE = "#8a7a70"


@dataclass(frozen=True)
class Region:
    key: str  # "front-arm-right": the view, the part, the side
    view: str  # "front" | "back"
    site: str  # an AnatomicSite value
    laterality: str  # "left" | "right" | "" (none implied)
    name: str  # in words, e.g. "Right upper limb"
    shape: str  # an SVG element without attributes of ours: 'path d="..."', 'ellipse ...'
    anchor: tuple[float, float]  # where a lesion's mark goes

    @property
    def label(self) -> str:
        """'Right palm (acral)': the region and the site it sets, as the map's tooltip says."""
        # AnatomicSite's labels are its values capitalised; the value reads as words.
        return self.name if self.site in self.name.lower() else f"{self.name} ({self.site})"


def _mirror(d: str) -> str:
    """The path `d` mirrored about the figure's axis (x = 100). Paths of M, L, Q and Z only,
    whose numbers alternate x, y (an arc's flags would not)."""
    out, numbers = [], 0
    for token in d.replace(",", " ").split():
        try:
            value = float(token)
        except ValueError:
            out.append(token)
            continue
        out.append(_n(200 - value) if numbers % 2 == 0 else _n(value))
        numbers += 1
    return " ".join(out)


def _n(value: float) -> str:
    return f"{value:g}"


def _moved(shape: str, dx: float) -> str:
    """The shape moved right by `dx` (paths by their x coordinates, ellipses by cx)."""
    if shape.startswith("path"):
        d = shape.split('"')[1]
        out, numbers = [], 0
        for token in d.split():
            try:
                value = float(token)
            except ValueError:
                out.append(token)
                continue
            out.append(_n(value + dx) if numbers % 2 == 0 else _n(value))
            numbers += 1
        return f'path d="{" ".join(out)}"'
    parts = dict(part.split("=") for part in shape.split()[1:])
    parts["cx"] = f'"{_n(float(parts["cx"].strip(chr(34))) + dx)}"'
    return "ellipse " + " ".join(f"{k}={v}" for k, v in parts.items())


# The front view's shapes, patient's right on the left (x < 100). Each side's path is drawn once
# and mirrored for the other side.
HEAD = (100, 42, 22, 27)  # cx, cy, rx, ry
SCALP_FRONT = "M 79.6 32 A 22 27 0 0 1 120.4 32 Z"
FACE = "M 79.6 32 A 22 27 0 1 0 120.4 32 Z"
NECK = "M 91 67 L 109 67 L 110 82 L 90 82 Z"
CHEST_R = "M 100 82 L 80 82 Q 68 84 66 96 L 68 150 L 100 150 Z"
ABDOMEN_R = "M 100 150 L 68 150 L 70 210 L 90 210 L 100 214 Z"
GENITAL = "M 90 210 L 100 214 L 110 210 L 104 232 L 96 232 Z"
ARM_R = "M 66 92 L 57 97 L 43 196 L 55 199 L 66 126 Z"
LEG_R = "M 70 210 L 90 210 L 96 232 L 95 388 L 79 388 L 72 262 Z"
TRUNK_BACK_R = "M 100 82 L 80 82 Q 68 84 66 96 L 68 150 L 70 212 L 100 212 Z"
# Seen from behind the legs meet at the buttocks' fold: no genital area between them.
LEG_BACK_R = "M 70 212 L 100 212 L 97 240 L 95 388 L 79 388 L 72 262 Z"


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> str:
    return f'ellipse cx="{_n(cx)}" cy="{_n(cy)}" rx="{_n(rx)}" ry="{_n(ry)}"'


def _path(d: str) -> str:
    return f'path d="{d}"'


def _sided(view: str, part: str, site: str, words: str, shape_r: str, anchor_r) -> list[Region]:
    """The right and left region of a paired part. In the front view the patient's right is
    on the viewer's left (x < 100); in the back view it is on the viewer's right."""
    mirrored = _path(_mirror(shape_r.split('"')[1])) if shape_r.startswith("path") else None
    if mirrored is None:  # an ellipse: mirror its centre
        parts = dict(p.split("=") for p in shape_r.split()[1:])
        cx = float(parts["cx"].strip('"'))
        mirrored = shape_r.replace(f'cx="{_n(cx)}"', f'cx="{_n(200 - cx)}"')
    left_anchor = (200 - anchor_r[0], anchor_r[1])
    shapes = {"right": (shape_r, anchor_r), "left": (mirrored, left_anchor)}
    if view == "back":  # seen from behind, the patient's right is on the viewer's right
        shapes = {"right": (mirrored, left_anchor), "left": (shape_r, anchor_r)}
    return [
        Region(
            key=f"{view}-{part}-{side}",
            view=view,
            site=site,
            laterality=side,
            name=f"{side.capitalize()} {words}",
            shape=shape,
            anchor=anchor,
        )
        for side, (shape, anchor) in shapes.items()
    ]


def _front() -> list[Region]:
    return [
        Region("front-scalp", "front", "scalp", "", "Scalp", _path(SCALP_FRONT), (100, 24)),
        Region("front-face", "front", "face", "", "Face", _path(FACE), (100, 48)),
        *_sided("front", "ear", "ear", "ear", _ellipse(76, 44, 4, 8), (76, 44)),
        Region("front-neck", "front", "neck", "", "Front of the neck", _path(NECK), (100, 75)),
        *_sided("front", "chest", "chest", "chest", _path(CHEST_R), (84, 114)),
        *_sided("front", "abdomen", "abdomen", "abdomen", _path(ABDOMEN_R), (85, 182)),
        Region("front-genital", "front", "genital", "", "Genital area", _path(GENITAL), (100, 222)),
        *_sided("front", "arm", "upper extremity", "arm", _path(ARM_R), (55, 150)),
        *_sided("front", "palm", "acral", "palm", _ellipse(48, 212, 7, 12), (48, 212)),
        *_sided("front", "leg", "lower extremity", "leg", _path(LEG_R), (85, 300)),
        *_sided("front", "foot", "foot", "foot (top)", _ellipse(86, 400, 10, 8), (86, 400)),
    ]


def _back() -> list[Region]:
    """The back view: the front's outline moved right by BACK_X, with the back's own parts."""
    head = _ellipse(*HEAD)
    regions = [
        Region("back-scalp", "back", "scalp", "", "Back of the head", head, (100, 38)),
        *_sided("back", "ear", "ear", "ear", _ellipse(76, 44, 4, 8), (76, 44)),
        Region("back-neck", "back", "neck", "", "Back of the neck", _path(NECK), (100, 75)),
        *_sided("back", "trunk", "back", "side of the back", _path(TRUNK_BACK_R), (84, 150)),
        *_sided("back", "arm", "upper extremity", "arm", _path(ARM_R), (55, 150)),
        *_sided("back", "hand", "hand", "hand (back)", _ellipse(48, 212, 7, 12), (48, 212)),
        *_sided("back", "leg", "lower extremity", "leg", _path(LEG_BACK_R), (85, 300)),
        *_sided("back", "sole", "acral", "sole", _ellipse(86, 400, 10, 8), (86, 400)),
    ]
    return [
        Region(
            key=r.key,
            view=r.view,
            site=r.site,
            laterality=r.laterality,
            name=r.name,
            shape=_moved(r.shape, BACK_X),
            anchor=(r.anchor[0] + BACK_X, r.anchor[1]),
        )
        for r in regions
    ]


REGIONS: dict[str, Region] = {region.key: region for region in (*_front(), *_back())}


def region_for(site: str, laterality: str = "") -> Region | None:
    """Where a lesion recorded without a region (chosen in the drop-down, or recorded before
    the map) is marked: the first region of its site on the matching side, preferring the
    front view. None for a site the map does not draw (trunk, unknown)."""
    if site == "trunk":  # no region of its own: the front of the trunk, on its side if known
        site = "abdomen"
    for region in (r for r in REGIONS.values() if r.site == site):
        if not laterality or not region.laterality or region.laterality == laterality:
            return region
    return None


def render_svg() -> str:
    """The body map as a standalone SVG document: what `static/diagnosis/body-map.svg` holds.

    Each region is focusable (tabindex 0, role button, a name in words) so that, drawn inline
    in the lesion form, it can be chosen with the keyboard; as an <img> those attributes are
    inert. Colours are presentation attributes, never style attributes (the portal's
    Content-Security-Policy)."""
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" class="body-map-drawing" role="group" '
        'aria-label="Body map: front and back views" font-family="DejaVu Sans, sans-serif">',
        "<title>Body map: front view on the left, back view on the right</title>",
    ]
    for view, x0 in (("front", FRONT_X), ("back", BACK_X)):
        caption = "Front" if view == "front" else "Back"
        left_letter, right_letter = ("R", "L") if view == "front" else ("L", "R")
        lines.append(
            f'<text x="{x0 + 100}" y="12" text-anchor="middle" font-size="12" '
            f'font-weight="bold" fill="#1d2733">{caption}</text>'
        )
        lines.append(
            f'<text x="{x0 + 30}" y="432" text-anchor="middle" font-size="12" '
            f'fill="#5b6875">{left_letter}</text>'
            f'<text x="{x0 + 170}" y="432" text-anchor="middle" font-size="12" '
            f'fill="#5b6875">{right_letter}</text>'
        )
        lines.append(f'<g class="body-map-view" data-view="{view}">')
        for region in REGIONS.values():
            if region.view != view:
                continue
            lines.append(
                f'<{region.shape} id={quoteattr("region-" + region.key)} class="region" '
                f'data-region="{region.key}" data-site="{region.site}" '
                f'data-laterality="{region.laterality}" data-label={quoteattr(region.label)} '
                f'tabindex="0" role="button" aria-pressed="false" '
                f"aria-label={quoteattr(region.label)} "
                f'fill="{FILL}" stroke="{STROKE}" stroke-width="1">'
                f"<title>{escape(region.label)}</title></{region.shape.split()[0]}>"
            )
        lines.append("</g>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def marks_svg(marks, *, drawing_url: str, label: str, view: str = "") -> str:
    """The body map drawing (`drawing_url`, the static SVG as an image) with a numbered mark
    for each lesion, coloured by the triage of its latest result, each a link to the lesion's
    page with its description as the tooltip. `marks` are diagnosis.selectors.lesion
    LesionMark-like objects with `number`, `x`, `y`, `level`, `title`, `url`; marks without a
    region (`region` None) are left out. `view` ("front" or "back") shows that view alone, at
    twice the size. Returns SVG markup (the caller marks it safe)."""
    from diagnosis.presentation import LEVEL_COLOURS

    x0, width = {"front": (FRONT_X, 200), "back": (BACK_X, 200)}.get(view, (0, WIDTH))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0} 0 {width} {HEIGHT}" '
        f'class="body-map-marks" role="group" aria-label={quoteattr(label)}>',
        f'<image href={quoteattr(drawing_url)} x="0" y="0" width="{WIDTH}" height="{HEIGHT}"/>',
    ]
    for mark in marks:
        if mark.region is None:
            continue
        colour = LEVEL_COLOURS.get(mark.level, LEVEL_COLOURS[""])
        parts.append(
            f'<a href={quoteattr(mark.url)} class="mark" data-lesion="{mark.lesion.pk}" '
            f'data-level="{mark.level or "none"}" aria-label={quoteattr(mark.title)}>'
            f"<title>{escape(mark.title)}</title>"
            f'<circle cx="{_n(mark.x)}" cy="{_n(mark.y)}" r="8" fill="{colour}" stroke="#fff" '
            f'stroke-width="2"/><text x="{_n(mark.x)}" y="{_n(mark.y + 3.5)}" '
            f'text-anchor="middle" font-size="10" font-weight="bold" fill="#fff" '
            f'font-family="DejaVu Sans, sans-serif">{mark.number}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


if __name__ == "__main__":
    print(render_svg(), end="")
