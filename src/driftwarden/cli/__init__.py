"""The `driftwarden` command: every verb, assembled here from one module per command group."""

from __future__ import annotations

import typer

from driftwarden.cli import bootstrap, contracts, db, demo, schedule_run, serve, webhook, worker

app = typer.Typer(
    help="driftwarden: contract drift for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)
app.command("bootstrap", help=bootstrap.HELP)(bootstrap.bootstrap)
app.command("import")(contracts.import_file)
app.command("worker")(worker.worker)
app.add_typer(webhook.app, name="webhook")
app.command("schedule-run", help=schedule_run.HELP)(schedule_run.schedule_run)
app.command("demo", help=demo.HELP)(demo.demo)
