"""Arguments shared by the commands that load a trained model (predict, evaluate, plan)."""

from __future__ import annotations

import argparse


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --precision for running a trained model."""
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda or cuda:N (default auto: a GPU when there is one)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="inference precision (default auto: bf16 on a GPU with bf16, a CPU with "
                             "AMX or an AMD CPU with avx512_bf16, where it was measured faster, else "
                             "fp32; benchmarks/RESULTS.md)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="transformer run directory (maskvit train), or a bundle holding "
                             "transformer/ and tokenizer/ runs (default: the shipped push64 "
                             "reference model)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer run directory (default: the one the model was trained on)")
    add_inference_arguments(parser)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override an eval/plan setting of the model's config, "
                             "e.g. eval.decoding.steps=12")


def predictor_from_args(args: argparse.Namespace):
    """The Predictor the arguments name (`maskvit.inference.predictor.load_predictor`)."""
    from maskvit.inference.predictor import load_predictor

    return load_predictor(args.model, args.tokenizer, device=args.device,
                          precision=args.precision, overrides=args.overrides)
