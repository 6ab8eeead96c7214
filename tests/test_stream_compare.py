"""``write._consume`` compares a file with the new text chunk by chunk, never holding
either whole, and stages exactly the new text when they differ."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from s402gen import write

NEW = ["{\n", '  "a": 1,\n', '  "中": [1, 2]\n', "}\n"]
TEXT = "".join(NEW).encode()


@pytest.mark.parametrize(
    "old",
    [
        TEXT,  # the same
        TEXT + b"more",  # longer: same prefix
        TEXT[:-3],  # shorter
        TEXT.replace(b"1,", b"9,"),  # differs inside a chunk
        b"",  # empty
        None,  # absent
    ],
)
def test_consume_compares_and_stages(tmp_path: Path, old: bytes | None) -> None:
    staged = tmp_path / "staged" / "file.json"
    current = None if old is None else io.BytesIO(old)

    def open_staged():
        staged.parent.mkdir(parents=True, exist_ok=True)
        return staged.open("wb")

    digest, same = write._consume(iter(NEW), current, open_staged)
    assert digest == hashlib.sha256(TEXT).hexdigest()
    assert same is (old == TEXT)
    if same:
        assert not staged.exists()
    else:
        assert staged.read_bytes() == TEXT


def test_consume_reads_the_file_a_block_at_a_time() -> None:
    """Never the whole file: at most a block of chunks (BLOCK bytes, and the chunk that
    reached it) at once."""

    class Counting(io.BytesIO):
        largest = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            Counting.largest = max(Counting.largest, len(data))
            return data

    big = ["x" * 1000] * 1000
    digest, same = write._consume(iter(big), Counting(b"x" * 1_000_000), None)
    assert same and write.BLOCK <= Counting.largest < write.BLOCK + 1000
