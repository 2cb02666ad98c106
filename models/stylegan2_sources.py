"""Where each setting group of the StyleGAN2 recipes comes from (``sources`` of ``models.stylegan2``'s
registered names; ``run_bench.py list`` prints them). Facts: ``shared/reference/comparison_recipes.md``
sections 1, 2 and 4, checked against DA's TF code (``training/networks_stylegan2.py`` ``G_main``).
"""

from __future__ import annotations

from models.registry import Source

DA = "DiffAugment-stylegan2 (TF) @0b63395"
ADA = "stylegan2-ada-pytorch @d72cc7d"
PROJECT = "this project"

_DA_NETS = "networks_stylegan2.py: G skip / D resnet, z = w = 512, mapping 8, mbstd 4, no conv clamp"
LOW_SHOT = {
    "architecture": Source(DA, f"{_DA_NETS}, config-f widths (fmap_base 16384 TF = channel_base 32768)"),
    "init": Source(DA, "equalized learning rate: weights N(0, 1) scaled at run time, biases 0 (get_weight)"),
    "optimiser/schedule": Source(DA, "run_low_shot.py: batch 16, Adam 0.002 betas (0, 0.99), one G then one D step; "
                                 "length 300 kimg (500 AnimalFace, README): pinned in suite fewshot256-kimg, "
                                 "else the suite's hours"),
    "regularisation/augmentation": Source(DA, "R1 gamma 10 every step, no path length, style mixing 0.9 drawn per "
                                          "sample (G_main), DiffAugment color,translation,cutout, x-flips"),
    "ema": Source(DA, "half-life 10 kimg; a copy of G before 10 kimg (training_loop.py)"),
    "sampling/eval": Source(DA, "Gs, no truncation, random noise (no BatchNorm); fid5k-train vs every training image"),
}  # fmt: skip
_CONFIG_E = Source(DA, f"{_DA_NETS}, config-e widths (--fmap-base 8192 TF = channel_base 16384)")
FFHQ = LOW_SHOT | {
    "architecture": _CONFIG_E,
    "optimiser/schedule": Source(DA, "run_ffhq.py: batch 32, Adam 0.002 betas (0, 0.99); 25,000 kimg on FFHQ-70k"),
    "regularisation/augmentation": Source(DA, "R1 gamma 1 every step, otherwise as the low-shot recipe"),
}
FINETUNE = LOW_SHOT | {
    "architecture": _CONFIG_E,
    "init": Source(DA, "README low-shot fine-tuning: from the FFHQ model (--resume, here init_from), fresh optimizers"),
}
_HALF = Source(PROJECT, "DA's networks with every config-f width / sqrt(2) (the FastGAN paper's half-size "
               "StyleGAN2 at 1024 px; not verified)")  # fmt: skip
HALF = LOW_SHOT | {"architecture": _HALF}
HALF_FINETUNE = HALF | {"init": Source(PROJECT, "from a stylegan2-half checkpoint (init_from), fresh optimizers")}

ADA_F = {
    "architecture": Source(ADA, "training/networks.py config-f (channel_base 32768, max 512, z = w = 512, "
                           "mapping 8), conv clamp 256"),
    "init": Source(ADA, "equalized learning rate: weights N(0, 1) scaled at run time, biases 0"),
    "optimiser/schedule": Source(PROJECT, "batch 8 (this project's earlier default); Adam 0.002 betas (0, 0.99) "
                                 "scaled for lazy R1 as ADA"),
    "regularisation/augmentation": Source(ADA, "lazy R1 gamma 10 every 16 steps, no path length, style mixing 0.9 "
                                          "one cutoff per batch (loss.py); DiffAugment color,translation,cutout"),
    "ema": Source(ADA, "half-life 10 kimg from step 0, no ramp-up (ema_kimg 10)"),
    "sampling/eval": Source(ADA, "G_ema, no truncation, random noise (no BatchNorm)"),
}  # fmt: skip
LITE = ADA_F | {"architecture": Source(PROJECT, "ADA's config-f networks with every width halved (a quarter of "
                                       "the parameters)")}  # fmt: skip
LITE_FINETUNE = LITE | {"init": Source(PROJECT, "from a stylegan2-lite checkpoint (init_from), fresh optimizers")}
