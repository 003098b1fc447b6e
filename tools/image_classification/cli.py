"""``mentorly train image DATA_DIR --name NAME [--method transfer|cnn]``."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.config import get_settings

from .methods import METHODS  # torch-free, so `mentorly --help` does not import torch


@click.command("image")
@click.argument("data_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", required=True, help="Name of the classifier (letters, digits, _ - .).")
@click.option("--method", type=click.Choice(METHODS), default="transfer", show_default=True,
              help="transfer: a head on the pretrained backbone; cnn: a small CNN from scratch.")
@click.option("--epochs", type=click.IntRange(1, 1000), default=None,
              help="Maximum epochs (default: 60 for transfer, 30 for cnn; early stopping applies).")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Where to save the PNG of the curves (default: inside the model folder).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tenant", default=None,
              help="Tenant that owns the model; only its keys can use it "
                   "(default: settings.default_tenant, 'default').")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_image(data_dir: Path, name: str, method: str, epochs: int | None, plot: Path | None,
                seed: int, tenant: str | None, quiet: bool) -> None:
    """Train an image classifier from DATA_DIR, which has one sub-folder of images per label."""
    from .custom_models import image_models_dir
    from .training import train_image_classifier

    settings = get_settings()
    tenant = tenant or settings.default_tenant
    report = train_image_classifier(
        data_dir, name, models_root=image_models_dir(settings, tenant), method=method,
        epochs=epochs, plot=plot, cache_dir=settings.cache_dir / "image-features",
        max_pixels=settings.uploads.max_pixels, seed=seed, progress=not quiet, echo=click.echo,
    )
    click.echo(f"Use it with: mentorly tools call classify_image --tenant {tenant} "
               f"--image PHOTO --arg model={report.name}")
