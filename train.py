"""Train with Hydra: ``python train.py source=mnist model=image_vae model.beta=0.15 ...``; the
same as the installed command ``dsc-train`` (:func:`dsc.apps.train`, configs in ``dsc/conf``).

Writes run_config.json (resolved config and environment), checkpoints/last.ckpt and best.ckpt,
and the logger's files into the Hydra output directory. Resume with ckpt_path=.../last.ckpt.
"""

from dsc.apps import train

if __name__ == "__main__":
    train()
