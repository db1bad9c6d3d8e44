"""Inference: everything that asks a trained model for frames points down into this wing.

- `predictor`: `Predictor` (tokenizer + transformer + decoding behind one call) and
  `load_predictor`, the one way to load a model for inference;
- `spec`: `ModelSpec`, the model's geometry, defaults and action bounds;
- `requests`: the rules of a valid request (clip space, goal slot, actions, decoding and
  planner overrides and their limits), shared by the predictor, the commands, the
  planner's model policy, the server, the VP2 adapter and the demo;
- `batching`: jobs that may share a forward pass, one generator per video.
"""
