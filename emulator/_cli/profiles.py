"""`batchconf profiles`: the bundled profiles and variants, as a table or one name a line."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProfileRow", "format_table", "profile_rows", "served_profiles"]

#: How a profile's results reach the user (`output.location`), in a reader's words.
_RESULTS = {
    "files_api": "Files API",
    "object_storage": "objects in the user's bucket",
    "results_url": "results URL",
}


@dataclass(frozen=True)
class ProfileRow:
    """One profile or variant: what `--profile` takes, its dialect, where its results go."""

    name: str
    dialect: str
    results: str
    description: str
    served: bool


def profile_rows() -> list[ProfileRow]:
    """Every bundled profile, each followed by its variants, in the loader's order."""
    from schemas import load_profile, profile_names

    from ..dialects import DIALECTS

    rows: list[ProfileRow] = []
    for name in profile_names():
        profile = load_profile(name)
        served = profile.dialect in DIALECTS
        results = _RESULTS.get(profile.output.location, profile.output.location)
        rows.append(ProfileRow(name, profile.dialect, results, profile.display_name, served))
        for variant in profile.variants:
            # A variant is the same provider with another backend named in a request header.
            what = f"{profile.display_name}, {variant.header}: {variant.value}"
            rows.append(ProfileRow(f"{name}+{variant.name}", profile.dialect, results, what, served))
    return rows


def served_profiles() -> list[str]:
    """Every bundled profile and variant whose dialect and storage the emulator serves."""
    return [row.name for row in profile_rows() if row.served]


def format_table(rows: list[ProfileRow]) -> str:
    """An aligned plain-text table with a header, then one line on how to use a name."""
    header = ("PROFILE", "DIALECT", "RESULTS", "PROVIDER")
    body = [
        (r.name, r.dialect, r.results, r.description + ("" if r.served else " (suite only: no emulator yet)"))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(3)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True)), line[3]]).rstrip()
        for line in (header, *body)
    ]
    lines += [
        "",
        "Give a name to --profile (batchconf serve, check, check-all, mutants); "
        "`batchconf profiles --names` prints those the emulator serves, one a line.",
    ]
    return "\n".join(lines)
