"""One training engine for both stages (tokenizer and transformer).

- `Trainer(task, train_cfg, dataset, out=RUN, ...)`.fit(): the loop (DDP under torchrun,
  bf16 autocast, accumulation, clipping, warm-up + cosine lr, EMA, checkpoints, logs).
- `Task`, `OptimizerSpec`, `StepContext`: how a model plugs in (see `maskvit.train.task_protocol`).
- `load_run(RUN, module="model")` → (config, state_dict, ema_state_dict): load a trained
  module; the run directory layout is documented in `maskvit.run_dir`.
- `maskvit.model.masked_video_task.MaskedVideoTask`: masked visual modeling for the transformer
  (imported from its module, so this package does not depend on the model code).
"""

from maskvit.run_dir import latest_checkpoint, load_checkpoint, load_run
from maskvit.train.distributed import DistEnv, init_distributed, micro_batch_size
from maskvit.train.logger import read_metrics
from maskvit.train.optim import lr_at
from maskvit.train.task_protocol import OptimizerSpec, StepContext, Task
from maskvit.train.trainer import FitResult, Trainer

__all__ = [
    "DistEnv", "FitResult", "OptimizerSpec", "StepContext", "Task", "Trainer",
    "init_distributed", "latest_checkpoint", "load_checkpoint", "load_run", "lr_at",
    "micro_batch_size", "read_metrics",
]
