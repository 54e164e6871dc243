"""How plotly charts reach a notebook: the one place that sets up plotly's renderers.

Plotly 7's default renderer in a kernel emits only the plotly MIME type, which an HTML export
cannot draw, so a renderer must be named:

* ``use_notebook_charts()`` (the interactive notebooks): ``plotly_mimetype+notebook`` draws in
  JupyterLab and survives an HTML export;
* ``show_figure(fig)`` (task notebooks): plotly.js embedded once per kernel (no CDN, no
  MathJax download), then each chart as a ``text/html`` div, so the exported report works
  offline; ``use_offline_charts()`` makes ``fig.show()`` do the same.

plotly and IPython are imported inside the functions, never at module level: importing
``plotly.io``'s renderer registry costs over a second (it imports nbformat), and a task run's
kernel that only calls ``show_figure`` should not pay for it.
"""

from __future__ import annotations

from typing import Any

NOTEBOOK_RENDERER = "plotly_mimetype+notebook"
OFFLINE_RENDERER = "tradeassist"

_plotlyjs_shown = False


def use_notebook_charts(renderer: str = NOTEBOOK_RENDERER) -> None:
    """Plotly 7 needs a renderer named: this one draws in JupyterLab and survives an HTML export."""
    import plotly.io as pio  # lazy: the renderer registry costs a second to import

    pio.renderers.default = renderer


def _ensure_plotlyjs() -> None:
    """Display plotly.js once per kernel: every chart after it draws with it, offline."""
    global _plotlyjs_shown
    if _plotlyjs_shown:
        return
    from IPython.display import HTML, display  # lazy: only a kernel has a display
    from plotly.offline import get_plotlyjs  # lazy: plotly only when a chart is shown

    display(
        HTML(
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
            f'<script type="text/javascript">{get_plotlyjs()}</script>'
        )
    )
    _plotlyjs_shown = True


def chart_html(fig: Any) -> str:
    """One chart as a ``div`` (no plotly.js, no MathJax: nothing fetched from a CDN)."""
    return str(
        fig.to_html(
            include_plotlyjs=False,
            include_mathjax=False,
            full_html=False,
            default_width="100%",
            default_height=420,
            validate=False,
        )
    )


def show_figure(fig: Any) -> None:
    """Show a chart that survives the HTML export: plotly.js embedded once, then the div."""
    from IPython.display import HTML, display  # lazy: only a kernel has a display

    _ensure_plotlyjs()
    display(HTML(chart_html(fig)))


def use_offline_charts() -> None:
    """Make ``fig.show()`` behave like ``show_figure`` (for interactive notebooks).

    Setting a renderer imports ``plotly.io``'s renderer registry (and with it nbformat, over a
    second here), so task notebooks call ``show_figure`` instead.
    """
    import plotly.io as pio  # lazy: the renderer registry costs a second to import
    from plotly.io.base_renderers import MimetypeRenderer  # lazy: as plotly.io

    class OfflineReportRenderer(MimetypeRenderer):
        """plotly.js embedded once (when first shown); charts as plain divs; nothing from a CDN."""

        def activate(self) -> None:
            _ensure_plotlyjs()

        def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
            import plotly.graph_objects as go  # lazy: as plotly.io

            _ensure_plotlyjs()
            return {"text/html": chart_html(go.Figure(fig_dict, skip_invalid=True))}

    if OFFLINE_RENDERER not in pio.renderers:
        pio.renderers[OFFLINE_RENDERER] = OfflineReportRenderer()
    if pio.renderers.default != OFFLINE_RENDERER:
        pio.renderers.default = OFFLINE_RENDERER
