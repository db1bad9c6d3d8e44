"""Old spellings of config keys, read into today's layout.

Decoding settings used to be flat keys of the `eval` and `plan` sections; they are now one
`DecodingConfig` nested in each (`eval.decoding`, `plan.decoding`). Run directories and
bundles written before (the shipped `maskvit/pretrained/push64` among them), presets and
`--set eval.decoding_steps=4` overrides keep their old spelling: this module moves such
keys to their new place before a `Config` is built.
"""

from __future__ import annotations

import copy
from typing import Any

from maskvit.errors import UserError

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
