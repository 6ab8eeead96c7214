"""The findings of a build that refused to write (:attr:`s402gen.write.BuildReport.refused`)."""

from __future__ import annotations

from . import write
from .diagnostics import Finding, Location, Rules


def refusals(where: str, report: write.BuildReport) -> list[Finding]:
    """Why a build wrote nothing (``report.refused``): one finding per file in the way, one
    for the foreign files of a folder without a manifest; ``where`` is the output folder as
    shown to the user. See :class:`~s402gen.write.BuildReport`."""
    force = "or pass --force to overwrite it"
    found = [
        Finding(
            Rules.FILE_NOT_WRITTEN_BY_S402GEN,
            f"{where}/{path} exists and was not written by s402gen",
            Location(f"{where}/{path}", 1, 1),
            f"move it away, {force}",
        )
        for path in report.conflicts
    ]
    found += [
        Finding(
            Rules.GENERATED_FILE_EDITED,
            f"{where}/{path} was edited by hand after s402gen wrote it "
            "(its sha256 differs from manifest.json's)",
            Location(f"{where}/{path}", 1, 1),
            f"make the change in the catalog or the templates, {force}",
        )
        for path in report.edited
    ]
    found += [
        Finding(
            Rules.UNSAFE_OUTPUT_PATH,
            f"{where}/{text}, where s402gen writes a file; it never writes through one",
            Location(f"{where}/{text.split(' ')[0]}", 1, 1),
            "remove it (--force does not override this)",
        )
        for text in report.unsafe
    ]
    if report.foreign:
        more = " and more" if len(report.foreign) == write.FOREIGN_LISTED else ""
        found.append(
            Finding(
                Rules.FOREIGN_OUTPUT_FOLDER,
                f"{where} has no s402gen manifest.json and holds files s402gen does not "
                f"write: {', '.join(report.foreign)}{more}",
                Location(f"{where}/{report.foreign[0]}", 1, 1),
                "build into an empty or new folder, or pass --force to build there "
                "(those files are kept)",
            )
        )
    return found
