"""Atomic file writes for report artefacts (see `maskvit.atomic`)."""

from maskvit.atomic import atomic_write, atomic_write_json, atomic_write_text, to_json_safe

__all__ = ["atomic_write", "atomic_write_json", "atomic_write_text", "to_json_safe"]
