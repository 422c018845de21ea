"""Drift classification, table-driven.

docs/reference/drift.md#classification

The spec's examples, SemVer's own valid/invalid lists, 0.y.z.
"""

from __future__ import annotations

import pytest

from driftwarden.contracts.drift import SEVERITY, classify, is_valid_version, levels_at_least, meets

# The examples of docs/reference/drift.md#classification, verbatim.
REFERENCE_EXAMPLES = [
    ("1.2.3", "1.2.3", "none"),
    ("1.2.3+build.1", "1.2.3+build.9", "none"),
    ("1.2.3", "1.3.0", "warning"),
    ("1.3.0", "1.2.9", "warning"),
    ("1.2.3-rc.1", "1.2.3", "warning"),
    ("1.9.0", "2.0.0-rc.1", "breaking"),
    ("0.3.1", "0.4.0", "breaking"),
    ("0.3.1", "0.3.2", "warning"),
    ("0.0.3", "0.0.4", "breaking"),
    ("v1.2.3", "1.2.3", "invalid"),
    ("1.2", "1.2.0", "invalid"),
    (None, "1.0.0", "invalid"),
]

# The SemVer 2.0.0 FAQ's regex test lists (regex101.com/r/Ly7O1x), valid then invalid.
SEMVER_VALID = [
    "0.0.4",
    "1.2.3",
    "10.20.30",
    "1.1.2-prerelease+meta",
    "1.1.2+meta",
    "1.1.2+meta-valid",
    "1.0.0-alpha",
    "1.0.0-beta",
    "1.0.0-alpha.beta",
    "1.0.0-alpha.beta.1",
    "1.0.0-alpha.1",
    "1.0.0-alpha0.valid",
    "1.0.0-alpha.0valid",
    "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
    "1.0.0-rc.1+build.1",
    "2.0.0-rc.1+build.123",
    "1.2.3-beta",
    "10.2.3-DEV-SNAPSHOT",
    "1.2.3-SNAPSHOT-123",
    "1.0.0",
    "2.0.0",
    "1.1.7",
    "2.0.0+build.1848",
    "2.0.1-alpha.1227",
    "1.0.0-alpha+beta",
    "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
    "1.2.3----R-S.12.9.1--.12+meta",
    "1.2.3----RC-SNAPSHOT.12.9.1--.12",
    "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
    "99999999999999999999999.999999999999999999.99999999999999999",
    "1.0.0-0A.is.legal",
]
SEMVER_INVALID = [
    "1",
    "1.2",
    "1.2.3-0123",
    "1.2.3-0123.0123",
    "1.1.2+.123",
    "+invalid",
    "-invalid",
    "-invalid+invalid",
    "-invalid.01",
    "alpha",
    "alpha.beta",
    "alpha.beta.1",
    "alpha.1",
    "alpha+beta",
    "alpha_beta",
    "alpha.",
    "alpha..",
    "beta",
    "1.0.0-alpha_beta",
    "-alpha.",
    "1.0.0-alpha..",
    "1.0.0-alpha..1",
    "1.0.0-alpha...1",
    "1.0.0-alpha....1",
    "1.0.0-alpha.....1",
    "1.0.0-alpha......1",
    "1.0.0-alpha.......1",
    "01.1.1",
    "1.01.1",
    "1.1.01",
    "1.2.3.DEV",
    "1.2-SNAPSHOT",
    "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
    "1.2-RC-SNAPSHOT",
    "-1.0.3-gamma+b7718",
    "+justmeta",
    "9.8.7+meta+meta",
    "9.8.7-whatever+meta+meta",
    "99999999999999999999999.999999999999999999.99999999999999999----RC-SNAPSHOT.12.09.1--------------------------------..12",
]
# Further not-SemVer values real inventories hold.
OTHER_INVALID = [
    "",
    " 1.2.3",
    "1.2.3 ",
    "1.2.3\n",
    "V1.2.3",
    "v1.2",
    "1.2.x",
    "latest",
    "1.2.3.4",
    "١.٢.٣",
    "1.2.-3",
    "1..3",
    "=1.2.3",
    "^1.2.3",
]

