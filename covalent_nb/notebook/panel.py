"""The redispatch panel: replace electrons, edit inputs, reuse, redispatch.

``RedispatchPanel(dispatch_id)`` (or ``ct.redispatch_panel(dispatch_id)``, or
the graph's "Redispatch…" button) shows, for one dispatch:

* one row per electron of its lattice, with a dropdown of the notebook's
  electrons and functions whose signature can take that electron's arguments;
  a row whose function the notebook has redefined since the dispatch says
  "changed since dispatch" (and what changed) and offers the new definition;
* one field per lattice parameter, prefilled with the dispatch's inputs; a
  field holds a Python literal or an expression evaluated in the notebook,
  and a bad entry shows its error next to the field;
* a reuse toggle (off by default, as in Covalent) and a Redispatch button.

What the browser sends is only choices: a dropdown index, a checkbox, the
text of the fields.  :meth:`RedispatchPanel.submit` is the one place that
accepts them: a replacement must be a name that exists in the notebook and is
callable (it is looked up, never evaluated), and the only text ever evaluated
is what the user typed into an input field.

The button never waits: ``ct.redispatch`` returns as soon as the dispatch has
started, the panel shows its live graph at once, and the summary (how many
nodes were reused, how many recomputed, and why) is filled in by the
dispatch's end callback, on the dispatcher's thread, while the kernel stays
free for other cells and widget messages.
"""

from __future__ import annotations

import html
import inspect
import logging
import weakref
from typing import Any, Mapping, Optional, Union

import ipywidgets
from IPython.display import display

from ..api import get_result
from ..redispatch import redispatch
from ..results.result import Result
from .choices import (ElectronRow, candidates, changed_since_dispatch, electron_rows,
                      lattice_signature, literal_text, resolve_dispatch, reuse_report,
                      reuse_report_html, short_repr)
from .graph_widget import LatticeGraph, show_live
from .handle import text_summary
from .userspace import KEEP, UserInputError, describe_error, parse_value, user_namespace

__all__ = ["RedispatchPanel", "redispatch_panel", "LiveView", "live_view", "panel_slot"]

log = logging.getLogger(__name__)

# -- the widget -------------------------------------------------------------------------

def _html_line(text: str, cls: str, colour: str = "") -> str:
    style = f' style="color: {colour}"' if colour else ""
    return f'<span class="{cls}"{style}>{html.escape(text)}</span>'


_ERROR_COLOUR = "var(--jp-error-color1, #d32f2f)"
_WARN_COLOUR = "var(--jp-warn-color1, #f57c00)"
_MUTED_COLOUR = "var(--jp-ui-font-color2, #757575)"
_LABEL = ipywidgets.Layout(width="150px", min_width="150px")
# Toolbar items keep their natural width (a squeezed button cuts its label short); the
# toolbar wraps between items only when even that does not fit.
def _tool() -> ipywidgets.Layout:
    return ipywidgets.Layout(width="auto", flex="0 0 auto", padding="0 12px", margin="2px 8px 2px 0")


