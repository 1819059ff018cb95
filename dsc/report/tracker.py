"""A sweep's RD table and plot logged to the configured tracker: the loggers of the ``logger``
config group (as for training and for each evaluation job), writing into the sweep directory.
W&B gets a table and an image, TensorBoard the markdown of ``results.md`` as text and the plot
as an image, the CSV logger ``rd_table.csv`` and ``rd_plot.png`` in its directory."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from dsc.io import atomic_write_bytes
from dsc.lit.loggers import build_loggers, finish_runs
from dsc.report.tables import tabulate, to_csv

log = logging.getLogger(__name__)
TABLE_KEY, PLOT_KEY = "rd_table", "rd_plot"


def sweep_loggers(config: DictConfig, sweep_dir: Path) -> list:
    """The loggers of ``config.logger`` with ``paths.output_dir`` the sweep directory (a job's
    loggers write into its own directory; the sweep's into the sweep's)."""
    config = config.copy()
    OmegaConf.set_readonly(config, False)
    with open_dict(config):
        OmegaConf.update(config, "paths.output_dir", str(sweep_dir), force_add=True)
    return build_loggers(config.get("logger"))


def log_sweep(loggers: list, rows: list[dict], tables: str | None, plot: Path | None) -> None:
    """Log the RD table (``rows``, one per point or bound; ``tables``: the markdown of
    ``results.md``, None without RD points) and the RD plot ``plot`` (None: none) to every
    logger, then close them (a W&B run ends)."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    columns, data = tabulate(rows)
    try:
        for logger in loggers:
            if isinstance(logger, WandbLogger):  # as WandbLogger.log_table, a column may hold numbers and text
                import wandb

                logger.log_metrics({TABLE_KEY: wandb.Table(columns=columns, data=data, allow_mixed_types=True)})
                if plot is not None:
                    logger.log_image(PLOT_KEY, images=[str(plot)])
            elif isinstance(logger, TensorBoardLogger):
                text = tables if tables is not None else "```\n" + to_csv(rows).decode() + "```"
                logger.experiment.add_text(TABLE_KEY, text)
                if plot is not None:
                    logger.experiment.add_image(PLOT_KEY, _png_pixels(plot), dataformats="HWC")
            elif isinstance(logger, CSVLogger):
                folder = Path(logger.log_dir)
                atomic_write_bytes(folder / f"{TABLE_KEY}.csv", to_csv(rows))
                if plot is not None:
                    atomic_write_bytes(folder / f"{PLOT_KEY}.png", plot.read_bytes())
            else:
                log.warning("logger %s takes no tables or images here: the sweep's RD table and plot are not "
                            "logged to it (they are in the sweep directory)", type(logger).__name__)
            logger.finalize("success")
    finally:
        finish_runs()


def _png_pixels(path: Path):
    """The RGB pixels ``[H, W, 3]`` (floats in [0, 1]) of a PNG file."""
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]