# Ordered pairs (bound, current) with their drift; each is also checked in the other direction.
CHANGES = [
    # >= 1 majors
    ("1.0.0", "2.0.0", "breaking"),
    ("1.4.2", "2.0.0", "breaking"),
    ("2.0.0", "10.0.0", "breaking"),
    ("1.0.0", "1.0.1", "warning"),
    ("1.0.0", "1.1.0", "warning"),
    ("1.2.3", "1.2.4-beta", "warning"),
    ("1.2.3-alpha", "1.2.3-beta", "warning"),
    ("1.2.3-alpha.1", "1.2.3-alpha.2", "warning"),
    ("1.0.0-rc.1", "2.0.0", "breaking"),
    ("1.0.0-rc.1", "1.0.0-rc.1+b.2", "none"),
    ("3.1.4+x", "3.1.4", "none"),
    ("1.0.0-alpha+001", "1.0.0-alpha+002", "none"),
    # 0.y.z initial development
    ("0.1.0", "0.2.0", "breaking"),
    ("0.1.0", "0.1.1", "warning"),
    ("0.9.9", "1.0.0", "breaking"),
    ("0.2.0-rc.1", "0.2.0", "warning"),
    ("0.2.3", "0.2.3-alpha", "warning"),
    ("0.1.0", "0.1.0+meta", "none"),
    # 0.0.z: any difference breaks
    ("0.0.1", "0.0.2", "breaking"),
    ("0.0.1-rc.1", "0.0.1", "breaking"),
    ("0.0.9", "0.1.0", "breaking"),
    ("0.0.1+a", "0.0.1+b", "none"),
    # invalid on either side
    ("1.2.3", "v1.2.3", "invalid"),
    ("1.2.3", None, "invalid"),
    ("", "1.0.0", "invalid"),
    (None, None, "invalid"),
    ("01.2.3", "1.2.3", "invalid"),
]


@pytest.mark.parametrize(("bound", "current", "drift"), REFERENCE_EXAMPLES)
def test_spec_examples(bound: str | None, current: str, drift: str) -> None:
    assert classify(bound, current).drift == drift


@pytest.mark.parametrize("version", SEMVER_VALID)
def test_semver_valid_against_itself_is_none(version: str) -> None:
    assert is_valid_version(version)
    result = classify(version, version)
    assert result.drift == "none" and version in result.reason


@pytest.mark.parametrize("version", SEMVER_INVALID + OTHER_INVALID)
def test_semver_invalid_is_invalid_on_either_side(version: str) -> None:
    assert not is_valid_version(version)
    as_bound, as_current = classify(version, "1.0.0"), classify("1.0.0", version)
    assert as_bound.drift == as_current.drift == "invalid"
    assert as_bound.reason.startswith("bound version") and as_current.reason.startswith(
        "current version"
    )
    assert classify(version, version).drift == "invalid"


@pytest.mark.parametrize(("bound", "current", "drift"), CHANGES + REFERENCE_EXAMPLES)
def test_both_directions(bound: str | None, current: str | None, drift: str) -> None:
    assert classify(bound, current).drift == drift
    assert classify(current, bound).drift == drift


def test_every_valid_pair_is_consistent_with_the_rules() -> None:
    """Cross every valid example with every other: the drift follows from the parts that differ."""
    from semver import Version

    for bound in SEMVER_VALID:
        for current in SEMVER_VALID:
            b, c = Version.parse(bound), Version.parse(current)
            expected = (
                "none"
                if b.compare(c) == 0
                else "breaking"
                if b.major != c.major
                else "breaking"
                if b.major == 0 and (b.minor != c.minor or b.minor == 0)
                else "warning"
            )
            assert classify(bound, current).drift == expected, (bound, current)


@pytest.mark.parametrize(
    ("bound", "current", "reason"),
    [
        ("1.4.2", "2.0.0", "major version changed 1.4.2 → 2.0.0"),
        ("v1.2", "1.0.0", "bound version 'v1.2' is not valid SemVer"),
        (None, "1.0.0", "bound version is missing"),
        ("", "1.0.0", "bound version is empty"),
        ("1.2.3", "1.3.0", "minor version changed 1.2.3 → 1.3.0"),
        ("1.3.0", "1.2.9", "minor version changed 1.3.0 → 1.2.9 (current is older than bound)"),
        ("1.2.3", "1.2.4", "patch version changed 1.2.3 → 1.2.4"),
        ("1.2.3-rc.1", "1.2.3", "pre-release changed 1.2.3-rc.1 → 1.2.3"),
        (
            "1.2.3+build.1",
            "1.2.3+build.9",
            "versions differ only in build metadata 1.2.3+build.1 → 1.2.3+build.9",
        ),
        ("1.2.3", "1.2.3", "bound version 1.2.3 is the current version"),
    ],
)
def test_reasons_are_readable(bound: str | None, current: str, reason: str) -> None:
    assert classify(bound, current).reason == reason


def test_initial_development_reason_names_the_rule() -> None:
    assert "initial development (0.y.z)" in classify("0.3.1", "0.4.0").reason
    assert "initial development (0.0.z)" in classify("0.0.3", "0.0.4").reason
    both = classify("x", "y").reason
    assert "bound version 'x'" in both and "current version 'y'" in both


def test_severity_order_and_min_drift_filter() -> None:
    assert sorted(SEVERITY, key=SEVERITY.get) == ["none", "warning", "breaking", "invalid"]
    assert [d for d in SEVERITY if meets(d, "warning")] == ["warning", "breaking", "invalid"]
    assert [d for d in SEVERITY if meets(d, "breaking")] == ["breaking", "invalid"]
    assert [d for d in SEVERITY if meets(d, "invalid")] == ["invalid"]
    assert levels_at_least("warning") == ("invalid", "breaking", "warning")
