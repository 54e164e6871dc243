"""The ledger import view: pick a broker file, see exactly what it would append, then commit.

``LedgerImportView(engine=None)`` is an ipywidgets box (display it, or ``view.widget``):

* the file is an upload (``FileUpload``) or a path on this machine; the format is one of the
  broker formats (``imports.FORMATS``); AJ Bell's takes a description mapping (upload or path);
* **Preview** parses the file and runs the real import in a transaction that is always rolled
  back (``dry_run``), so what it shows is exactly what a commit would append: the entries, the
  lines already in the ledger that would be skipped, and the cash before and after. When the
  file or the book refuses it, every refused line is listed with its reason (an import is
  atomic: one refused line means nothing is appended), and for unmapped AJ Bell descriptions
  the lines to paste into the mapping file;
* **Commit** is enabled only after a clean preview of the current choices (changing any of
  them disables it again) and imports the previewed file as one batch
  (``imports.import_parsed``); the service validates again, so a ledger changed since the
  preview is refused, not half-imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as w
from sqlalchemy.engine import Engine

from ..core.errors import FileFormatError, TradeAssistError
from ..core.money import format_gbp
from ..db.engine import unit_of_work
from ..presentation.html import ERROR, INFO, OK, WARN, message_html, messages_html, table_html
from ..providers.brokers import NamedBytes, ParsedFile, UnmappedDescriptionsError
from ..providers.brokers.canonical import HEADER as CANONICAL_HEADER
from ..services import imports, ledger
from .common import acting_user, error_lines, portfolio_names, resolve_engine, work

ENTRY_COLUMNS = CANONICAL_HEADER
NUMERIC = ("units", "price", "fees_base", "cash_amount_base", "line", "entries")


@dataclass(frozen=True)
class Refusal:
    """One refused line: the file, the line (None for the file as a whole) and the reason."""

    file: str | None
    line: int | None
    reason: str


@dataclass(frozen=True)
class ImportPreview:
    """What importing a parsed file would do now, computed by importing it and rolling back."""

    portfolio: str
    file: str
    format: str
    entries: tuple[Mapping[str, Any], ...] = ()  # what would be appended, in book order
    skipped: int = 0  # lines whose entries the ledger holds already
    already_imported: bool = False  # this very file was imported before: nothing to do
    cash_before: Decimal | None = None
    cash_after: Decimal | None = None
    refused: tuple[Refusal, ...] = ()
    mapping_template: str | None = None  # CSV lines for unmapped AJ Bell descriptions
    absorbed: int = 0  # corporate-action rows a recorded corporate action explains

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def appends(self) -> bool:
        return self.ok and bool(self.entries)


class _RollBack(Exception):
    """Carries a dry run's preview out of the transaction it rolls back."""

    def __init__(self, preview: ImportPreview) -> None:
        super().__init__("dry run")
        self.preview = preview


def refusals(exc: BaseException) -> tuple[Refusal, ...]:
    """The refused lines an import error names (one line for an error that names none)."""
    if isinstance(exc, FileFormatError):
        return tuple(Refusal(exc.file, line, reason) for line, reason in exc.problems)
    problems = exc.context.get("problems") if isinstance(exc, TradeAssistError) else None
    if problems and isinstance(problems, list | tuple):
        return tuple(Refusal(None, None, str(p)) for p in problems)
    return (Refusal(None, None, str(exc)),)


def parse(source: Any, *, format: str, mapping: Any = None) -> ParsedFile | ImportPreview:
    """The parsed file, or a preview listing why it cannot be read (no database)."""
    try:
        return imports.parse_file(source, format=format, mapping=mapping)
    except TradeAssistError as exc:
        template = exc.mapping_template() if isinstance(exc, UnmappedDescriptionsError) else None
        name = getattr(exc, "file", None) or _name(source)
        return ImportPreview("", name, format, refused=refusals(exc), mapping_template=template)


def dry_run(engine: Engine | str | None, *, portfolio: str, parsed: ParsedFile) -> ImportPreview:
    """Import ``parsed`` into ``portfolio`` inside a transaction that is rolled back whatever
    happens, and report what it appended (or why it was refused). Writes nothing."""
    try:
        with unit_of_work(resolve_engine(engine)) as session:
            actor = acting_user(session)
            before = ledger.cash(session, actor=actor, portfolio=portfolio)["cash_balance"]
            try:
                result = imports.import_parsed(session, actor=actor, portfolio=portfolio, parsed=parsed)
            except TradeAssistError as exc:
                raise _RollBack(
                    ImportPreview(portfolio, parsed.name, parsed.format, refused=refusals(exc))
                ) from None
            appended = (
                [
                    {k: e[k] for k in ENTRY_COLUMNS}
                    for e in ledger.list_entries(session, actor=actor, portfolio=portfolio)
                    if e["ledger_batch_id"] == result.batch_id
                ]
                if result.batch_id is not None
                else []
            )
            raise _RollBack(
                ImportPreview(
                    portfolio=portfolio,
                    file=parsed.name,
                    format=parsed.format,
                    entries=tuple(appended),
                    skipped=result.skipped,
                    already_imported=result.already_imported,
                    cash_before=before,
                    cash_after=result.cash_balance,
                    absorbed=result.absorbed,
                )
            )
    except _RollBack as done:
        return done.preview
    raise AssertionError("unreachable: a dry run always rolls back")  # pragma: no cover


