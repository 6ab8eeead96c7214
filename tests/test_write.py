"""The write and check stages on small file maps: reports, manifests, staging, pruning
and the unified diff ``check`` prints, each against a hand-written expectation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from s402gen import write

FILES = {"a.txt": "alpha\n", "docs/b.txt": "beta\n", "docs/deep/c.txt": "gamma\n"}


def _items(files: dict[str, str]):
    return [(path, [text]) for path, text in files.items()]


def _tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_manifest_text_format() -> None:
    text = write.manifest_text({"b": "2", "a": "1", write.MANIFEST: "x"})
    assert (
        text == '{\n  "generator": "s402gen",\n  "files": {\n    "a": "1",\n    "b": "2"\n  }\n}\n'
    )


def test_manifest_text_is_json_dumps_indented_text() -> None:
    """Written by orjson, it is the text json.dumps(indent=2) gave: ASCII, any path
    that is not escaped as \\uXXXX, an empty list of files as {}."""
    for files in ({}, {"docs/tools/a-1.html": "0" * 64, "mcp/tools.json": "f" * 64}):
        expected = json.dumps({"generator": "s402gen", "files": files}, indent=2) + "\n"
        assert write.manifest_text(files) == expected
    files = {"docs/tools/café.html": "1" * 64}
    assert write.manifest_text(files) == (
        json.dumps({"generator": "s402gen", "files": files}, indent=2) + "\n"
    )
    assert "caf\\u00e9" in write.manifest_text(files)
    assert write.manifest_bytes(files) == write.manifest_text(files).encode("ascii")
    for odd in ("a\x7fb.html", "a\ud800b.html"):  # DEL and a lone surrogate: escaped
        files = {odd: "2" * 64}
        expected = json.dumps({"generator": "s402gen", "files": files}, indent=2) + "\n"
        assert write.manifest_text(files) == expected


def test_first_build_then_rebuild_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write.build(out, _items(FILES))
    assert first.written == [*FILES, write.MANIFEST]
    assert (first.unchanged, first.removed, first.conflicts) == (0, [], [])
    assert first.files == {path: write.sha256(text) for path, text in FILES.items()}
    assert _tree(out) == {**FILES, write.MANIFEST: write.manifest_text(first.files)}
    manifest = (out / write.MANIFEST).read_bytes()
    assert first.manifest_sha256 == hashlib.sha256(manifest).hexdigest()
    again = write.build(out, _items(FILES))
    assert (again.written, again.unchanged) == ([], len(FILES) + 1)
    edited = write.build(out, _items({**FILES, "a.txt": "ALPHA\n"}))
    assert (edited.written, edited.unchanged) == (["a.txt", write.MANIFEST], len(FILES) - 1)


def test_build_without_force_keeps_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("mine\n", encoding="utf-8")
    report = write.build(out, _items(FILES))
    assert report.conflicts == ["a.txt"] and report.written == []
    assert _tree(out) == {"a.txt": "mine\n"}


def test_staging_folder_lives_in_the_output_under_its_prefix(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    seen: list[list[str]] = []

    def files():
        for path, text in FILES.items():
            seen.append([p.name for p in out.iterdir() if p.is_dir()])
            yield path, [text]

    write.build(out, files())
    assert seen and all(
        len(names) == 1 and names[0].startswith(write.STAGING_PREFIX) for names in seen
    )
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "docs", write.MANIFEST]


def test_shorter_files_in_new_folders_are_written_in_full(tmp_path: Path) -> None:
    """A new text that is a prefix of the current one, in a nested folder, twice."""
    out = tmp_path / "out"
    long = {"x/y/one.txt": "one and more\n", "x/y/two.txt": "two and more\n"}
    write.build(out, _items(long))
    short = {"x/y/one.txt": "one", "x/y/two.txt": "two"}
    report = write.build(out, _items(short))
    assert report.written == [*short, write.MANIFEST]
    assert _tree(out) == {**short, write.MANIFEST: write.manifest_text(report.files)}
    assert report.files == {path: write.sha256(text) for path, text in short.items()}


def test_orphans_are_removed_with_their_empty_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write.build(out, _items(FILES))
    report = write.build(out, _items({"a.txt": FILES["a.txt"]}))
    assert report.removed == ["docs/b.txt", "docs/deep/c.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", write.MANIFEST]


def test_manifest_whose_files_are_not_a_mapping_is_foreign(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / write.MANIFEST).write_text(json.dumps({"generator": "s402gen", "files": ["a.txt"]}))
    assert write.read_manifest(out) == {}
    assert write.build(out, _items(FILES)).conflicts == [write.MANIFEST]


def test_check_lists_a_missing_manifest_as_missing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write.build(out, _items(FILES))
    (out / write.MANIFEST).unlink()
    drift = write.check(out, lambda: _items(FILES))
    assert (drift.missing, drift.changed, drift.orphans) == ([write.MANIFEST], [], [])


def test_check_diff_text(tmp_path: Path) -> None:
    """Changed (without a final newline), missing and orphan files, in one unified diff."""
    out = tmp_path / "out"
    write.build(out, _items({"a.txt": "one\ntwo", "b.txt": "gone\n", "c.txt": "old\n"}))
    (out / "c.txt").unlink()
    new = [("a.txt", ["one\n", "TWO"]), ("c.txt", ["new\n"])]  # rendered in chunks
    drift = write.check(out, lambda: new)
    assert (drift.changed, drift.missing, drift.orphans) == (
        ["a.txt", write.MANIFEST],
        ["c.txt"],
        ["b.txt"],
    )
    manifest_diff = drift.diff[drift.diff.index("--- a/manifest.json") :]
    manifest_diff = manifest_diff[: manifest_diff.index("--- a/b.txt")]
    assert drift.diff.replace(manifest_diff, "") == (
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n"
        "--- /dev/null\n+++ b/c.txt\n@@ -0,0 +1 @@\n+new\n"
        "--- a/b.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\n"
    )


def test_a_users_folder_named_like_staging_is_neither_reported_nor_removed(
    tmp_path: Path,
) -> None:
    """Only staging folders a build's own journal names are s402gen's."""
    out = tmp_path / "out"
    write.build(out, _items(FILES))
    mine = out / f"{write.STAGING_PREFIX}mine"
    (mine / "docs").mkdir(parents=True)
    (mine / "docs" / "notes.txt").write_text("keep\n", encoding="utf-8")
    drift = write.check(out, lambda: _items(FILES))
    assert drift.clean and drift.diff == ""
    write.build(out, _items({**FILES, "a.txt": "ALPHA\n"}))
    assert (mine / "docs" / "notes.txt").read_text(encoding="utf-8") == "keep\n"


def test_pruning_stops_at_the_output_even_through_a_symlink(tmp_path: Path) -> None:
    """An output subfolder that is a symlink: pruning never climbs outside the output."""
    out = tmp_path / "out"
    write.build(out, _items({"a.txt": "alpha\n", "link/x.txt": "x\n"}))
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.parent.mkdir()
    (out / "link").rename(elsewhere)
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    write.build(out, _items({"a.txt": "alpha\n"}))
    assert elsewhere.is_dir() and elsewhere.parent.is_dir()


def test_chunks_are_hashed_and_compared_in_blocks_holding_every_byte_in_order() -> None:
    """Small chunks (text or bytes) are joined into blocks of BLOCK bytes or more (less
    only before a large chunk, or at the end), a large one passes alone, uncopied, and
    the bytes are the chunks' own, in order."""
    import random

    rng = random.Random(7)
    sizes = [
        rng.choice((1, 17, 300, write.BLOCK - 1, write.BLOCK, 3 * write.BLOCK)) for _ in range(200)
    ]
    chunks = [("é" * (n // 2) if i % 3 == 0 else bytes([i % 251]) * n) for i, n in enumerate(sizes)]
    blocks = list(write._blocks(chunks))
    assert b"".join(blocks) == b"".join(c.encode() if isinstance(c, str) else c for c in chunks)
    small = [len(block) < write.BLOCK for block in blocks]
    assert not any(a and b for a, b in zip(small, small[1:]))  # small ones joined
    first = -(-write.BLOCK // 100) * 100  # the first 100-byte chunk that reaches BLOCK
    assert [len(b) for b in write._blocks([b"y" * 100] * 1000)] == [first, 100_000 - first]
    assert list(write._blocks([])) == []
    large = b"x" * write.BLOCK
    assert [len(b) for b in write._blocks([b"a", large, "b"])] == [1, write.BLOCK, 1]
    assert next(b for b in write._blocks([b"a", large]) if len(b) > 1) is large  # not copied
