"""Drawing a parsed sequence diagram (devtools.diagrams) as SVG: plain shapes and real text, in the web app's
light theme, laid out from the top down so that any text fits whatever system font the reader has.

Each message, note and block frame gets a band of its own, so text may run across other lanes (a halo in the
background's colour keeps it legible over lifelines) instead of widening the picture: the lanes stay close
and the whole diagram readable on a phone. Every number is rounded to a whole pixel: the output is the same
bytes on every machine.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devtools.diagrams import Diagram, Step

# The web app's light theme (web/src/web/static/web.css), and its fonts.
INK, MUTED, LINE, SOFT, ACCENT = "#1b1f24", "#57606a", "#d0d7de", "#f6f8fa", "#0b5cad"
NOTE, NOTE_EDGE = "#fff8c5", "#d4a72c"
FONTS = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
SIZE, LEAD, NAME, NUMBER = 16, 21, 15, 12  # text and its line height; participants and block keywords; step numbers
MARGIN, GAP, LANE, MIN_WIDTH, WRAP = 10, 12, 92, 480, 360
# DejaVu Sans advances in 1/100 em for " " to "~": the widest usual stand-in for system-ui, so text measured
# with them fits whatever font the reader's system has (Segoe UI, San Francisco, Roboto are narrower).
# fmt: off
_ADVANCE = (
    32, 40, 46, 84, 64, 95, 78, 27, 39, 39, 50, 84, 32, 36, 32, 34, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 34,
    34, 84, 84, 84, 53, 100, 68, 69, 70, 77, 63, 58, 77, 75, 29, 29, 66, 56, 86, 75, 79, 60, 79, 69, 63, 61, 73,
    68, 99, 69, 61, 69, 39, 34, 39, 84, 50, 50, 61, 63, 55, 63, 62, 35, 63, 63, 28, 28, 58, 28, 97, 63, 61, 63,
    63, 41, 52, 39, 63, 59, 82, 59, 59, 52, 64, 34, 64, 84,
)
# fmt: on


def width(text: str, size: float = SIZE, bold: bool = False) -> float:
    em = sum(_ADVANCE[ord(c) - 32] if 32 <= ord(c) < 127 else 70 for c in text) / 100
    return em * size * (1.1 if bold else 1.0)


def wrap(lines: list[str], limit: float, size: float = SIZE, bold: bool = False) -> list[str]:
    out: list[str] = []
    for line in lines:
        current = ""
        for word in line.split(" "):
            if current and width(f"{current} {word}", size, bold) > limit:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}".strip()
        out.append(current)
    return out


def _el(tag: str, content: str | None = None, /, **attrs: float | str) -> str:
    """An SVG element: numbers in whole pixels; `stroke_width=` is written stroke-width, `class_=` class."""
    written = ""
    for key, value in attrs.items():
        shown = f"{value:.0f}" if isinstance(value, float | int) else escape(value)
        written += f' {key.rstrip("_").replace("_", "-")}="{shown}"'
    return f"<{tag}{written}/>" if content is None else f"<{tag}{written}>{content}</{tag}>"


def _text(x: float, y: float, lines: list[str], lead: float = LEAD, halo: bool = True, **attrs: float | str) -> str:
    """Lines of text; with a halo in the background's colour where it crosses lifelines and frames."""
    spans = "".join(_el("tspan", escape(s, quote=False), x=x, y=y + i * lead) for i, s in enumerate(lines))
    return _el("text", spans, **{"text_anchor": "middle", **({"class_": "h"} if halo else {}), **attrs})


