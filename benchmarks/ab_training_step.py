"""Training step: whole-tensor vs chunked attention vs chunked + masked-only head (vs factorised).

Issue 16, item 4. Three forms of the same MaskViT training step, on one model in one
process, steps alternating between them (the order reversed every round) so that the
noise of a shared machine hits all three alike:

- base: the attention written as whole-tensor operations (`biased_attention`), the output
  head on every position, the loss picked at the masked ones afterwards;
- chunked: `chunked_biased_attention` (the bias added inside the product, in-place softmax
  and its gradient, cache-sized chunks), head everywhere;
- chunked+head: what `MaskedVideoTask` now runs: chunked attention and the head only at the
  masked positions (`MaskViT(..., select=mask)`);
- compiled: `torch.compile` of the same model (`train.compile`), head at the masked
  positions (the boolean pick is a graph break; the whole-tensor attention is compiled);
- written+head: the whole-tensor attention (`biased_attention`) with the head at the masked
  positions: on a GPU, the alternative to what `MaskedVideoTask` runs there (SDPA, which is
  what `chunked+head` runs on a GPU: `WindowAttention.training_path`);
- factorised: the GENIE-style factorised transformer of `bench_transformer.py` (same width,
  layers and embeddings, head at the masked positions too), a second model in the same
  process: issue 16's training-parity peer, timed interleaved with MaskViT.

    python benchmarks/ab_training_step.py --preset push64 --batch 16 --precision fp32 \
        [--steps 8] [--forms base,chunked,chunked+head,factorised] [--json out.json]
        [--device cuda]

Prints, per form, the best and the median step time, and the median over rounds of each
round's paired ratio (the first form's step time / this form's): on a shared machine whose
speed drifts by ±10 % within minutes, the paired ratio is the steadiest of the three.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from maskvit.config import load_preset
from maskvit.model import MaskViT
from maskvit.model.attention import WindowAttention
from maskvit.model.masking import mask_for_training, masked_cross_entropy

FORMS = ("base", "chunked", "chunked+head", "written+head", "compiled", "factorised")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="push64")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per form")
    parser.add_argument("--forms", default="base,chunked,chunked+head",
                        help=f"comma-separated subset of {', '.join(FORMS)}; the first is the reference")
    parser.add_argument("--json", default=None, help="also write every step time here")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    forms = args.forms.split(",")
    if set(forms) - set(FORMS):
        raise SystemExit(f"unknown form(s) {sorted(set(forms) - set(FORMS))}; choose from {', '.join(FORMS)}")

    cfg = load_preset(args.preset).transformer
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = MaskViT(cfg).to(device)
    optimizers = {"maskvit": torch.optim.AdamW(model.parameters(), lr=1e-4)}
    compiled = torch.compile(model) if "compiled" in forms else None
    if "factorised" in forms:
        from maskvit.bench.factorised import FactorisedVideoTransformer

        factorised = FactorisedVideoTransformer(cfg).to(device)
        optimizers["factorised"] = torch.optim.AdamW(factorised.parameters(), lr=1e-4)
    shape = (args.batch, cfg.num_frames, cfg.tokens_h, cfg.tokens_w)
    tokens = torch.randint(0, cfg.codebook_size, shape).to(device)
    actions = (torch.randn(args.batch, cfg.num_frames, cfg.action_dim).to(device)
               if cfg.action_dim else None)
    chunked = WindowAttention.__dict__["fused_training_attention"]  # the staticmethod itself
    path = WindowAttention.__dict__["training_path"]  # the classmethod itself
    written = classmethod(lambda cls, device, dropout: "written")
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(form: str) -> float:
        WindowAttention.fused_training_attention = (
            chunked if form != "base" else staticmethod(lambda dropout: False))
        WindowAttention.training_path = written if form == "written+head" else path
        synchronize()
        start = time.perf_counter()
        inputs, mask = mask_for_training(tokens, cfg.context_frames,
                                         mask_token_id=cfg.mask_token_id)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            if form == "factorised":
                b, t, h, w = inputs.shape
                logits = factorised(inputs.reshape(b, t, h * w), 0, None, actions, select=mask)
            elif form == "compiled":
                logits = compiled(inputs, actions, select=mask)
            else:
                logits = model(inputs, actions, select=mask if form.endswith("+head") else None)
        loss, _ = masked_cross_entropy(logits, tokens, mask)
        optimizer = optimizers["factorised" if form == "factorised" else "maskvit"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize()
        return time.perf_counter() - start

    for form in forms:  # warm-up (compilation: a few steps, the masked count varies)
        for _ in range(3 if form == "compiled" else 1):
            step(form)
    seconds: dict[str, list[float]] = {form: [] for form in forms}
    for i in range(args.steps):
        for form in forms if i % 2 == 0 else forms[::-1]:
            seconds[form].append(step(form))
    WindowAttention.fused_training_attention = chunked
    WindowAttention.training_path = path
    reference = seconds[forms[0]]
    print(f"{args.preset} {args.precision} batch {args.batch}, {args.steps} steps per form; "
          f"ratios: {forms[0]}'s step time / the form's")
    for form in forms:
        best, median = min(seconds[form]), statistics.median(seconds[form])
        paired = statistics.median(r / s for r, s in zip(reference, seconds[form], strict=True))
        print(f"  {form:13} best {best:.3f} s  median {median:.3f} s  "
              f"best/best {min(reference) / best:.3f}x  paired {paired:.3f}x")
    if args.json:
        from maskvit.atomic import atomic_write_json

        atomic_write_json(args.json, {"preset": args.preset, "precision": args.precision,
                                      "batch": args.batch, "seconds": seconds})


if __name__ == "__main__":
    main()
