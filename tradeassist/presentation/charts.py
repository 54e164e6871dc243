"""How plotly charts reach a notebook: the one place that sets up plotly's renderers.

Plotly 7's default renderer in a kernel emits only the plotly MIME type, which an HTML export
cannot draw, so a renderer must be named:

* ``use_notebook_charts()`` (the interactive notebooks): ``plotly_mimetype+notebook`` draws in
  JupyterLab and survives an HTML export;
* ``show_figure(fig)`` (task notebooks): the figure as plotly's own MIME type (interactive when
  the notebook is opened in Jupyter) plus, where kaleido is installed, a static SVG the run's
  report shows; never plotly.js itself (5 MB in every run's notebook and report).
  ``use_offline_charts()`` makes ``fig.show()`` do the same. A run's own charts are not plotly
  figures at all: they are drawn as SVG by ``run_charts``.

plotly and IPython are imported inside the functions, never at module level: importing
``plotly.io``'s renderer registry costs over a second (it imports nbformat), and a task run's
kernel that only calls ``show_figure`` should not pay for it.
"""

from __future__ import annotations

from typing import Any

NOTEBOOK_RENDERER = "plotly_mimetype+notebook"
OFFLINE_RENDERER = "tradeassist"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def use_notebook_charts(renderer: str = NOTEBOOK_RENDERER) -> None:
    """Plotly 7 needs a renderer named: this one draws in JupyterLab and survives an HTML export."""
    import plotly.io as pio  # lazy: the renderer registry costs a second to import

    pio.renderers.default = renderer


def static_svg(fig: Any) -> str | None:
    """The figure as SVG text when plotly can draw one here (kaleido installed), else None."""
    try:
        import kaleido  # noqa: F401  # lazy and optional: plotly's static image engine
    except ImportError:
        return None
    try:
        return bytes(fig.to_image(format="svg")).decode("utf-8")
    except Exception:  # kaleido present but unable to draw (no browser it can use)
        return None


def figure_bundle(fig: Any) -> dict[str, Any]:
    """What a kernel displays for a plotly figure: plotly's JSON for Jupyter, a static SVG for a
    report when one can be drawn, and a line of text for everything else."""
    title = getattr(getattr(getattr(fig, "layout", None), "title", None), "text", None) or "a chart"
    bundle: dict[str, Any] = {
        PLOTLY_MIME: fig.to_plotly_json(),
        "text/plain": f"(chart: {title}; interactive when the notebook is opened in Jupyter)",
    }
    svg = static_svg(fig)
    if svg is not None:
        bundle["image/svg+xml"] = svg
    return bundle


def show_figure(fig: Any) -> None:
    """Show a plotly chart without embedding plotly.js (see the module's docstring)."""
    from IPython.display import display  # lazy: only a kernel has a display

    display(figure_bundle(fig), raw=True)


def use_offline_charts() -> None:
    """Make ``fig.show()`` behave like ``show_figure``.

    Setting a renderer imports ``plotly.io``'s renderer registry (and with it nbformat, over a
    second here), so task notebooks call ``show_figure`` instead.
    """
    import plotly.io as pio  # lazy: the renderer registry costs a second to import
    from plotly.io.base_renderers import MimetypeRenderer  # lazy: as plotly.io

    class StaticReportRenderer(MimetypeRenderer):
        """plotly's JSON for Jupyter, an SVG for the report when kaleido can draw one."""

        def to_mimebundle(self, fig_dict: Any) -> dict[str, Any]:
            import plotly.graph_objects as go  # lazy: as plotly.io

            return figure_bundle(go.Figure(fig_dict, skip_invalid=True))

    if OFFLINE_RENDERER not in pio.renderers:
        pio.renderers[OFFLINE_RENDERER] = StaticReportRenderer()
    if pio.renderers.default != OFFLINE_RENDERER:
        pio.renderers.default = OFFLINE_RENDERER