class RedispatchPanel(ipywidgets.VBox):
    """A form that redispatches one dispatch with replaced electrons, new inputs and reuse.

    Parameters
    ----------
    dispatch:
        The dispatch id (or its ``Result``, or a ``%dispatch`` handle); the last
        dispatch of this kernel when omitted.
    namespace:
        Where candidates are found and input expressions are evaluated; the
        notebook's namespace when omitted.

    Attributes
    ----------
    parent:
        The ``Result`` being redispatched.
    rows:
        The :class:`ElectronRow` of each electron, in order.
    replace:
        Electron name -> its ``Dropdown``; a value of ``""`` keeps the electron
        as dispatched, any other value is a name in the namespace.
    inputs:
        Lattice parameter name -> its ``Text`` field.
    reuse:
        The reuse ``Checkbox`` (off by default).
    dispatches:
        Ids of the dispatches started from this panel, oldest first.
    """

    def __init__(self, dispatch: Union[str, Result, Any, None] = None,
                 namespace: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self.parent = resolve_dispatch(dispatch)
        self.namespace = namespace if namespace is not None else user_namespace()
        self.rows = electron_rows(self.parent)
        self.signature = lattice_signature(self.parent)
        self.dispatches: list[str] = []
        self._prefill: dict = {}
        self._keep: dict = {}   # parameter -> the parent's value, for fields left as they were

        self.replace: dict = {}
        self._notes: dict = {}
        electron_box = []
        for row in self.rows:
            dropdown = ipywidgets.Dropdown(layout=ipywidgets.Layout(width="340px"))
            dropdown.add_class("cnb-replace")
            dropdown.add_class(f"cnb-replace-{row.name}")
            note = ipywidgets.HTML()
            note.add_class("cnb-replace-note")
            self.replace[row.name] = dropdown
            self._notes[row.name] = note
            label = ipywidgets.HTML(f"<code>{html.escape(row.name)}</code>", layout=_LABEL)
            electron_box.append(ipywidgets.HBox([label, dropdown, note]))

        self.inputs: dict = {}
        self._errors: dict = {}
        input_box = []
        for name, field, error in self._input_fields():
            self.inputs[name] = field
            self._errors[name] = error
            label = ipywidgets.HTML(f"<code>{html.escape(name)}</code>", layout=_LABEL)
            input_box.append(ipywidgets.HBox([label, field, error]))

        self.reuse = ipywidgets.Checkbox(value=False, description="reuse previous results",
                                         indent=False, layout=ipywidgets.Layout(
                                             width="auto", flex="0 0 auto", margin="2px 12px 2px 0"))
        self.reuse.add_class("cnb-panel-reuse")
        self.button = ipywidgets.Button(description="Redispatch", button_style="primary",
                                        icon="play", tooltip="redispatch with these choices",
                                        layout=_tool())
        self.button.add_class("cnb-panel-redispatch")
        self.button.on_click(self._on_click)
        refresh = ipywidgets.Button(description="Refresh", icon="refresh", layout=_tool(),
                                    tooltip="look again for candidates and changes in the notebook")
        refresh.add_class("cnb-panel-refresh")
        refresh.on_click(lambda _button: self.refresh())
        self.message = ipywidgets.HTML()
        self.message.add_class("cnb-panel-message")
        self.summary = ipywidgets.HTML()
        self.summary.add_class("cnb-panel-summary")
        self.output = ipywidgets.VBox(layout=ipywidgets.Layout(width="100%"))
        self.output.add_class("cnb-panel-output")

        lattice_name = getattr(self.parent.lattice, "__name__", "?")
        title = ipywidgets.HTML(
            f"<b>Redispatch {html.escape(lattice_name)}</b> "
            f'<span style="color: {_MUTED_COLOUR}">from {html.escape(self.parent.dispatch_id)}</span>')
        section = "<div style='margin-top: 6px'><b>{}</b></div>"
        children = [title, ipywidgets.HTML(section.format("Electrons")), *electron_box]
        if input_box:
            children += [ipywidgets.HTML(section.format("Inputs")), *input_box]
        # the option on its own line, the two buttons under it: a row that fits any
        # ordinary width, rather than three items that wrap one by one as it narrows
        toolbar = ipywidgets.HBox([self.button, refresh], layout=ipywidgets.Layout(
            flex_flow="row wrap", align_items="center"))
        toolbar.add_class("cnb-panel-toolbar")
        children += [self.reuse, toolbar,
                     self.message, self.summary, self.output]
        kwargs.setdefault("layout", ipywidgets.Layout(
            border="1px solid var(--jp-border-color2, #e0e0e0)", padding="4px 8px", margin="4px 0"))
        super().__init__(children, **kwargs)
        self.add_class("cnb-panel")
        # Where the panel is drawn, its static description (a second output, see
        # _ipython_display_) is hidden by this rule; where it is not (an HTML export read
        # offline), nothing hides it.
        self.children += (ipywidgets.HTML(
            f"<style>.{self._static_class} {{ display: none !important; }}</style>",
            layout=ipywidgets.Layout(display="none")),)
        self.refresh()

    @property
    def _static_class(self) -> str:
        return "cnb-panel-static-" + (self.model_id or "")

    # -- building ------------------------------------------------------------------
    def _input_fields(self):
        inputs = self.parent.inputs
        try:
            bound = self.signature.bind(*inputs["args"], **inputs["kwargs"])
        except TypeError:  # the parent was dispatched with args this signature rejects
            bound = None
        given = bound.arguments if bound is not None else {}
        for name, parameter in self.signature.parameters.items():
            if name in given:
                value = given[name]
                self._keep[name] = value
                text = literal_text(value)
                placeholder = f"unchanged: {short_repr(value)}"
            else:
                text = None
                default = parameter.default
                placeholder = "default" if default is inspect.Parameter.empty else \
                    f"default: {short_repr(default)}"
            self._prefill[name] = text or ""
            field = ipywidgets.Text(value=text or "", placeholder=placeholder,
                                    continuous_update=False,
                                    layout=ipywidgets.Layout(width="340px"))
            field.add_class("cnb-input")
            field.add_class(f"cnb-input-{name}")
            error = ipywidgets.HTML()
            error.add_class("cnb-input-error")
            field.observe(lambda change, name=name: self._on_input_change(name), names="value")
            yield name, field, error

    def refresh(self) -> None:
        """Look at the notebook again: candidates and "changed since dispatch" marks.

        A choice still offered is kept; one that is gone falls back to the
        dispatched electron.
        """
        for row in self.rows:
            dropdown = self.replace[row.name]
            previous = dropdown.value
            change = changed_since_dispatch(self.parent, row, self.namespace)
            kept = "as dispatched" + (f" ({row.dispatched_name})" if row.replaced else "")
            options = [(kept, "")]
            if change:
                options.append((f"{row.dispatched_name}: current definition "
                                "(changed since dispatch)", row.dispatched_name))
            for name in candidates(self.parent, row, self.namespace):
                if name == row.dispatched_name:
                    continue  # unchanged: the same as "as dispatched"; changed: listed above
                options.append((name, name))
            dropdown.options = options
            values = [value for _, value in options]
            dropdown.value = previous if previous in values else ""
            notes = []
            if row.replaced:
                notes.append(_html_line(f"replaced by {row.dispatched_name} in this dispatch",
                                        "cnb-replaced", _MUTED_COLOUR))
            if change:
                notes.append(_html_line(f"changed since dispatch: {change}", "cnb-changed",
                                        _WARN_COLOUR))
            self._notes[row.name].value = " ".join(notes)

    # -- reading the form ---------------------------------------------------------------
    def changed(self, electron: str) -> Optional[str]:
        """What changed in the notebook's definition of *electron* since the dispatch, or None."""
        return changed_since_dispatch(self.parent, self._row(electron), self.namespace)

    def candidates(self, electron: str) -> list[str]:
        """The names the dropdown of *electron* offers (``""`` is "as dispatched")."""
        return [value for _, value in self.replace[self._row(electron).name].options]

    def choose(self, electron: str, name: str) -> None:
        """Pick *name* in the dropdown of *electron* (as a click would)."""
        dropdown = self.replace[self._row(electron).name]
        if name not in [value for _, value in dropdown.options]:
            raise ValueError(f"{name!r} is not offered for {electron}; the choices are "
                             f"{[value for _, value in dropdown.options]}")
        dropdown.value = name

    def _row(self, electron: str) -> ElectronRow:
        for row in self.rows:
            if row.name == electron:
                return row
        raise KeyError(f"{electron!r} is not an electron of "
                       f"{getattr(self.parent.lattice, '__name__', '?')}; its electrons are "
                       f"{', '.join(r.name for r in self.rows)}")

    def _check_input(self, name: str) -> Any:
        """Parse one field, show its error (or clear it), return the value or raise."""
        error = self._errors[name]
        try:
            value = parse_value(self.inputs[name].value, self.namespace)
        except UserInputError as exc:
            error.value = _html_line(str(exc), "cnb-error", _ERROR_COLOUR)
            raise
        error.value = ""
        return value

    def _on_input_change(self, name: str) -> None:
        try:
            self._check_input(name)
        except UserInputError:
            pass  # shown next to the field; the Redispatch button refuses until fixed

    def _arguments(self, texts: Mapping[str, str]) -> tuple:
        """``(args, kwargs)`` from the fields' texts; ``None`` when all are as prefilled."""
        if all(texts.get(name, self._prefill[name]) == self._prefill[name] for name in self._prefill):
            return None
        arguments: dict = {}
        failed = []
        for name, parameter in self.signature.parameters.items():
            text = texts.get(name, self._prefill[name])
            if name in texts:
                self.inputs[name].value = text
            if text == self._prefill[name]:
                value = self._keep.get(name, KEEP)
                self._errors[name].value = ""
            else:
                try:
                    value = self._check_input(name)
                except UserInputError:
                    failed.append(name)
                    continue
                if value is KEEP:
                    value = self._keep.get(name, KEEP)
            if value is KEEP:
                continue  # the parameter's default
            problem = None
            if parameter.kind is parameter.VAR_POSITIONAL and not isinstance(value, (tuple, list)):
                problem = f"*{name} takes a tuple or list, not {type(value).__name__}"
            elif parameter.kind is parameter.VAR_KEYWORD and not (
                    isinstance(value, dict) and all(isinstance(k, str) for k in value)):
                problem = f"**{name} takes a dict with str keys"
            if problem:
                self._errors[name].value = _html_line(problem, "cnb-error", _ERROR_COLOUR)
                failed.append(name)
                continue
            arguments[name] = tuple(value) if parameter.kind is parameter.VAR_POSITIONAL else value
        if failed:
            raise UserInputError(f"fix the input(s) marked in red: {', '.join(failed)}")
        bound = inspect.BoundArguments(self.signature, arguments)
        return bound.args, bound.kwargs

    def _replacements(self, choices: Mapping[str, str]) -> dict:
        """Validate the browser's choices: only names that exist and are callable."""
        replacements = {}
        rows = {row.name for row in self.rows}
        for electron, name in choices.items():
            if electron not in rows:
                raise UserInputError(f"rejected: {electron!r} is not an electron of this lattice")
            if not isinstance(name, str):
                raise UserInputError(f"rejected: the choice for {electron} is not a name")
            if name == "":
                continue
            if not name.isidentifier() or name not in self.namespace:
                raise UserInputError(f"rejected: {name!r} is not a name in the notebook; "
                                     "press Refresh to see what is there now")
            value = self.namespace[name]
            if not callable(value):
                raise UserInputError(f"rejected: {name} is a {type(value).__name__}, not a "
                                     "function or electron")
            replacements[electron] = value
        return replacements

    # -- acting ------------------------------------------------------------------------
    def submit(self, choices: Mapping[str, str], inputs: Optional[Mapping[str, str]] = None,
               reuse: bool = False) -> Optional[str]:
        """Redispatch with *choices* (electron -> name, ``""`` to keep),
        *inputs* (parameter -> field text; missing ones as prefilled) and *reuse*.

        This is what the Redispatch button calls with the form's values.
        Returns the new dispatch id, or None after showing why nothing was
        dispatched.  Never waits for the dispatch.
        """
        try:
            replacements = self._replacements(choices)
            arguments = self._arguments(dict(inputs or {}))
            submit = redispatch(self.parent.dispatch_id, replace_electrons=replacements or None,
                                reuse_previous_results=bool(reuse))
            args, kwargs = arguments if arguments is not None else ((), {})
            dispatch_id = submit(*args, **kwargs)
        except UserInputError as exc:
            self._say(str(exc), _ERROR_COLOUR)
            return None
        except Exception as exc:  # our validation (bad signature...) or the user's lattice body
            self._say(f"not redispatched: {describe_error(exc)}", _ERROR_COLOUR)
            return None
        self.dispatches.append(dispatch_id)
        result = get_result(dispatch_id)
        what = ", ".join(f"{k} → {getattr(v, '__name__', v)}" for k, v in replacements.items())
        self._say(f"dispatched {dispatch_id}" + (f" with {what}" if what else "")
                  + (", reusing previous results" if reuse else "") + "; running…", _MUTED_COLOUR)
        self.summary.value = ""
        view = live_view(result)
        self.output.children = (view,) if isinstance(view, ipywidgets.Widget) else \
            (ipywidgets.HTML(f"<pre>{html.escape(view)}</pre>"),)
        result.add_done_callback(self._show_summary)
        return dispatch_id

    def redispatch(self) -> Optional[str]:
        """Do what the Redispatch button does, with the form as it is now."""
        return self.submit({name: dropdown.value for name, dropdown in self.replace.items()},
                           {name: field.value for name, field in self.inputs.items()},
                           self.reuse.value)

    def _on_click(self, _button: Any) -> None:
        try:
            self.redispatch()
        except Exception as exc:  # a bug of ours: say so in the panel, not in a hidden log
            log.exception("redispatch panel failed")
            self._say(f"internal error: {type(exc).__name__}: {exc}", _ERROR_COLOUR)

    def _say(self, text: str, colour: str) -> None:
        self.message.value = _html_line(text, "cnb-message", colour)

    def _show_summary(self, result: Result) -> None:
        # Runs on the dispatcher's thread once the dispatch has ended: one
        # trait change, sent to the browser by the kernel's IOPub thread.
        if result.dispatch_id != (self.dispatches[-1] if self.dispatches else None):
            return  # an older dispatch ended after a newer one was started
        self.summary.value = reuse_report_html(result)
        self._say(f"dispatch {result.dispatch_id} ended: {result.status}", _MUTED_COLOUR)

    # -- without a kernel ---------------------------------------------------------------
    def static_text(self) -> str:
        """What the panel is, in one line, for where its widgets cannot be drawn."""
        lattice = getattr(self.parent.lattice, "__name__", "?")
        text = (f"RedispatchPanel: redispatch {lattice} (dispatch {self.parent.dispatch_id}) with "
                f"replaced electrons ({', '.join(row.name for row in self.rows)}), new inputs and "
                "reuse; an interactive form: run the notebook to use it")
        if self.dispatches:
            text += f"; redispatched here as {', '.join(self.dispatches)}"
        return text

    def static_html(self) -> str:
        """The panel as static HTML: what it redispatches, its inputs and its last summary."""
        esc = html.escape
        lattice = esc(getattr(self.parent.lattice, "__name__", "?"))
        rows = "".join(f"<li><code>{esc(row.name)}</code>"
                       + (f" → <code>{esc(self.replace[row.name].value)}</code>"
                          if self.replace[row.name].value else "") + "</li>" for row in self.rows)
        inputs = ", ".join(f"<code>{esc(name)}={esc(field.value or field.placeholder)}</code>"
                           for name, field in self.inputs.items())
        done = ""
        if self.dispatches:
            done = f"<div>redispatched here as <code>{esc(', '.join(self.dispatches))}</code></div>"
        return (f'<div class="cnb-panel-static {self._static_class}" '
                f'style="border: 1px solid #e0e0e0; padding: 4px 8px">'
                f"<b>Redispatch panel</b> for <code>{lattice}</code>, dispatch "
                f"<code>{esc(self.parent.dispatch_id)}</code> "
                f'<span style="color: #757575">(an interactive form: run the notebook to use it)</span>'
                f"<div>electrons:</div><ul style='margin: 0'>{rows}</ul>"
                + (f"<div>inputs: {inputs}</div>" if inputs else "")
                + f"<div>reuse previous results: {'yes' if self.reuse.value else 'no'}</div>"
                + done + self.summary.value + "</div>")

    def _ipython_display_(self) -> None:
        """Two outputs: the form, then its static description, which the form hides where it
        is drawn (an HTML export keeps the widget's state, and nbconvert prefers the widget
        view, which a page read offline cannot draw: the description is what it shows)."""
        data = self._repr_mimebundle_()
        widget = {k: v for k, v in data.items() if k not in ("text/html", "text/plain")}
        display({**widget, "text/plain": ""}, raw=True)  # the description is the next output
        display({"text/html": self.static_html(), "text/plain": self.static_text()}, raw=True)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, with a static description instead of ipywidgets' repr of its children.

        A notebook exported or opened without the widget's state (nbconvert,
        GitHub) shows the ``text/html`` or ``text/plain`` entry.
        """
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = self.static_text()
            data["text/html"] = self.static_html()
        return data

    @property
    def summary_text(self) -> str:
        """The summary of the last dispatch started here, as text ("" while it runs)."""
        if not self.dispatches:
            return ""
        result = get_result(self.dispatches[-1])
        return "\n".join(reuse_report(result)) if result.ended else ""

    @property
    def message_text(self) -> str:
        """The panel's current message (errors, "dispatched …"), as text."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.message.value))


