"""`maskvit bench decode` (`decode.py`) and the baselines it times: what real autoregressive
video models cost.

The baselines are not product code: randomly initialised, never trained, only timed. Both have MaskViT's
width, number of layers, MLP and embeddings (so nearly its parameter count; they lack
only the relative-position bias tables):

- `CausalVideoDecoder` (in `decode.py`): a causal (GPT-style) decoder over the
  raster-ordered clip with a key/value cache: one token per step, each step costs one
  token's worth of compute;
- `factorised`: a spatial/temporal factorised transformer (GENIE-style), causal in time,
  decoding frame by frame with a few MaskGIT steps per frame and a per-frame key/value
  cache of the temporal layers.

`ranking` holds the metrics of `benchmarks/bench_plan_ranking.py`: how a model's planning
costs rank CEM's action sequences against the costs of their true futures.
"""