def _name(source: Any) -> str:
    return source.name if isinstance(source, NamedBytes) else Path(str(source)).name


def _uploaded(upload: w.FileUpload) -> NamedBytes | None:
    if not upload.value:
        return None
    item = upload.value[0]
    return NamedBytes(str(item["name"]), bytes(item["content"]))


class LedgerImportView:
    """Pick a broker file, preview exactly what it appends, commit it as one batch."""

    def __init__(
        self,
        *,
        engine: Engine | str | None = None,
        portfolio: str | None = None,
        path: str | None = None,
        format: str = "canonical",
        mapping: str | None = None,
    ) -> None:
        """``path`` (with its ``format`` and AJ Bell ``mapping``) given up front is previewed at once."""
        self.engine = engine
        self.parsed: ParsedFile | None = None
        self.last_preview: ImportPreview | None = None
        with work(engine, readonly=True) as (session, actor):
            names = portfolio_names(session, actor)
        self._inputs(names, portfolio=portfolio, path=path, format=format, mapping=mapping)
        self._outputs()
        self._wire()
        self.widget = w.VBox(
            [
                w.HTML("<h3>Broker file</h3>"),
                w.HBox([self.upload, self.path]),
                w.HBox([self.format, self.portfolio]),
                self.mapping_box,
                w.HBox([self.preview_button, self.commit_button]),
                self.summary,
                self.refused_table,
                self.template,
                self.entries_table,
                self.status,
                w.HTML("<h3>Batches in the ledger</h3>"),
                self.batches_table,
            ]
        )
        self._changed(None)
        self.refresh_batches()
        if path:
            self.preview()

    def _inputs(
        self, names: list[str], *, portfolio: str | None, path: str | None, format: str, mapping: str | None
    ) -> None:
        """The file, its format, the portfolio, the AJ Bell mapping, and the two buttons."""
        self.upload = w.FileUpload(accept=".csv,.txt", multiple=False, description="Upload file")
        self.path = w.Text(
            value=path or "",
            description="or path",
            placeholder="/path/to/export.csv",
            layout=w.Layout(width="480px"),
        )
        self.format = w.Dropdown(options=imports.FORMATS, value=format, description="Format")
        self.portfolio = w.Dropdown(
            options=names, value=portfolio or (names[0] if names else None), description="Portfolio"
        )
        self.mapping_upload = w.FileUpload(accept=".csv", multiple=False, description="Upload mapping")
        self.mapping_path = w.Text(
            value=mapping or "",
            description="or path",
            placeholder="AJ Bell description mapping CSV",
            layout=w.Layout(width="480px"),
        )
        self.mapping_box = w.HBox([self.mapping_upload, self.mapping_path])
        self.preview_button = w.Button(
            description="Preview", icon="eye", tooltip="What this file would append"
        )
        self.commit_button = w.Button(
            description="Commit", button_style="success", icon="check", tooltip="Append the previewed entries"
        )
        self.preview_button.add_class("ta-preview-import")
        self.commit_button.add_class("ta-commit-import")

    def _outputs(self) -> None:
        """What the view says: the summary, the tables, the mapping lines, the status."""
        self.summary = w.HTML()
        self.entries_table = w.HTML()
        self.refused_table = w.HTML()
        self.template = w.Textarea(
            description="Mapping lines", layout=w.Layout(width="100%", height="120px", display="none")
        )
        self.status = w.HTML()
        self.batches_table = w.HTML()
        self.status.add_class("ta-status")

    def _wire(self) -> None:
        """Any new choice invalidates the preview; the buttons preview and commit."""
        for control in (
            self.upload,
            self.path,
            self.format,
            self.portfolio,
            self.mapping_upload,
            self.mapping_path,
        ):
            control.observe(self._changed, names="value")
        self.preview_button.on_click(lambda _: self.preview())
        self.commit_button.on_click(lambda _: self.commit())

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # --- state --------------------------------------------------------------------------------

    def _changed(self, _change: Any) -> None:
        """Any new choice invalidates the preview: commit waits for a new one."""
        self.parsed = None
        self.last_preview = None
        self.commit_button.disabled = True
        self.mapping_box.layout.display = None if self.format.value == "ajbell" else "none"
        self.preview_button.disabled = self.source() is None or not self.portfolio.value

    def source(self) -> NamedBytes | str | None:
        """The uploaded file if there is one, else the path typed (None when neither)."""
        return _uploaded(self.upload) or (self.path.value.strip() or None)

    def mapping(self) -> NamedBytes | str | None:
        if self.format.value != "ajbell":
            return None
        return _uploaded(self.mapping_upload) or (self.mapping_path.value.strip() or None)

    # --- actions (thin adapters over services) ------------------------------------------------

    def preview(self) -> ImportPreview | None:
        """Parse the file and dry-run its import; show what it would append or why it is refused."""
        self._changed(None)
        source = self.source()
        if source is None:
            self.summary.value = message_html("choose a file first: upload one or type its path", ERROR)
            return None
        parsed = parse(source, format=self.format.value, mapping=self.mapping())
        if isinstance(parsed, ImportPreview):
            shown = parsed
        else:
            try:
                shown = dry_run(self.engine, portfolio=self.portfolio.value, parsed=parsed)
            except TradeAssistError as exc:  # e.g. the portfolio is not the user's
                shown = ImportPreview(self.portfolio.value, parsed.name, parsed.format, refused=refusals(exc))
            if shown.appends:
                self.parsed = parsed
        self.last_preview = shown
        self._show(shown)
        self.commit_button.disabled = self.parsed is None
        return shown

    def commit(self) -> imports.ImportResult | None:
        """Import the previewed file as one batch."""
        if self.parsed is None:
            self.status.value = message_html(
                "preview the file first: commit appends what the preview showed", ERROR
            )
            return None
        try:
            with work(self.engine) as (session, actor):
                result = imports.import_parsed(
                    session, actor=actor, portfolio=self.portfolio.value, parsed=self.parsed
                )
        except TradeAssistError as exc:
            self.status.value = messages_html(error_lines(exc), ERROR)
            return None
        finally:
            self.parsed = None
            self.commit_button.disabled = True
        if result.batch_id is None:
            self.status.value = message_html(f"{result.file}: nothing appended (imported already)", WARN)
        else:
            self.status.value = message_html(
                f"{result.file}: batch {result.batch_id} appended, {result.added} entries"
                f"{f', {result.skipped} already in the ledger' if result.skipped else ''}; "
                f"cash now {format_gbp(result.cash_balance)}",
                OK,
            )
        self.refresh_batches()
        return result

    def refresh_batches(self) -> None:
        if not self.portfolio.value:
            self.batches_table.value = table_html([], empty="no portfolio to import into")
            return
        with work(self.engine, readonly=True) as (session, actor):
            batches = ledger.list_batches(session, actor=actor, portfolio=self.portfolio.value)
        rows = [
            {
                k: b[k]
                for k in ("ledger_batch_id", "label", "batch_type", "created_at", "entries", "source_name")
            }
            for b in reversed(batches)
        ]
        self.batches_table.value = table_html(rows, empty="no batches yet", numeric=("entries",))

    # --- display ------------------------------------------------------------------------------

    def _show(self, preview: ImportPreview) -> None:
        self.status.value = ""
        self.entries_table.value = ""
        self.refused_table.value = ""
        self.template.layout.display = "none"
        if not preview.ok:
            self.summary.value = message_html(
                f"{preview.file}: refused, nothing would be appended ({len(preview.refused)} "
                f"problem{'s' if len(preview.refused) != 1 else ''}; fix them and preview again)",
                ERROR,
            )
            self.refused_table.value = table_html(refused_rows(preview), numeric=("line",))
            if preview.mapping_template:
                self.template.value = preview.mapping_template
                self.template.layout.display = None
            return
        if preview.already_imported:
            self.summary.value = message_html(f"{preview.file}: imported already, nothing to append", WARN)
            return
        lines = [
            f"{preview.file} ({preview.format}) into {preview.portfolio}: "
            f"{len(preview.entries)} entr{'ies' if len(preview.entries) != 1 else 'y'} would be appended"
        ]
        if preview.skipped:
            lines.append(f"{preview.skipped} already in the ledger: skipped")
        if preview.absorbed:
            lines.append(f"{preview.absorbed} corporate-action rows explained by a recorded corporate action")
        lines.append(f"cash {format_gbp(preview.cash_before)} → {format_gbp(preview.cash_after)}")
        self.summary.value = messages_html(lines[:1], OK if preview.entries else WARN) + messages_html(
            lines[1:], INFO
        )
        self.entries_table.value = table_html(list(preview.entries), ENTRY_COLUMNS, numeric=NUMERIC)


def refused_rows(preview: ImportPreview) -> Sequence[Mapping[str, Any]]:
    """The refused lines as table rows (for notebooks and tests)."""
    return [{"file": r.file, "line": r.line, "reason": r.reason} for r in preview.refused]


__all__ = ["ImportPreview", "LedgerImportView", "Refusal", "dry_run", "parse", "refusals", "refused_rows"]
