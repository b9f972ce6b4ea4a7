"""Robust training profiles: the shipped ones load, and every mistake is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.robust.profile import ProfileError, load_profile, parse_profile, shipped_profiles
from rewardkit.robust.transforms import TRANSFORMS


def test_every_shipped_profile_loads_and_default_covers_every_kind() -> None:
    assert "default" in shipped_profiles()
    for name in shipped_profiles():
        profile = load_profile(name)
        assert profile.kinds and 0 < profile.total_share(True) < 0.9
    assert set(load_profile("default").kinds) == set(TRANSFORMS)


def test_a_profile_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[kinds.padding]\nweight = 2\nshare = 0.1\n[kinds.appended_text]\nweight = 1\nshare = 0.05\ntexts = ["zz"]\n'
    )
    profile = load_profile(str(path))
    assert profile.kinds["padding"].weight == 2.0 and profile.kinds["appended_text"].texts == ("zz",)
    assert profile.invariance_share == 0.05 and profile.total_share(False) == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kinds": {"paddin": {"weight": 1, "share": 0.1}}}, "kinds.paddin: unknown kind; expected one of padding"),
        ({"kinds": {"padding": {"weight": -1, "share": 0.1}}}, "kinds.padding.weight: expected a number > 0, got -1"),
        ({"kinds": {"padding": {"weight": "x", "share": 0.1}}}, "kinds.padding.weight: expected a number > 0, got 'x'"),
        ({"kinds": {"padding": {"weight": 1, "share": 1.5}}}, "kinds.padding.share: expected a number in [0, 1)"),
        ({"kinds": {"padding": {"weight": 1}}}, "kinds.padding.share: missing"),
        ({"kinds": {"padding": {"weight": 1, "share": 0.1, "colour": 2}}}, "kinds.padding.colour: unknown key"),
        ({"kinds": {"padding": {"weight": 1, "share": 0.1, "texts": ["a"]}}}, "kinds.padding.texts: unknown key"),
        (
            {"kinds": {"appended_text": {"weight": 1, "share": 0.1, "texts": [""]}}},
            "kinds.appended_text.texts: expected",
        ),
        (
            {"kinds": {"padding": {"weight": 1, "share": 0.5}, "echo": {"weight": 1, "share": 0.45}}},
            "kinds: the shares",
        ),
        (
            {"kinds": {"padding": {"weight": 1, "share": 0.1}}, "invariance": {"share": -0.1}},
            "invariance.share: expected",
        ),
        ({"kinds": {"padding": {"weight": 1, "share": 0.1}}, "extra": 1}, "extra: unknown key"),
        ({}, "kinds: expected at least one [kinds.<kind>] table"),
    ],
)
def test_profile_mistakes_are_one_line_naming_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(raw, "mine.toml")
    text = str(info.value)
    assert text.startswith("robust profile mine.toml: ") and message in text and "\n" not in text


def test_a_missing_or_broken_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file, nor a shipped profile \\(shipped: default"):
        load_profile(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[kinds.padding\n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profile(str(bad))
