"""The `itsm-ml` command: what data scientists and schedulers call by hand.

The pipeline itself runs with `dvc repro`; these commands try a new export, make synthetic
data and show the canonical tables.
"""

from __future__ import annotations

import time
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from itsm_ml import telemetry
from itsm_ml.errors import ConfigError, ItsmMlError, SourceError

app = typer.Typer(
    name="itsm-ml",
    help="Validated ITSM tables and trustworthy models from your service desk's history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console()

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
EXIT_REFUSED = 4  # the promotion gate said no: a decision, not an error
EXIT_DRIFT_ALERT = 3  # a champion's data or performance drifted persistently
EXIT_DATA_REJECTED = 5  # retrain: the new data failed validation; nothing downstream ran


class SourceKind(StrEnum):
    servicenow_audit_log = "servicenow_audit_log"
    servicenow_table = "servicenow_table"
    ticket_csv = "ticket_csv"
    event_log = "event_log"
    change_csv = "change_csv"
    assistant_export = "assistant_export"


class TableName(StrEnum):
    tickets = "tickets"
    changes = "changes"
    micro_records = "micro_records"


@app.callback()
def _main() -> None:
    telemetry.disable()


class _BytesColumn(DownloadColumn):
    """Bytes read, for steps that read a file; steps that count nothing show no "0/100 bytes"."""

    def render(self, task: Any) -> Any:
        return super().render(task) if task.total is not None else ""


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        _BytesColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _source_block(kind: SourceKind, file: Path, mapping: Path | None) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if mapping is not None:
        try:
            loaded = yaml.safe_load(mapping.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"mapping {mapping}: cannot be read as YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"mapping {mapping}: expected a YAML mapping of source fields")
        block.update(loaded.get("source", loaded))
        if block.get("kind", kind.value) != kind.value:
            raise ConfigError(
                f"mapping {mapping} is for kind {block['kind']!r}, not --source {kind.value}"
            )
    elif kind in (SourceKind.ticket_csv, SourceKind.event_log, SourceKind.change_csv):
        raise ConfigError(
            f"--source {kind.value} needs --mapping FILE: a YAML file naming the columns "
            "(see the README, 'Point the pipeline at your own export')"
        )
    block.update(kind=kind.value, path=str(file))
    return block


@app.command()
def check(
    file: Annotated[
        Path,
        typer.Argument(
            help="The export to check (CSV, optionally .gz; assistant_export: JSON lines too)."
        ),
    ],
    source: Annotated[SourceKind, typer.Option("--source", "-s", help="Kind of export.")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="YAML with the column mapping (needed for ticket_csv, event_log and "
            "change_csv; optional overrides for the servicenow_audit_log preset and for "
            "assistant_export, whose defaults are POST /v1/micro-records' names)."
        ),
    ] = None,
    params: Annotated[
        Path, typer.Option(help="params.yaml whose validation rules apply, if it exists.")
    ] = Path("params.yaml"),
    report_dir: Annotated[
        Path, typer.Option(help="Where the JSON and HTML reports are written.")
    ] = Path("reports/validation/check"),
) -> None:
    """Ingest and validate one export without touching the pipeline's outputs.

    Exit code 0: valid (some rows may be quarantined, within the limit); 1: invalid, with the
    report printed and written; 2: usage error (bad option or mapping).
    """
    from itsm_ml.config import ValidationParams, load_params, parse_source
    from itsm_ml.data import sources
    from itsm_ml.data import stage as stages
    from itsm_ml.data.sources.csv_files import reporting_read_progress
    from itsm_ml.data.validation import RuleResult, ValidationReport

    tables = {SourceKind.change_csv: "changes", SourceKind.assistant_export: "micro_records"}
    table = tables.get(source, "tickets")
    try:
        parsed = parse_source(table, _source_block(source, file, mapping))
        project = load_params(params) if params.exists() else None
        rules = project.table(table).validation if project else ValidationParams()
        # The labels the catalog's models learn are judged for completeness; without a
        # params.yaml there is no catalog, and no label rule.
        labels = stages.judged_labels(project, table) if project else []
    except ConfigError as exc:
        console.print(f"[red]usage error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc

    report_path = report_dir / f"{file.name}.json"
    started = time.perf_counter()
    with _progress() as progress:
        step = progress.add_task(f"reading {file} as {source.value}", total=None)

        def advance(done: int, size: int) -> None:
            progress.update(step, completed=done, total=size)

        try:
            with reporting_read_progress(advance):
                frame = sources.load_table(table, parsed)
        except SourceError as exc:
            progress.stop()
            report = ValidationReport(
                table=table,
                source=str(file),
                rows=0,
                results=(
                    RuleResult(
                        "file readable as " + source.value,
                        None,
                        "critical",
                        False,
                        1,
                        (),
                        "read",
                        str(exc),
                    ),
                ),
                quarantined_rows=0,
                max_quarantine_share=rules.max_quarantine_share,
                checked_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
            )
            stages.write_report(report, report_path)
            console.print(f"[red]invalid:[/red] {exc}\nReport: {report_path.with_suffix('.html')}")
            raise typer.Exit(EXIT_INVALID) from exc
        progress.update(step, description=f"read {len(frame):,} rows from {file}")
        step = progress.add_task(f"validating {table} (Great Expectations)", total=None)
        outcome = stages.validate_loaded(table, parsed, frame, rules, labels=labels)
        progress.update(step, description=f"validated {table}")
        stages.write_report(outcome.report, report_path)

    _print_report(outcome.report)
    if project is not None:
        _print_models(table, frame, project)
    console.print(
        f"Report: {report_path} and {report_path.with_suffix('.html')} "
        f"({time.perf_counter() - started:.1f} s)"
    )
    raise typer.Exit(EXIT_VALID if outcome.report.passed else EXIT_INVALID)


def _print_models(table: str, frame: Any, params: Any) -> None:
    """What the catalog will learn from this export, and what to declare to learn the rest."""
    from itsm_ml.catalog import catalog, labels_found, skipped_models

    known = catalog(params)
    found = labels_found(table, frame, known)
    for label in found:
        learned = f"model `{label.model}`" if label.model else "no model declared"
        console.print(f"label {label.column}: {label.classes:,} values ({label.kind}); {learned}")
    for entry, reason in skipped_models(table, frame, known):
        console.print(f"model `{entry.name}` will be skipped: {reason}")
    undeclared = [label for label in found if label.model is None]
    if undeclared:
        block = "\n".join(label.declaration(table) for label in undeclared)
        console.print(
            "To learn the others, add under `models:` in params.yaml:\n" + block,
            markup=False,
            highlight=False,
        )


def _print_report(report: Any) -> None:
    table = Table(title=f"{report.table} from {report.source}: {report.rows:,} rows")
    for header in ("status", "severity", "column", "rule", "rows", "examples"):
        table.add_column(header, overflow="fold")
    for r in report.results:
        if r.success:
            continue
        status = {
            "row": "[yellow]quarantined[/yellow]",
            "warning": "[cyan]warning[/cyan]",
        }.get(r.severity, "[red]FAILED[/red]")
        rows = r.observed if r.severity == "critical" else str(r.failed_count)
        table.add_row(
            status, r.severity, r.column or "(table)", r.name, rows, "\n".join(r.examples)
        )
    passed = sum(r.success for r in report.results)
    if table.row_count:
        console.print(table)
    verdict = "[green]VALID[/green]" if report.passed else "[red]INVALID[/red]"
    console.print(f"{verdict}: {passed}/{len(report.results)} rules passed")
    console.print(report.summary(), markup=False, highlight=False)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for incidents.csv and changes.csv.")],
    rows: Annotated[int, typer.Option(min=10, help="Incidents (and changes) to make.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same data.")] = 0,
    start: Annotated[str, typer.Option(help="First opening date (YYYY-MM-DD).")] = "2025-01-01",
    end: Annotated[str, typer.Option(help="Last opening date (YYYY-MM-DD).")] = "2025-12-31",
    drift_after: Annotated[
        str | None, typer.Option(help="Date after which categories, words and groups drift.")
    ] = None,
) -> None:
    """Write ServiceNow-shaped exports made by the built-in generator.

    incidents.csv is a ServiceNow table export (check it with --source servicenow_table);
    changes.csv is a change_request export (--source change_csv with the mapping printed).
    """
    from itsm_ml import io
    from itsm_ml.config import DriftKnobs, GeneratorSource
    from itsm_ml.data.sources import generator

    try:
        knobs = DriftKnobs(after=date.fromisoformat(drift_after) if drift_after else None)
        config = GeneratorSource(
            kind="generator",
            seed=seed,
            rows=rows,
            start=date.fromisoformat(start),
            end=date.fromisoformat(end),
            drift=knobs,
        )
    except ValueError as exc:
        console.print(f"[red]usage error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    with _progress() as progress:
        for name, make in (
            ("incidents", generator.generate_incidents),
            ("changes", generator.generate_changes),
        ):
            step = progress.add_task(f"generating {rows:,} {name}", total=None)
            frame = make(config)
            with io.atomic_path(out_dir / f"{name}.csv") as tmp:
                frame.to_csv(tmp, index=False)
            progress.update(step, description=f"wrote {out_dir / f'{name}.csv'}")
    mapping = generator.GENERATED_CHANGE_MAPPING.model_dump(exclude={"kind", "path"})
    with io.atomic_path(out_dir / "changes.mapping.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    console.print(f"mapping for changes.csv: {out_dir / 'changes.mapping.yaml'}")


@app.command()
def schema(
    table: Annotated[
        TableName | None,
        typer.Argument(help="tickets, changes or micro_records; all if unset."),
    ] = None,
) -> None:
    """Show the canonical tables: columns, dtypes and what each holds."""
    from itsm_ml.schemas import SCHEMAS

    for name, spec in SCHEMAS.items():
        if table is not None and table.value != name:
            continue
        view = Table(title=f"{name} (id: {spec.id_column}, time: {spec.time_column})")
        for header in ("column", "dtype", "always", "meaning"):
            view.add_column(header)
        for column in spec.columns:
            view.add_row(
                column.name, column.dtype, "yes" if column.core else "", column.description
            )
        out.print(view)


ModelArgument = Annotated[
    str,
    typer.Argument(
        help="A model of params.yaml's catalog (`models:`), by name or registered name.",
        show_default=False,
    ),
]


ParamsOption = Annotated[
    Path, typer.Option("--params", help="The project's params.yaml (its folder is the root).")
]


def _model_name(params: Any, model: str) -> str:
    """The catalog name of `model` (a name or a registered name), or a usage error."""
    from itsm_ml.catalog import catalog

    try:
        return catalog(params).get(model).name
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def _project(params_path: Path) -> tuple[Any, Path]:
    from itsm_ml.config import load_params

    try:
        return load_params(params_path), params_path.resolve().parent
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


@app.command()
def promote(
    model: ModelArgument,
    window: Annotated[
        Path | None,
        typer.Option(help="Labelled canonical records (.parquet); default: the test split."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Promote even if a blocking check fails (needs --reason; ledgered and tagged).",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why the failed checks may be overridden (with --force).")
    ] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Move `champion` to the challenger if every blocking check of the gate passes.

    Exit 0: promoted (or forced); 4: refused (each check and its figures printed and
    ledgered); 1: error.
    """
    from itsm_ml.promotion.stage import promote as run_gate

    if force and not (reason and reason.strip()):
        console.print("[red]error:[/red] --force needs --reason TEXT: say why, for the ledger")
        raise typer.Exit(EXIT_INVALID)
    if reason and not force:
        console.print("[red]error:[/red] --reason goes with --force")
        raise typer.Exit(EXIT_INVALID)
    params, root = _project(params_path)
    try:
        decision = run_gate(
            params, _model_name(params, model), root, window=window, force_reason=reason
        )
    except ItsmMlError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    against = f"champion v{decision.champion}" if decision.champion else "the baselines"
    view = Table(title=f"{decision.model} v{decision.challenger} against {against}")
    for header in ("check", "result", "detail"):
        view.add_column(header)
    colour = {"pass": "green", "warn": "yellow", "FAIL": "red"}
    for check in decision.checks:
        view.add_row(
            check.name,
            f"[{colour[check.verdict]}]{check.verdict}[/{colour[check.verdict]}]",
            escape(check.detail),
        )
    out.print(view)
    if decision.forced:
        out.print(
            f"[yellow]{decision.model} v{decision.challenger} is now champion, FORCED past"
            f" {len(decision.failed)} failed check(s); reason ledgered: {escape(reason or '')}"
            "[/yellow]"
        )
        raise typer.Exit(EXIT_VALID)
    if decision.passed:
        out.print(f"[green]{decision.model} v{decision.challenger} is now champion.[/green]")
        raise typer.Exit(EXIT_VALID)
    out.print(
        f"[red]{decision.model} v{decision.challenger} refused; champion unchanged.[/red]"
        f" To promote it anyway: itsm-ml promote {model} --force --reason TEXT"
    )
    raise typer.Exit(EXIT_REFUSED)


@app.command()
def rollback(
    model: ModelArgument,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Move `champion` back to the version it replaced (ledgered like a promotion)."""
    from itsm_ml.promotion.stage import rollback as move_back

    params, root = _project(params_path)
    try:
        entry = move_back(params, _model_name(params, model), root)
    except ItsmMlError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    out.print(
        f"{entry['model']}: champion is v{entry['version']} again (was v{entry['previous']})."
    )


@app.command("registry-sync")
def registry_sync(params_path: ParamsOption = Path("params.yaml")) -> None:
    """Make DVC see a new or reset tracking store: the outputs of evaluate, drift and promote
    that claim what the store does not hold are deleted, so the next `dvc repro` runs those
    stages again. `make run` and `itsm-ml retrain` call it first."""
    from itsm_ml.catalog import catalog
    from itsm_ml.promotion.registry_sync import sync

    params, root = _project(params_path)
    for stale in sync(root, catalog(params)):
        out.print(f"runs again: {escape(str(stale))}", soft_wrap=True)


@app.command()
def summary(params_path: ParamsOption = Path("params.yaml")) -> None:
    """What the last pipeline run ended with: each model's primary metric beside its best
    baseline, the share auto-routed, the gate's decision; then where to look."""
    from itsm_ml.catalog import catalog
    from itsm_ml.run_summary import WHERE_TO_LOOK, early_warning_line, problems_line, summarise

    params, root = _project(params_path)
    found = summarise(root, catalog(params))
    for model in found:
        mark = "[green]serving[/green]" if model.serving else "[yellow]not serving[/yellow]"
        # One line per fact, unwrapped: a terminal wraps them better than a fixed width would.
        out.print(f"[bold]{model.name}[/bold] ({mark}): {escape(model.quality)}", soft_wrap=True)
        if model.routed:
            out.print(f"    {escape(model.routed)}", soft_wrap=True)
        out.print(f"    gate: {escape(model.gate)}", soft_wrap=True)
    warnings = early_warning_line(root)
    if warnings:
        out.print(f"[bold]early warning[/bold]: {escape(warnings)}", soft_wrap=True)
    candidates = problems_line(root)
    if candidates:
        out.print(f"[bold]problem candidates[/bold]: {escape(candidates)}", soft_wrap=True)
    out.print()
    for command, what in WHERE_TO_LOOK:
        out.print(f"  [bold]{command:<16}[/bold] {what}")


@app.command()
def experiments(
    all_commits: Annotated[
        bool, typer.Option("--all-commits", "-A", help="Every commit, not only HEAD's.")
    ] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """The DVC experiments side by side: the params each changed and, per model, its primary
    metric beside its best baseline and the gate's decision (`dvc exp show` lists all)."""
    import json
    import subprocess
    import sys

    from itsm_ml.catalog import catalog
    from itsm_ml.experiments import experiment_rows

    params, root = _project(params_path)
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    shown = subprocess.run(
        command + (["-A"] if all_commits else []),
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0:
        console.print(f"[red]error:[/red] dvc exp show failed: {escape(shown.stderr.strip())}")
        raise typer.Exit(EXIT_INVALID)
    rows = experiment_rows(json.loads(shown.stdout or "[]"), catalog(params))
    view = Table(title=f"experiments of {root}")
    view.add_column("experiment")
    view.add_column("changed params", overflow="fold")
    for entry in catalog(params):
        view.add_column(f"{entry.name}\n{entry.metric} (baseline) gate", justify="right")
    for row in rows:
        cells = []
        for found in row.models.values():
            if found["value"] is None:
                cells.append(found["gate"] or "-")
                continue
            baseline = "-" if found["baseline"] is None else f"{found['baseline']:.3f}"
            cells.append(f"{found['value']:.3f} ({baseline}) {found['gate'] or '-'}")
        changed = ", ".join(f"{k}={v}" for k, v in row.changed.items()) or "-"
        view.add_row(row.name, changed, *cells)
    out.print(view)


@app.command()
def history(
    model: ModelArgument,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Print the promotion ledger of a model: decisions, moves and rollbacks, oldest first."""
    from itsm_ml.promotion.stage import history_rows, ledger, registered_name

    params, root = _project(params_path)
    item = _model_name(params, model)
    view = Table(title=f"promotion ledger of {registered_name(params, item)} ({ledger(root).path})")
    for header in ("at", "event", "by", "version", "outcome"):
        view.add_column(header)
    for row in history_rows(params, item, root):
        view.add_row(row.at, row.event, escape(row.actor), row.version, escape(row.outcome))
    out.print(view)


@app.command()
def monitor(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="Which models of the catalog to watch (default: all)."),
    ] = None,
    tickets: Annotated[
        Path | None,
        typer.Option(help="Current tickets (canonical .parquet); default: the last validated."),
    ] = None,
    changes: Annotated[
        Path | None,
        typer.Option(help="Current changes (canonical .parquet); default: the last validated."),
    ] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Judge the newest windows of current data for each champion; for cron and CI.

    Exit 0: no alert; 3: drift alert (data or performance drifted in the last `persistence`
    windows) on at least one model; 1: error (monitoring itself is broken, which outranks an
    alert). Reports: reports/monitor/<model>.json and .html; tags on the champion version.
    """
    from itsm_ml.catalog import catalog
    from itsm_ml.monitoring.watch import ALERT, current_table, watch
    from itsm_ml.promotion.stage import registered_name

    params, root = _project(params_path)
    known = catalog(params)
    chosen = [_model_name(params, m) for m in models] if models else known.names
    given = {"tickets": tickets, "changes": changes}
    tables: dict[str, Any] = {}
    headers = ("model", "champion", "newest window", "rows", "status", "why", "performance")
    rows: list[list[str]] = []
    errors = alerts = 0
    for item in chosen:
        table = known.get(item).table
        try:
            with console.status(f"watching {item}"):
                if table not in tables:
                    tables[table] = current_table(root, table, given[table])
                found = watch(params, item, root, tables[table])
        except ItsmMlError as exc:
            errors += 1
            console.print(f"[red]error:[/red] {item}: {escape(str(exc))}")
            rows.append(
                [
                    registered_name(params, item),
                    "",
                    "",
                    "",
                    "[red]error[/red]",
                    escape(str(exc)),
                    "",
                ]
            )
            continue
        alerts += found.status == ALERT
        rows.append(_watch_row(found))
    if out.is_terminal:
        view = Table(*headers, title="champions against the newest data")
        for row in rows:
            view.add_row(*row)
        out.print(view)
    else:  # cron mail and CI logs: one greppable line per model
        for row in rows:
            line = " | ".join(f"{h}: {v}" for h, v in zip(headers, row, strict=True) if v)
            out.print(line, soft_wrap=True)
    if errors:
        raise typer.Exit(EXIT_INVALID)
    raise typer.Exit(EXIT_DRIFT_ALERT if alerts else EXIT_VALID)


def _watch_row(found: Any) -> list[str]:
    latest = found.latest
    if latest is None:
        return [found.model, "none", "", "", found.status, "nothing serves, nothing to watch", ""]
    colour = {"alert": "red", "drift": "yellow", "fine": "green"}.get(found.status, "white")
    why = ", ".join(latest["drifted_features"][:3])
    check = latest.get("performance_check")
    if check is None:  # a detector: over-alerting is its performance, said in its headline
        performance = latest["headline"]
    else:
        if check["drifted"]:
            why = ", ".join(filter(None, [why, f"{check['metric']} below its promise"]))
        performance = f"estimated {latest['performance']['estimated']:.3f}"
        if check["has_verdict"]:
            performance += (
                f"; {check['rows']} {check['basis']}: {check['realised']:.3f}"
                f" (promised {check['estimated']:.3f})"
            )
    return [
        found.model,
        f"v{found.version}",
        latest["window"],
        str(latest["rows"]),
        f"[{colour}]{found.status}[/{colour}]",
        why or "-",
        performance,
    ]


@app.command()
def watch(
    last: Annotated[int, typer.Option(help="How many of the newest warnings to show.")] = 10,
    since: Annotated[
        str | None, typer.Option(help="Only warnings opened at or after this time (ISO 8601).")
    ] = None,
    write_back: Annotated[
        bool,
        typer.Option(
            "--write-back",
            help="Open an incident in the ITSM for each warning shown (serving.writeback),"
            " once per warning however often this runs.",
        ),
    ] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Score the incident volume (and the metrics export of params.yaml) over the history and
    show the newest warnings; reports/early_warning/ gets every warning, as the stage writes.

    Exit 0: no warning in the period shown; 3: at least one; 1: error (a warning that could
    not be written back included).
    """
    from itsm_ml.early_warning.stage import report_folder, watch_history
    from itsm_ml.early_warning.watch import write_watch

    params, root = _project(params_path)
    if write_back and not params.serving.writeback.url:
        raise typer.BadParameter(
            "write-back is not configured: set serving.writeback.url in params.yaml",
            param_hint="--write-back",
        )
    with console.status("scoring the history, point by point"):
        result = watch_history(params, root)
        summary = write_watch(result, report_folder(root), params.early_warning.plots)
    shown = result.warnings
    if since is not None:
        cutoff = pd_timestamp(since)
        shown = [w for w in shown if w["opened_at"] >= cutoff.isoformat()]
    shown = shown[-last:] if last > 0 else []
    for note in result.notes:
        console.print(f"[yellow]note[/yellow]: {note}")
    table = Table()
    for header in ("opened", "series", "signal", "surprise", "owner", "runbook", "id"):
        table.add_column(header, overflow="fold")  # ids and times whole, never cut with "..."
    for warning in shown:
        table.add_row(
            warning["opened_at"],
            warning["series"],
            warning["signal"],
            f"{warning['peak']:.1f}",
            warning["owner_group"] or "-",
            warning["recommended_action"] or "-",
            warning["id"],
        )
    out.print(table)
    out.print(
        f"{summary['warnings']} warnings over {summary['series']} series "
        f"({summary['warnings_per_week']} per week); reports/early_warning/"
    )
    if write_back and shown and not _open_incidents(params, shown):
        raise typer.Exit(1)
    raise typer.Exit(3 if shown else 0)


@app.command()
def problems(
    last: Annotated[int, typer.Option(help="How many candidates to show, best first.")] = 10,
    active: Annotated[
        bool, typer.Option("--active", help="Only candidates still meeting the rule now.")
    ] = False,
    write_back: Annotated[
        bool,
        typer.Option(
            "--write-back",
            help="Open a problem in the ITSM (state New, incidents linked) for each candidate"
            " shown, once per candidate however often this runs (problems.writeback).",
        ),
    ] = False,
    read_decisions: Annotated[
        bool,
        typer.Option(
            "--read-decisions",
            help="Read back the problems opened from candidates: accepted, rejected or pending,"
            " and the precision (data/problems/decisions.json).",
        ),
    ] = False,
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="Replay the rule with each of problems.tried x problems.tried_growth against"
            " the decisions read back, and suggest the setting that keeps the most accepted"
            " candidates net of rejected ones (data/problems/tuning.json).",
        ),
    ] = False,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Group the validated tickets and micro-records, replay the recurrence rule (params
    `problems`) over the history, and show the problem candidates it raised, ranked; writes
    reports/problems/candidates.json and candidates.html, as the stage does.

    Exit 0: no candidate shown; 3: at least one; 1: error (a candidate that could not be
    written back included).
    """
    from itsm_ml.problems.stage import groups_file, write_candidates

    params, root = _project(params_path)
    if (write_back or read_decisions) and not params.serving.writeback.url:
        raise typer.BadParameter(
            "write-back is not configured: set serving.writeback.url in params.yaml",
            param_hint="--write-back" if write_back else "--read-decisions",
        )
    decided = groups_file(root).with_name("decisions.json")
    if tune and not read_decisions and not decided.exists():
        raise typer.BadParameter(
            f"{decided}: no decisions to tune by; read them first (--read-decisions)",
            param_hint="--tune",
        )
    with console.status("grouping tickets and micro-records, replaying the rule"):
        summary, candidates = write_candidates(params, root)
    shown = [c for c in candidates if c["active"] or not active][: max(last, 0)]
    table = Table()
    for header in ("id", "raised", "now", "records", "outside desk", "callers", "where", "terms"):
        table.add_column(header, overflow="fold")
    for candidate in shown:
        table.add_row(
            candidate["id"],
            candidate["raised_at"][:10],
            "recurring" if candidate["active"] else "-",
            str(candidate["records"]),
            f"{candidate['micro_records']} ({candidate['micro_share']:.0%})",
            str(candidate["callers"]),
            ", ".join(candidate["services"]) or "-",
            " ".join(candidate["top_terms"][:5]),
        )
    out.print(table)
    out.print(
        f"{summary['raised']} candidates raised from {summary['records']:,} records"
        f" ({summary['raised_per_month']} a month), {summary['active']} recurring now;"
        " reports/problems/candidates.html"
    )
    chosen = _chosen_threshold(params, root)
    if chosen is not None and chosen[1] != params.problems.threshold:
        out.print(
            f"[yellow]{chosen[0]} chose threshold {chosen[1]:g} on validation's problem links;"
            f" these candidates were raised at problems.threshold {params.problems.threshold:g}"
            " (set it in params.yaml to raise what was gated)[/yellow]"
        )
    failed = False
    if write_back and shown:
        failed = not _open_problems(params, shown)
    if read_decisions:
        _read_decisions(params, root, candidates)
    if tune:
        _tune(params, root)
    raise typer.Exit(1 if failed else 3 if shown else 0)


def _chosen_threshold(params: Any, root: Path) -> tuple[str, float] | None:
    """The catalog's recurrence model and the threshold its last training chose, if any."""
    import json

    from itsm_ml.catalog import ModelLayout, catalog

    for entry in catalog(params).of_family("problems"):
        path = ModelLayout(root, entry.name).train_summary
        if path.exists():
            found = json.loads(path.read_text(encoding="utf-8"))
            if not found.get("skipped") and "threshold" in found:
                return entry.name, float(found["threshold"])
    return None


def _tune(params: Any, root: Path) -> None:
    import json

    from itsm_ml import io
    from itsm_ml.data.stage import Layout
    from itsm_ml.problems import detection, tuning
    from itsm_ml.problems.stage import groups_file, read_groups

    decisions_path = groups_file(root).with_name("decisions.json")
    decisions = json.loads(decisions_path.read_text(encoding="utf-8")).get("decisions", [])
    micro_path = Layout(root, "micro_records").validated
    records = detection.combine(
        io.read_table(Layout(root, "tickets").validated),
        io.read_table(micro_path) if micro_path.exists() else None,
    )
    with console.status("replaying the rule for each setting") as status:
        found = tuning.tune(
            records,
            params.problems,
            read_groups(groups_file(root)),
            decisions,
            progress=lambda setting: status.update(f"replaying the rule: {setting}"),
        )
    io.write_json(
        {
            "decided": found.decided,
            "current": found.current,
            "settings": found.table.to_dict("records"),
        },
        groups_file(root).with_name("tuning.json"),
    )
    table = Table(title=f"settings against {found.decided} decided candidates, best first")
    for header in ("threshold", "growth", "accepted", "rejected", "precision", "raised", "a month"):
        table.add_column(header, justify="right")
    for row in found.table.itertuples(index=False):
        now = row.threshold == found.current["threshold"] and row.growth == found.current["growth"]
        table.add_row(
            f"{row.threshold:g}",
            f"{row.growth:g}",
            str(row.accepted),
            str(row.rejected),
            "n/a" if row.precision != row.precision else f"{row.precision:.0%}",
            str(row.raised),
            f"{row.per_month:g}",
            style="bold" if now else None,
        )
    out.print(table)
    best = found.best
    if (best["threshold"], best["growth"]) == (found.current["threshold"], found.current["growth"]):
        out.print("params.yaml already has the best setting (bold)")
    else:
        out.print(
            f"suggested: problems.threshold: {best['threshold']:g} and problems.rule.growth:"
            f" {best['growth']:g} in params.yaml (now bold); data/problems/tuning.json"
        )
    if not found.enough:
        out.print(
            f"[yellow]only {found.decided} decided candidates (accepted or rejected): a"
            f" suggestion on fewer than {tuning.MIN_DECIDED} stands on little[/yellow]"
        )


def _itsm_writer(params: Any, table: str) -> Any:
    from itsm_ml.serving.writeback import ServiceNowWriter

    settings = params.serving.writeback
    return ServiceNowWriter.from_env(
        settings.url,
        user_env=settings.user_env,
        password_env=settings.password_env,
        table=table,
        timeout=settings.timeout_seconds,
        max_attempts=settings.max_attempts,
    )


def _open_problems(params: Any, candidates: list[dict[str, Any]]) -> bool:
    """One problem per candidate, its incidents linked; False if any could not be opened."""
    from itsm_ml.serving.problem_writeback import open_problems

    settings = params.problems.writeback
    with (
        _itsm_writer(params, settings.table) as problems_writer,
        _itsm_writer(params, params.serving.writeback.table) as incidents_writer,
    ):
        opened = open_problems(
            candidates,
            problems_writer,
            incidents_writer,
            settings,
            echo=lambda m: console.print(escape(m)),
        )
    for each in opened:
        said = "opened" if each.status == "written" else "already open"
        missing = f", {each.failed_links} not found or not linked" if each.failed_links else ""
        out.print(
            f"{each.candidate}: {settings.table} {each.problem} {said}; {each.linked} incidents linked{missing}"
        )
    return len(opened) == len(candidates)


def _read_decisions(params: Any, root: Path, candidates: list[dict[str, Any]]) -> None:
    from itsm_ml import io
    from itsm_ml.problems.stage import groups_file
    from itsm_ml.serving.problem_writeback import precision, read_decisions, track_precision

    with _itsm_writer(params, params.problems.writeback.table) as problems_writer:
        decisions = read_decisions(problems_writer, params.problems.writeback)
    summary = precision(decisions, candidates)
    # Beside the groups, not among the stage's reports: DVC would delete it with them.
    io.write_json(
        {**summary, "decisions": decisions}, groups_file(root).with_name("decisions.json")
    )
    shown = "n/a" if summary["precision"] is None else f"{summary['precision']:.0%}"
    out.print(
        f"decisions: {summary['accepted']} accepted, {summary['rejected']} rejected,"
        f" {summary['pending']} pending; precision {shown}; data/problems/decisions.json"
    )
    tracked = track_precision(root, params, summary, params.problems.threshold)
    if tracked:
        out.print(f"logged on {tracked} (metric history `decisions precision`)")


def _open_incidents(params: Any, warnings: list[dict[str, Any]]) -> bool:
    """One incident per warning, keyed by the warning's id; False if any failed."""
    from itsm_ml.early_warning.watch import incident_fields
    from itsm_ml.serving.writeback import WriteBackError

    settings = params.serving.writeback
    failed = 0
    with _itsm_writer(params, settings.table) as writer:
        for warning in warnings:
            try:
                result = writer.create(incident_fields(warning), warning["id"])
                said = "opened" if result.status == "written" else "already open"
                out.print(f"{warning['id']}: {settings.table} {result.sys_id} {said}")
            except WriteBackError as exc:
                failed += 1
                console.print(f"[red]{warning['id']}: not written back[/red]: {escape(str(exc))}")
    return failed == 0


def pd_timestamp(text: str) -> Any:
    import pandas as pd

    try:
        return pd.Timestamp(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--since {text!r} is not a time (ISO 8601)") from exc


@app.command()
def retrain(params_path: ParamsOption = Path("params.yaml")) -> None:
    """Re-read the sources and run the pipeline; the promotion gate, its last stage, decides.

    Exit 0: the pipeline ran (each decision printed: promoted or refused); 5: this run found
    the new export unreadable or invalid (nothing retrained, no alias moved, the last good
    tables and models kept); 1: another failure.
    """
    from itsm_ml.promotion.retrain import retrain as run_pipeline

    _, root = _project(params_path)
    result = run_pipeline(
        root, echo=lambda line: console.print(line, markup=False, highlight=False)
    )
    for decision in result.decisions:
        failed = [c["name"] for c in decision["checks"] if not c["passed"]]
        verdict = "promoted" if decision["passed"] else "refused: " + "; ".join(failed)
        out.print(f"{decision['model']} v{decision['challenger']}: {verdict}")
    if result.succeeded:
        if not result.decisions:
            out.print("no model retrained: the sources hold no new data")
        raise typer.Exit(EXIT_VALID)
    if result.rejected:
        out.print(
            f"[red]new export rejected (unreadable or invalid): {', '.join(result.rejected)};"
            " nothing downstream ran, no alias moved, the last good tables and models stay"
            " (the cause is printed above; rules: reports/validation/)[/red]"
        )
        raise typer.Exit(EXIT_DATA_REJECTED)
    raise typer.Exit(EXIT_INVALID)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    openapi: Annotated[
        Path | None,
        typer.Option(help="Write the OpenAPI schema to this file and exit (no models loaded)."),
    ] = None,
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """The scoring service: answers the ITSM with the registry's champions (FastAPI/uvicorn)."""
    import json

    from itsm_ml import io
    from itsm_ml.serving.app import build_service, create_app
    from itsm_ml.tracking import registry

    params, root = _project(params_path)
    if openapi is not None:
        schema = create_app(build_service(params, root), poll=False).openapi()
        with io.atomic_path(openapi) as tmp:
            tmp.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        out.print(f"wrote {openapi}")
        return
    import os

    import uvicorn

    # Before any model is loaded: OpenMP (LightGBM, scikit-learn) reads it once, at load.
    os.environ["OMP_NUM_THREADS"] = str(params.serving.threads)
    registry.configure(root)
    console.print(
        f"tracking store {registry.tracking_uri(root)}; champions are checked every "
        f"{params.serving.poll_seconds:g} s; docs at http://{host}:{port}/docs"
    )
    uvicorn.run(create_app(build_service(params, root)), host=host, port=port, log_level="info")


class Engine(StrEnum):
    local = "local"
    dask = "dask"


@app.command()
def score(
    model: Annotated[
        str,
        typer.Option(
            help="A model of params.yaml's `models` (routing, ...) or its registered name."
        ),
    ],
    input_path: Annotated[
        Path, typer.Option("--input", help="Export with ServiceNow field names (.csv or .csv.gz).")
    ],
    output_path: Annotated[Path, typer.Option("--output", help="CSV of answers to write.")],
    version: Annotated[
        str | None, typer.Option(help="A registered version; default: the champion.")
    ] = None,
    engine: Annotated[Engine, typer.Option(help="local: this process; dask: a cluster.")] = (
        Engine.local
    ),
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://HOST:8786); default: a local cluster."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Workers of the local Dask cluster.")] = 2,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Records read and scored at a time.")] = (
        10_000
    ),
    date_format: Annotated[
        str | None, typer.Option(help="strftime format of the dates; default ISO 8601.")
    ] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the export.")] = "utf-8",
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Score an export with a registered model: one answer row per record, in input order."""
    from itsm_ml.serving.batch_scoring import resolve_model, score_file, score_file_dask

    params, root = _project(params_path)
    if scheduler is not None and engine is not Engine.dask:
        console.print("[red]error:[/red] --scheduler needs --engine dask")
        raise typer.Exit(EXIT_USAGE)
    found = resolve_model(params, root, model, version)
    options: dict[str, Any] = {
        "kind": found.kind,
        "input_path": input_path,
        "output_path": output_path,
        "model_name": found.name,
        "version": found.version,
        "chunk_rows": chunk_rows,
        "top_k": params.triage.top_k,
        "date_format": date_format,
        "encoding": encoding,
    }
    if engine is Engine.dask:
        summary = score_file_dask(found.model, scheduler=scheduler, n_workers=workers, **options)
    else:
        summary = score_file(found.model, **options)
    counts = ", ".join(f"{k}: {v:,}" for k, v in summary.counts.items())
    out.print(
        f"{summary.rows:,} records scored by {found.name} v{found.version} ({summary.engine}) in "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f}/s) -> {summary.output}; {counts}"
    )


token_app = typer.Typer(
    help="Bearer tokens of the scoring service: create (shown once), list, revoke.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


def _token_store(params_path: Path) -> Any:
    from itsm_ml.serving.tokens import STORE_NAME, TokenStore

    _, root = _project(params_path)
    return TokenStore(root / STORE_NAME)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Who or what uses it, e.g. 'servicenow prod'.")],
    scope: Annotated[
        list[str],
        typer.Option(
            help="score:tickets, score:changes, score:metrics, models:read or admin; repeatable."
        ),
    ],
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    store = _token_store(params_path)
    try:
        record, token = store.create(name, scope)
    except ItsmMlError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    out.print(f"token {record.id} ({record.name}; {', '.join(record.scopes)}):")
    out.print(token, markup=False, highlight=False, soft_wrap=True)
    console.print("Store it now: it is not shown again (only its hash is kept).")


@token_app.command("list")
def token_list(params_path: ParamsOption = Path("params.yaml")) -> None:
    """List tokens (never their secrets)."""
    store = _token_store(params_path)
    view = Table("id", "name", "scopes", "created", "revoked", title=f"tokens ({store.path})")
    for record in store.records():
        view.add_row(
            record.id,
            escape(record.name),
            ", ".join(record.scopes),
            record.created_at,
            record.revoked_at or "",
        )
    out.print(view)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The id shown by `itsm-ml token list`.")],
    params_path: ParamsOption = Path("params.yaml"),
) -> None:
    """Revoke a token at once: it no longer verifies."""
    store = _token_store(params_path)
    try:
        record = store.revoke(token_id)
    except ItsmMlError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_INVALID) from exc
    out.print(f"token {record.id} ({escape(record.name)}) revoked at {record.revoked_at}")


def main() -> None:
    """The console script: every way out ends in one sentence a user can act on (a bare
    click `Aborted!` or a traceback helps no one); ITSM_ML_DEBUG=1 shows the traceback."""
    import os

    debug = bool(os.environ.get("ITSM_ML_DEBUG"))
    try:
        code = app(standalone_mode=False)
    except ItsmMlError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise SystemExit(EXIT_INVALID) from exc
    except typer.TyperException as exc:  # usage errors: typer's own message and exit code
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            console.print(f"usage error: {escape(str(exc))}")
        raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from exc
    except typer.Abort as exc:
        # click turns an EOFError from anywhere (a truncated stream, closed stdin) into Abort.
        if isinstance(exc.__cause__, EOFError) and not debug:
            _unexpected(exc.__cause__)
        console.print("interrupted: nothing after this point ran")
        raise SystemExit(130) from exc
    except Exception as exc:
        if debug:
            raise
        _unexpected(exc)
    raise SystemExit(code if isinstance(code, int) else EXIT_VALID)


def _unexpected(exc: BaseException) -> NoReturn:
    console.print(
        f"[red]error:[/red] unexpected {type(exc).__name__}: {escape(str(exc)) or 'no message'}."
        " Run again with ITSM_ML_DEBUG=1 for the traceback, and report it if your input looks"
        " fine"
    )
    raise SystemExit(EXIT_INVALID) from exc
