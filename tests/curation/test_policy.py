"""SelectionPolicy: the pass-band knobs validate, and only a pass-band policy carries them into manifests and
content hashes (versions published before the field selectors existed keep their hashes)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limr.curation.policy import SelectionPolicy


def test_band_fields_only_in_pass_band_manifests() -> None:
    lim = SelectionPolicy(strategy="lim", threshold=0.6)
    assert lim.selection_dict() == {
        "strategy": "lim", "threshold": 0.6, "top_k": None, "fraction": None, "seed": 0, "max_epochs": None,
    }  # fmt: skip
    band = SelectionPolicy(strategy="pass-band", threshold=0.0, band_lo=0.2, band_hi=0.7, band_epochs=2)
    assert {k: band.selection_dict()[k] for k in ("band_lo", "band_hi", "band_epochs")} == {
        "band_lo": 0.2, "band_hi": 0.7, "band_epochs": 2,
    }  # fmt: skip
    assert band.pass_band().describe() == "mean accuracy of the first 2 epoch(s) in [0.2, 0.7]"
    # the two edges in either order (the API's schema cannot compare fields, so every valid body is accepted)
    swapped = SelectionPolicy(strategy="pass-band", threshold=0.0, band_lo=0.7, band_hi=0.2, band_epochs=2)
    assert swapped.pass_band() == band.pass_band()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"band_hi": 1.5}, "less than or equal to 1"),
        ({"band_epochs": 0}, "greater than or equal to 1"),
        ({"strategy": "entropy"}, "Input should be"),
    ],
)
def test_bad_policies(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SelectionPolicy.model_validate({"strategy": "pass-band", "threshold": 0.0, **fields})
