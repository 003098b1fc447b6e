"""The plugin hooks: the ``classify_text`` tool and the ``train text`` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from assistant import Tool, hookimpl
from tools.text_classification.cli import train_text
from tools.text_classification.tool import classify_text


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    register(classify_text)


@hookimpl
def register_commands(cli: Any) -> None:
    """Add ``text`` under the ``train`` group (created here if the CLI has none yet)."""
    train = cli.commands.get("train") if isinstance(cli, click.Group) else None
    if not isinstance(train, click.Group):
        train = click.Group("train", help="Train classifiers.")
        cli.add_command(train)
    train.add_command(train_text)
