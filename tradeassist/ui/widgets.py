"""Small ipywidgets helpers the views share: showing and hiding, a button, a text box."""

from __future__ import annotations

import ipywidgets as w


def show(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def shown(widget: w.Widget) -> bool:
    return widget.layout.display != "none"


def button(description: str, css: str, style: str = "", icon: str = "", tooltip: str = "") -> w.Button:
    made = w.Button(description=description, button_style=style, icon=icon, tooltip=tooltip or description)
    made.layout.width = "auto"
    made.add_class(css)
    return made


def text(css: str, value: str = "", description: str = "", width: str = "160px", label: str = "") -> w.Text:
    made = w.Text(
        value=value,
        description=description,
        placeholder=label,
        style={"description_width": "initial"},
        layout=w.Layout(width=width),
    )
    made.add_class(css)
    return made