class _Canvas:
    """Lays the steps out top to bottom: each message, note and block frame gets a band of its own."""

    def __init__(self, d: Diagram) -> None:
        self.d, ids = d, list(d.participants)
        names = {p: d.participants[p][0] for p in ids}
        self.box = {p: max(76.0, max(width(s, NAME, bold=True) for s in names[p]) + 16) for p in ids}
        self.x: dict[str, float] = {}
        right = float(MARGIN)
        for i, p in enumerate(ids):
            gap = (self.box[ids[i - 1]] + self.box[p]) / 2 + GAP if i else 0.0
            self.x[p] = right + self.box[p] / 2 if not i else self.x[ids[i - 1]] + max(LANE, gap)
            right = self.x[p] + self.box[p] / 2
        self.width = max(right + MARGIN, MIN_WIDTH)
        for i, p in enumerate(ids):  # a narrow diagram spreads its lanes over the minimum width
            self.x[p] += (self.width - right - MARGIN) * (i / (len(ids) - 1) if len(ids) > 1 else 0.5)
        self.limit = min(WRAP, self.width - 2 * MARGIN)
        self.title = wrap([d.title], self.width - 2 * MARGIN, SIZE * 1.15, bold=True)
        self.box_h = 14 + max(len(v) for v in names.values()) * NAME * 1.2
        self.top = MARGIN + len(self.title) * LEAD * 1.15 + 8
        self.y = self.top + self.box_h + 14
        self.out: list[str] = []
        self.frames: list[str] = []
        self.open: list[tuple[str, float, list[str], list[tuple[float, list[str]]]]] = []

    def message(self, s: Step) -> None:
        a, b = self.x[s.who[0]], self.x[s.who[1]]
        dash = {"stroke_dasharray": "6 4"} if s.how == "-->>" else {}
        if a == b:  # to itself: a loop to the right, the text beside it
            lines = wrap(s.text, min(self.limit, self.width - MARGIN - a - 44))
            h = max(26, len(lines) * LEAD)
            self.out.append(_el("path", d=f"M{a:.0f} {self.y + 4:.0f}h36v{h:.0f}h-30", fill="none", stroke=INK, **dash))
            self.out.append(_el("path", d=f"M{a:.0f} {self.y + 4 + h:.0f}l9 -5v10z", fill=INK))
            self.out.append(_text(a + 44, self.y + SIZE, lines, text_anchor="start"))
            at, self.y = self.y + 4, self.y + h + 18
        else:
            lines = wrap(s.text, self.limit)
            half = max(width(line) for line in lines) / 2 + 4
            middle = min(max((a + b) / 2, MARGIN + half), self.width - MARGIN - half)
            at, tip = self.y + len(lines) * LEAD + 10, 1 if b > a else -1
            self.out.append(_text(middle, self.y + SIZE, lines))
            self.out.append(_el("path", d=f"M{a:.0f} {at:.0f}H{b - tip * 9:.0f}", stroke=INK, stroke_width=1.5, **dash))
            self.out.append(_el("path", d=f"M{b:.0f} {at:.0f}l{-tip * 11} -5v10z", fill=INK))
            self.y = at + 16
        if s.number:
            self.out.append(_el("circle", cx=a, cy=at, r=10, fill=ACCENT))
            self.out.append(_el("text", str(s.number), x=a, y=at + 4.5, text_anchor="middle", font_size=NUMBER,
                                font_weight="700", fill="#ffffff"))  # fmt: skip

    def note(self, s: Step) -> None:
        at, inset = [self.x[p] for p in s.who], MARGIN / 2 + 6 * len(self.open)
        if s.how == "over":
            spread = 50 if len(at) > 1 else 0
            left, right = min(at) - spread, max(at) + spread
            lines = wrap(s.text, max(self.limit, right - left - 16))
            w = max(right - left, max(width(line) for line in lines) + 20)
            left = min(max((left + right - w) / 2, inset + 4), self.width - inset - 4 - w)
        else:
            room = self.width - MARGIN - at[0] - 12 if s.how == "right of" else at[0] - 12 - MARGIN
            lines = wrap(s.text, min(self.limit, room - 20))
            w = max(width(line) for line in lines) + 20
            left = at[0] + 12 if s.how == "right of" else at[0] - 12 - w
        h = len(lines) * LEAD + 12
        self.out.append(_el("rect", x=left, y=self.y, width=w, height=h, rx=3, fill=NOTE, stroke=NOTE_EDGE))
        self.out.append(_text(left + w / 2, self.y + 6 + SIZE, lines, halo=False))
        self.y += h + 14

    def block(self, s: Step) -> None:
        inset = MARGIN / 2 + 6 * len(self.open)
        if s.kind == "block":
            label = wrap([f"[{' '.join(s.text)}]"], self.width - 2 * inset - 70)
            self.open.append((s.how, self.y, label, []))
            self.y += len(label) * LEAD + 14
        elif s.kind == "else":
            label = wrap([f"[{' '.join(s.text)}]"], self.width - 2 * inset - 20) if s.text else []
            self.open[-1][3].append((self.y, label))
            self.y += len(label) * LEAD + 12
        else:
            how, start, label, elses = self.open.pop()
            inset, self.y = MARGIN / 2 + 6 * len(self.open), self.y + 2
            w, tab = self.width - 2 * inset, width(how, NAME, bold=True) + 16
            self.frames += [
                _el("rect", x=inset, y=start, width=w, height=self.y - start, fill="none", stroke=MUTED),
                _el("path", d=f"M{inset:.0f} {start:.0f}h{tab:.0f}v16l-6 6h{6 - tab:.0f}z", fill=SOFT, stroke=MUTED),
                _el("text", how, x=inset + 7, y=start + 16, font_size=NAME, font_weight="700"),
                _text(inset + tab + 8, start + 17, label, text_anchor="start"),
            ]
            for at, lines in elses:
                self.frames.append(
                    _el("path", d=f"M{inset:.0f} {at:.0f}h{w:.0f}", stroke=MUTED, stroke_dasharray="4 3")
                )
                self.frames.append(_text(inset + 8, at + SIZE + 3, lines, text_anchor="start"))
            self.y += 12

    def svg(self, slug: str) -> str:
        for s in self.d.steps:
            getattr(self, s.kind if s.kind in ("message", "note") else "block")(s)
        bottom = self.y + 6
        height = bottom + self.box_h + MARGIN
        big: dict[str, float | str] = {"font_size": SIZE * 1.15, "font_weight": "700"}
        head = [
            _el("rect", width=self.width, height=height, fill="#ffffff"),
            _text(self.width / 2, MARGIN + SIZE * 1.15, self.title, LEAD * 1.15, halo=False, **big),
        ]
        for p, (name, actor) in self.d.participants.items():
            head.append(
                _el("path", d=f"M{self.x[p]:.0f} {self.top + self.box_h:.0f}V{bottom:.0f}", stroke=LINE, stroke_width=2)
            )
            for y in (self.top, bottom):
                box: dict[str, float | str] = {
                    "x": self.x[p] - self.box[p] / 2,
                    "y": y,
                    "width": self.box[p],
                    "height": self.box_h,
                }
                head.append(
                    _el("rect", **box, rx=self.box_h / 2 if actor else 4, fill=SOFT, stroke=ACCENT if actor else MUTED)
                )
                first = y + self.box_h / 2 + NAME * 0.35 - (len(name) - 1) * NAME * 0.6
                head.append(_text(self.x[p], first, name, NAME * 1.2, halo=False, font_size=NAME, font_weight="700"))
        inside = [
            _el("title", escape(self.d.title, quote=False), id=f"{slug}-title"),
            _el("desc", escape(" ".join([self.d.description, *_said(self.d)]).strip(), quote=False), id=f"{slug}-desc"),
            "<style>.h{paint-order:stroke;stroke:#ffffff;stroke-width:5px;stroke-linejoin:round}</style>",
            *head, *self.frames, *self.out,
        ]  # fmt: skip
        size: dict[str, float | str] = {
            "viewBox": f"0 0 {self.width:.0f} {height:.0f}",
            "width": self.width,
            "height": height,
        }
        labels = f"{slug}-title {slug}-desc"
        svg = _el("svg", "\n" + "\n".join(inside) + "\n", xmlns="http://www.w3.org/2000/svg", **size, role="img",
                  aria_labelledby=labels, font_family=FONTS, font_size=SIZE, fill=INK)  # fmt: skip
        return svg + "\n"


def _said(d: Diagram) -> list[str]:
    """The diagram in words, for <desc>: what a screen reader says for the picture."""
    name = {p: " ".join(lines) for p, (lines, _) in d.participants.items()}
    opening = {"alt": "If", "opt": "Only if", "loop": "Repeated while", "": "Otherwise"}
    closing = {"alt": "End of the alternatives.", "opt": "End of the option.", "loop": "End of the repetition."}
    said = []
    for s in d.steps:
        words = " ".join(s.text)
        if s.kind == "message":
            said.append(f"{f'{s.number}. ' if s.number else ''}{name[s.who[0]]} to {name[s.who[-1]]}: {words}.")
        elif s.kind == "note":
            said.append(f"Note on {' and '.join(name[p] for p in s.who)}: {words}.")
        else:
            said.append(f"{opening[s.how]} {words}:".replace(" :", ":") if s.kind != "end" else closing[s.how])
    return said


def render(d: Diagram, slug: str) -> str:
    """The diagram as SVG: boxes, lines and real text (found by search, kept sharp by zoom, read aloud)."""
    return _Canvas(d).svg(slug)
