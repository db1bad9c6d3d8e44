"""Can a RoboDesk tokenizer keep a lit button light? A fine-tuning probe.

Starts from a tokenizer checkpoint and trains it on training frames half of which show a lit
light (`maskvit.metrics.desk_objects.read_lights`), with the pixel losses plain or weighted by
salience (`maskvit.tokenizer.vqgan_task.salience_weights`, against the median frame of the
store's first 100 episodes). Every 20 steps it reports, on validation frames, the
reconstructions' strength of the lit lights (truth ~0.56; lit from 0.27), the share of lit
lights read lit, and the share of unlit lights read lit (a decoder drawing every light lit
would score the first and fail the second). L1 + L2 + the quantizer's loss only (no LPIPS, no
GAN), Adam lr 1e-3, batch 16, one thread: a probe of what the pixel loss lets the code carry.

    python benchmarks/robodesk_light_probe.py --tokenizer RUN --step 500 --data STORE \
        [--salience 10] [--steps 60]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from maskvit.data.store import EpisodeStore
from maskvit.metrics.desk_objects import light_strength, read_lights
from maskvit.tokenizer.vqgan import load_vqgan, uint8_to_float
from maskvit.tokenizer.vqgan_task import reconstruction_loss, salience_weights


def split_frames(store: EpisodeStore, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's frames and which of their lights are lit (N, 3)."""
    frames = np.concatenate([store.load(e)["frames"] for e in store.episode_ids()
                             if store.split_of(e) == split])
    return frames, read_lights(frames)


def scores(model, frames: np.ndarray, lit: np.ndarray) -> tuple[float, float, float]:
    """(strength of the lit lights in the reconstructions, share of lit lights read lit,
    share of unlit lights read lit)."""
    model.eval()
    with torch.no_grad():
        rec = model.decode(model.encode(torch.from_numpy(frames))).numpy()
    model.train()
    read = read_lights(rec)
    return float(light_strength(rec)[lit].mean()), float(read[lit].mean()), float(read[~lit].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--step", type=int, default=None)
    parser.add_argument("--data", required=True)
    parser.add_argument("--salience", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    store = EpisodeStore.open(args.data)
    train, train_lit = split_frames(store, "train")
    lit_rows, unlit_rows = np.nonzero(train_lit.any(-1))[0], np.nonzero(~train_lit.any(-1))[0]
    val, val_lit = split_frames(store, "val")
    shown = np.concatenate([np.nonzero(val_lit.any(-1))[0], np.nonzero(~val_lit.any(-1))[0][:200]])
    val, val_lit = val[shown], val_lit[shown]
    sample = np.concatenate([store.load(e)["frames"] for e in store.episode_ids()[:100]])
    reference = uint8_to_float(torch.from_numpy(np.median(sample, 0).astype(np.uint8)))
    model = load_vqgan(args.tokenizer, step=args.step, use_ema=False).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    print(f"{len(lit_rows)} lit of {len(train)} training frames; {int(val_lit.sum())} lit and "
          f"{int((~val_lit).sum())} unlit validation lights; salience {args.salience:g}")
    report = "strength {:.3f}, lit kept {:.3f}, unlit read lit {:.3f}"
    print("step 0:", report.format(*scores(model, val, val_lit)))
    rng = np.random.default_rng(0)
    for step in range(1, args.steps + 1):
        rows = np.concatenate([rng.choice(lit_rows, 8), rng.choice(unlit_rows, 8)])
        x = uint8_to_float(torch.from_numpy(train[rows]))
        recon, quantized = model(x)
        weights = salience_weights(x, reference, args.salience) if args.salience else None
        loss = reconstruction_loss(x, recon.float(), 1.0, 1.0, weights) + quantized.loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            print(f"step {step}: loss {loss.item():.4f},", report.format(*scores(model, val, val_lit)))


if __name__ == "__main__":
    main()
