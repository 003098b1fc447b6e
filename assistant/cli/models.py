"""``mentorly models prepare/list/delete`` and the ``mentorly train`` group (plugins add the
kinds, e.g. ``train image``)."""

from __future__ import annotations

import json

import click

from assistant.cli.main import _runtime, _settings, cli


@cli.group()
def models() -> None:
    """Prepare, list and delete models."""


@models.command("prepare")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def models_prepare(ctx: click.Context, quiet: bool) -> None:
    """Assemble and verify the packaged LLM, and prepare what the plugins need."""
    from assistant.llm.model_files import prepare_model

    settings = _settings(ctx)
    settings.ensure_dirs()
    path = prepare_model(settings, progress=not quiet)
    click.echo(f"LLM ready: {path}")
    runtime = _runtime(ctx)
    for hook_result in runtime.plugin_manager.hook.prepare_models(settings=settings,
                                                                  progress=not quiet):
        if hook_result:
            click.echo(str(hook_result))


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--tenant", default=None, help="Whose models (default: settings.default_tenant).")
@click.pass_context
def models_list(ctx: click.Context, as_json: bool, tenant: str | None) -> None:
    """List a tenant's custom models trained with `mentorly train` (and shared presets)."""
    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    found = [m for items in runtime.plugin_manager.hook.list_models(settings=runtime.settings,
                                                                    tenant=tenant)
             for m in items]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, default=str))
    elif not found:
        click.echo("No custom models yet (see `mentorly train --help`).")
    for m in found if not as_json else []:
        extra = {k: v for k, v in m.items() if k not in ("name", "kind")}
        click.echo(f"{m['name']} ({m['kind']}) {json.dumps(extra, ensure_ascii=False, default=str)}")


@models.command("delete")
@click.argument("name")
@click.option("--tenant", default=None, help="Whose model (default: settings.default_tenant).")
@click.pass_context
def models_delete(ctx: click.Context, name: str, tenant: str | None) -> None:
    """Delete a tenant's custom model."""
    runtime = _runtime(ctx)
    tenant = tenant or runtime.settings.default_tenant
    if not any(runtime.plugin_manager.hook.delete_model(settings=runtime.settings, name=name,
                                                        tenant=tenant)):
        raise click.ClickException(f"no custom model named {name!r} for tenant {tenant!r} "
                                   "(see `mentorly models list`)")
    click.echo(f"Deleted {name}.")


@cli.group()
def train() -> None:
    """Train custom classifiers (plugins add the kinds)."""
