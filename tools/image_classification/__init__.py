"""Image classification plugin: the ``classify_image`` tool (pretrained EfficientNet-Lite0 on
ImageNet-1k, or a custom classifier), ``mentorly train image``, and custom-model listing.
Custom models belong to the tenant that trained them (``custom_models.image_models_dir``).

Heavy imports (torch, the model) happen when a hook or the tool first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from assistant import Tool, hookimpl


@hookimpl
def register_tools(register: Callable[[Tool], None]) -> None:
    from .tool import classify_image

    register(classify_image)


@hookimpl
def register_commands(cli: Any) -> None:
    import click

    from .cli import train_image

    train = cli.commands.get("train") if isinstance(cli, click.Group) else None
    if isinstance(train, click.Group):
        train.add_command(train_image, "image")
    else:
        cli.add_command(train_image, "train-image")


@hookimpl
def list_models(settings: Any, tenant: str) -> list[dict[str, Any]]:
    from .custom_models import ImageModelStore, image_models_dir

    return ImageModelStore.open(image_models_dir(settings, tenant)).list()


@hookimpl
def delete_model(settings: Any, name: str, tenant: str) -> bool:
    from .custom_models import NAME_RE, ImageModelStore, image_models_dir

    if not NAME_RE.match(name) or ".." in name:
        return False  # not a name this plugin could have written
    return ImageModelStore.open(image_models_dir(settings, tenant)).delete(name) is not None


@hookimpl
def prepare_models(settings: Any, progress: bool) -> str | None:
    from .backbone import load_backbone

    backbone = load_backbone()
    return f"image model ready: {backbone.name} {backbone.version}"