def redispatch_panel(dispatch_id: Optional[str] = None,
                     namespace: Optional[Mapping[str, Any]] = None) -> RedispatchPanel:
    """Return a :class:`RedispatchPanel` for *dispatch_id* (the kernel's last dispatch when omitted)."""
    return RedispatchPanel(dispatch_id, namespace)


def _open_from_graph(graph: Any) -> None:
    """Answer a graph widget's "Redispatch…" button: open the panel under it."""
    slot = panel_slot(graph)
    if slot is None:
        # A graph displayed some other way has nowhere to put the panel; a
        # widget callback's own output would only reach the log console.
        log.warning("redispatch panel: run ct.redispatch_panel(%r) in a cell", graph.dispatch_id)
        return
    if slot.children and isinstance(slot.children[0], RedispatchPanel):
        return  # already open
    slot.children = (RedispatchPanel(graph.result),)


# The view each graph this module showed sits in, so the graph's
# "Redispatch…" button can open the panel under it.  Weak keys: a closed
# graph takes the entry with it.
_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def panel_slot(graph: Any) -> Optional[Any]:
    """The box under *graph* (shown by :func:`live_view`) that holds its redispatch panel."""
    view = _views.get(graph)
    return view.slot if view is not None else None


class LiveView(ipywidgets.VBox):
    """A dispatch's live graph, with a box under it for the redispatch panel.

    A FAILED dispatch is marked inside the graph itself (its header and its
    failure banner, see :mod:`.graph_widget`), so the view adds nothing above
    it.  Displays like the graph: its mime bundle carries the graph's static
    SVG, so a notebook saved without widget state still shows the picture.
    """

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.slot = ipywidgets.VBox(layout=ipywidgets.Layout(width="100%"))
        self.slot.add_class("cnb-panel-slot")
        super().__init__([graph, self.slot], layout=ipywidgets.Layout(width="100%"))
        self.add_class("cnb-live-view")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["image/svg+xml"] = self.graph.to_svg()
            data["text/plain"] = repr(self.graph)
        return data

    def _ipython_display_(self, text: Optional[str] = None) -> None:
        # Two outputs: the view, and the static picture nbconvert's HTML shows
        # (see graph_widget.show_live).
        show_live(self, self.graph, text)


def live_view(result: Result) -> Any:
    """The live graph of *result*, with an empty box under it for the panel.

    Falls back to :func:`text_summary` (a str) when the graph widget cannot be
    built, e.g. its front end is not installed; the summary says why.
    """
    try:
        graph = LatticeGraph(result)
    except Exception as exc:  # the widget is optional: say why it is missing, go on
        log.debug("graph widget unavailable", exc_info=True)
        return text_summary(result, f"no live graph: {type(exc).__name__}: {exc}")
    graph.on_open_panel(_open_from_graph)  # its "Redispatch…" button opens the panel below it
    view = LiveView(graph)
    _views[graph] = view
    return view
