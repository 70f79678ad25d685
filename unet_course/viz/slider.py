"""Pictures that change with sliders, as one self-contained piece of HTML.

The built book has no Python kernel behind it, so an ipywidgets slider there would do nothing.
:class:`ImageSlider` renders every picture its sliders can reach in advance, embeds them as PNG
data URLs, and switches between them with a few lines of JavaScript: no server, no network, no
widget library. The same output works in JupyterLab and in the static pages.

Layout: a row of titled panels (pictures), a caption line, and one range slider per axis
(e.g. ``slice`` and ``threshold``). Every combination of slider positions is one *frame*; a
frame is one picture per panel, and identical pictures are stored once.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
from typing import Callable, Sequence

import numpy as np
from PIL import Image

#: the most frames one slider widget may pre-render (each is a set of PNG pictures)
MAX_FRAMES = 400

_RENDERED = itertools.count()  # numbers each rendering's element id in this process


def png_data_url(picture: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URL of a picture.

    Args:
        picture: (H, W) grey or (H, W, 3) RGB floats in [0, 1] (values outside are clipped).
    """
    picture = np.asarray(picture, dtype=np.float32)
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"picture must be (H, W) or (H, W, 3), got shape {picture.shape}")
    pixels = np.round(np.clip(np.nan_to_num(picture), 0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ImageSlider:
    """Panels of pictures chosen by sliders, rendered in advance.

    Args:
        sliders: slider name → the labels of its positions, e.g.
            ``{"threshold": ["0.05", "0.10", ...]}``; several sliders make a grid of frames.
        panels: the panels' titles, left to right.
        pictures: called with one position per slider (a tuple of ints), returns one picture
            per panel (see :func:`png_data_url` for the accepted arrays).
        caption: called like ``pictures``, returns the text under the panels.
        start: the sliders' first positions (default: each slider's first).
        title: a heading above the widget.
        note: a smaller line under the heading (e.g. a colour legend).
        width: displayed width of each panel in CSS pixels (pictures are scaled, pixelated).

    ``_repr_html_`` lets Jupyter show it; ``frame_count`` and ``frame(position)`` expose what
    was rendered (for tests).
    """

    def __init__(self, sliders: dict[str, Sequence[str]], panels: Sequence[str],
                 pictures: Callable[[tuple[int, ...]], Sequence[np.ndarray]],
                 caption: Callable[[tuple[int, ...]], str] | None = None,
                 start: Sequence[int] | None = None, title: str | None = None,
                 note: str | None = None, width: int = 200):
        if not sliders or any(len(labels) == 0 for labels in sliders.values()):
            raise ValueError("every slider needs at least one position")
        self.names = list(sliders)
        self.labels = [[str(label) for label in labels] for labels in sliders.values()]
        self.shape = tuple(len(labels) for labels in self.labels)
        if int(np.prod(self.shape)) > MAX_FRAMES:
            raise ValueError(f"{' × '.join(map(str, self.shape))} slider positions make "
                             f"{int(np.prod(self.shape))} frames; at most {MAX_FRAMES}")
        self.panels = [str(panel) for panel in panels]
        self.start = tuple(start) if start is not None else (0,) * len(self.shape)
        if len(self.start) != len(self.shape) or any(
                not 0 <= s < n for s, n in zip(self.start, self.shape)):
            raise ValueError(f"start {self.start} is outside the sliders' positions {self.shape}")
        self.title, self.note, self.width = title, note, int(width)
        self.pool: list[str] = []  # unique data URLs
        self.frames: list[list[int]] = []  # per frame (row-major over sliders): pool indices
        self.captions: list[str] = []
        where: dict[str, int] = {}
        for position in itertools.product(*(range(n) for n in self.shape)):
            shown = list(pictures(position))
            if len(shown) != len(self.panels):
                raise ValueError(f"pictures{position} gave {len(shown)} pictures for "
                                 f"{len(self.panels)} panels")
            row = []
            for picture in shown:
                url = png_data_url(picture)
                if url not in where:
                    where[url] = len(self.pool)
                    self.pool.append(url)
                row.append(where[url])
            self.frames.append(row)
            self.captions.append(caption(position) if caption else "")
        by_position = np.array(self.frames).reshape(*self.shape, len(self.panels))
        #: per panel, the sliders whose moving changes its picture (the alt text names them)
        self.depends = [[axis for axis in range(len(self.shape))
                         if (np.diff(by_position[..., j], axis=axis) != 0).any()]
                        for j in range(len(self.panels))]

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    def frame_index(self, position: Sequence[int]) -> int:
        """Row-major index of the frame at one position per slider."""
        return int(np.ravel_multi_index(tuple(position), self.shape))

    def frame(self, position: Sequence[int]) -> tuple[list[str], str]:
        """The data URLs of the panels and the caption shown at ``position``."""
        index = self.frame_index(position)
        return [self.pool[i] for i in self.frames[index]], self.captions[index]

    def alt(self, panel: int, position: Sequence[int]) -> str:
        """Panel ``panel``'s text for a screen reader at ``position``: its title and the
        positions of the sliders that change its picture, ``"binarized: slice volume 3,
        slice 19, threshold 0.50"`` (the script keeps it so as they move)."""
        shown = ", ".join(f"{self.names[a]} {self.labels[a][position[a]]}"
                          for a in self.depends[panel])
        return f"{self.panels[panel]}: {shown}" if shown else self.panels[panel]

    def to_html(self) -> str:
        """The widget as HTML with inline CSS and JavaScript (no external resources)."""
        payload = json.dumps({"pool": self.pool, "frames": self.frames,
                              "captions": self.captions, "labels": self.labels,
                              "shape": self.shape, "panels": self.panels,
                              "names": self.names, "depends": self.depends})
        safe_payload = payload.replace("</", "<\\/")  # cannot end the script element early
        # the content's hash, numbered: two renderings of one slider on a page (shown twice,
        # or two sliders alike) each find their own element, not the first
        uid = f"unet-slider-{hashlib.sha1(payload.encode()).hexdigest()[:12]}-{next(_RENDERED)}"
        urls, caption = self.frame(self.start)
        # panels two abreast on a phone (a 2×2 grid, not one tall column)
        figures = "".join(
            f'<figure style="margin:0 6px 4px 0;text-align:center;'
            f'width:min({self.width}px, calc(50% - 6px))">'
            f'<img class="unet-slider-img" alt="{html.escape(self.alt(j, self.start))}" '
            f'src="{url}" '
            f'style="width:100%;height:auto;image-rendering:pixelated;'
            f'display:block;border:1px solid #ccc">'
            # the output's own colour: the theme's muted caption grey is 1.7:1 on the light
            # box dark mode puts outputs in
            f'<figcaption style="font-size:0.85em;color:inherit">{html.escape(name)}'
            f'</figcaption></figure>'
            for j, (name, url) in enumerate(zip(self.panels, urls)))
        # a screen reader hears each slider's value (aria-valuetext) and then the caption (a
        # live region); the readout beside the slider, the same value, is not read twice
        controls = "".join(
            f'<label style="display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;'
            f'margin:4px 0"><span style="min-width:6em">{html.escape(name)}</span>'
            f'<input type="range" min="0" max="{n - 1}" step="1" value="{s}" '
            f'aria-label="{html.escape(name)}" aria-valuetext="{html.escape(labels[s])}" '
            f'aria-describedby="{uid}-caption" '
            f'style="flex:1 1 12em;min-height:24px;max-width:{3 * self.width}px">'
            f'<output aria-hidden="true" style="font-family:monospace">'
            f'{html.escape(labels[s])}</output></label>'
            for name, labels, n, s in zip(self.names, self.labels, self.shape, self.start))
        heading = (f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(self.title)}'
                   f'</div>' if self.title else "")
        if self.note:
            heading += (f'<div style="font-size:0.85em;margin-bottom:4px">'
                        f'{html.escape(self.note)}</div>')
        script = (
            "(function(){var root=document.getElementById(%s);if(!root)return;"
            "var d=JSON.parse(root.querySelector('script.unet-slider-data').textContent);"
            "var inputs=root.querySelectorAll('input[type=range]');"
            "var outs=root.querySelectorAll('output');"
            "var imgs=root.querySelectorAll('img.unet-slider-img');"
            "var cap=root.querySelector('.unet-slider-caption');"
            "function show(){var k=0;for(var i=0;i<inputs.length;i++){var v=+inputs[i].value;"
            "k=k*d.shape[i]+v;outs[i].textContent=d.labels[i][v];"
            "inputs[i].setAttribute('aria-valuetext',d.labels[i][v]);}"
            "for(var j=0;j<imgs.length;j++){imgs[j].src=d.pool[d.frames[k][j]];"
            "var said=d.depends[j].map(function(a){return d.names[a]+' '+"
            "d.labels[a][+inputs[a].value];}).join(', ');"
            "imgs[j].alt=said?d.panels[j]+': '+said:d.panels[j];}"
            "cap.textContent=d.captions[k];root.setAttribute('data-frame',k);}"
            "for(var i=0;i<inputs.length;i++){inputs[i].addEventListener('input',show);}"
            "root.setAttribute('data-ready','1');})();" % json.dumps(uid))
        return (f'<div id="{uid}" class="unet-slider" data-frame="{self.frame_index(self.start)}"'
                f' style="font-family:sans-serif;margin:8px 0">{heading}'
                f'<div style="display:flex;flex-wrap:wrap">{figures}</div>'
                f'<div class="unet-slider-caption" id="{uid}-caption" aria-live="polite" '
                f'style="font-size:0.9em;margin:4px 0">{html.escape(caption)}</div>{controls}'
                f'<script type="application/json" class="unet-slider-data">'
                f'{safe_payload}</script>'
                f'<script>{script}</script></div>')

    def _repr_html_(self) -> str:
        return self.to_html()
