"""Bring your own trainer: import (or follow live) the rollout dumps of verl, TRL, OpenRLHF, NeMo-RL and AReaL
as limr runs. One module per framework reads its files; `base` does the rest (epochs, gaps, prompt mapping,
the correctness rule, writing through `limr.events.writer.EventWriter`)."""

from __future__ import annotations

from limr.importers.areal import ArealFormat
from limr.importers.base import (
    FINISH_SIGNAL,
    DumpError,
    DumpFormat,
    DumpStep,
    Follow,
    ImportSummary,
    import_dump,
    infer_steps_per_epoch,
)
from limr.importers.nemo_rl import NemoRLFormat
from limr.importers.openrlhf import OpenRLHFFormat
from limr.importers.trl import TrlFormat
from limr.importers.verl import VerlFormat

FORMATS: dict[str, type] = {
    "openrlhf": OpenRLHFFormat,
    "verl": VerlFormat,
    "trl": TrlFormat,
    "nemo-rl": NemoRLFormat,
    "areal": ArealFormat,
}


def dump_format(name: str) -> DumpFormat:
    """The reader of a framework's dumps, by its CLI name."""
    if name not in FORMATS:
        raise DumpError(f"unknown dump format {name!r}; known: {', '.join(FORMATS)}")
    fmt: DumpFormat = FORMATS[name]()
    return fmt


__all__ = [
    "FINISH_SIGNAL",
    "FORMATS",
    "DumpError",
    "DumpFormat",
    "DumpStep",
    "Follow",
    "ImportSummary",
    "dump_format",
    "import_dump",
    "infer_steps_per_epoch",
]
