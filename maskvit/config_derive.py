"""What raw config data goes through before it is a `Config`: old key spellings moved to
their place, then the facts a config states once derived where other sections repeat them.

Old spellings: decoding settings used to be flat keys of the `eval` and `plan` sections;
they are now one `DecodingConfig` nested in each (`eval.decoding`, `plan.decoding`). Run
directories and bundles written before (the shipped `maskvit/pretrained/push64` among
them), presets and `--set eval.decoding_steps=4` overrides keep their old spelling:
`upgrade` moves such keys to their new place before a `Config` is built.

Derived facts: a preset writes the codebook size, the token grid, the frame size, the
action size and the clip's frame counts once: the tokenizer section owns the codebook size
and the frame size (hence the token grid), the transformer owns the action size and the
frame counts. The transformer, data, eval and plan sections take them from there when a
`Config` is built, as google-research/maskgit derives the [MASK] id from the codebook size
instead of writing it twice.

Two kinds of derivation rules:

- strict (a repeated fact): a value that is given anyway (a run directory or bundle
  written before, which holds every field) must equal the derived one, or a one-line
  `UserError` names both keys;
- defaults (a protocol choice): the eval frame counts may be set smaller than the clip,
  planning may decode with its own temperature / top-p; absent, they follow the source.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maskvit.errors import UserError

# ---------------------------------------------------------------- old spellings

RENAMED: dict[str, str] = {
    "eval.decoding_steps": "eval.decoding.steps",
    "eval.schedule": "eval.decoding.schedule",
    "eval.temperature": "eval.decoding.temperature",
    "eval.top_p": "eval.decoding.top_p",
    "plan.decoding_steps": "plan.decoding.steps",
    "plan.schedule": "plan.decoding.schedule",
}


def current_key(dotted: str) -> str:
    """Today's spelling of a dotted key (the key itself when it was never renamed)."""
    return RENAMED.get(dotted, dotted)


def upgrade(raw: Any) -> Any:
    """A copy of nested config data with every old key moved to its new place.

    Both spellings of one setting may appear (a hand-edited file) only with one value;
    otherwise a one-line `UserError` names both.
    """
    if not isinstance(raw, dict):
        return raw
    out = copy.deepcopy(raw)
    for old, new in RENAMED.items():
        section, key = old.split(".")
        node = out.get(section)
        if not isinstance(node, dict) or key not in node:
            continue
        value = node.pop(key)
        *parents, leaf = new.split(".")[1:]
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise UserError(f"{new.rsplit('.', 1)[0]} must be a mapping, got {node!r}")
        if leaf in node and node[leaf] != value:
            raise UserError(f"{old} = {value!r} (the old spelling of {new}) disagrees with "
                            f"{new} = {node[leaf]!r}; keep one of them")
        node[leaf] = value
    return out


# ---------------------------------------------------------------- derived facts

@dataclass(frozen=True)
class Derived:
    """`key` (dotted) takes `value(config)`, which comes from `source` (for messages)."""

    key: str
    source: str
    value: Callable[[Any], Any]
    strict: bool


def _room(config: Any) -> int:
    t = config.transformer
    return t.num_frames - t.context_frames - (1 if t.goal_conditioned else 0)


RULES: tuple[Derived, ...] = (
    Derived("data.resolution", "tokenizer.resolution", lambda c: c.tokenizer.resolution, True),
    Derived("data.action_dim", "transformer.action_dim", lambda c: c.transformer.action_dim, True),
    Derived("transformer.codebook_size", "tokenizer.codebook_size",
            lambda c: c.tokenizer.codebook_size, True),
    Derived("transformer.tokens_h", "tokenizer.resolution // tokenizer.downsample",
            lambda c: c.tokenizer.token_grid, True),
    Derived("transformer.tokens_w", "tokenizer.resolution // tokenizer.downsample",
            lambda c: c.tokenizer.token_grid, True),
    Derived("eval.context_frames", "transformer.context_frames",
            lambda c: c.transformer.context_frames, False),
    Derived("eval.predicted_frames", "the transformer's clip", _room, False),
    Derived("plan.decoding.temperature", "eval.decoding.temperature",
            lambda c: c.eval.decoding.temperature, False),
    Derived("plan.decoding.top_p", "eval.decoding.top_p", lambda c: c.eval.decoding.top_p, False),
)


def lookup(obj: Any, dotted: str) -> Any:
    """The value at a dotted key of a config object or of nested dicts."""
    for name in dotted.split("."):
        obj = obj[name] if isinstance(obj, dict) else getattr(obj, name)
    return obj


def _replace(obj: Any, names: list[str], value: Any) -> Any:
    inner = value if len(names) == 1 else _replace(getattr(obj, names[0]), names[1:], value)
    return dataclasses.replace(obj, **{names[0]: inner})


def derive(config: Any, given: set[str]) -> Any:
    """`config` with every derived field not in `given` (dotted keys) filled in.

    Given strict fields are checked against their derived value instead.
    """
    for rule in RULES:
        value = rule.value(config)
        if rule.key not in given:
            config = _replace(config, rule.key.split("."), value)
        elif rule.strict and lookup(config, rule.key) != value:
            raise UserError(f"{rule.key} = {lookup(config, rule.key)!r} disagrees with "
                            f"{rule.source} = {value!r}; drop {rule.key} (it is derived) or "
                            f"change {rule.source}")
    return config


def strip_derived(config: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Remove from `data` (config_to_dict(config)) what `derive` would fill in again.

    So an override of a source (`--set tokenizer.codebook_size=256`) carries on to what
    derives from it, as it would in a preset; a value set apart from its source stays.
    """
    for rule in RULES:
        *parents, leaf = rule.key.split(".")
        node = lookup(data, ".".join(parents))
        if node.get(leaf, object()) == rule.value(config):
            del node[leaf]
    return data
