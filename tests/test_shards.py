"""The sharded Parquet contract: schema, fixed shard boundaries, byte-identical rewrites."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from dpsrgan.data.shards import SCHEMA, Row, decode_png, encode_png, read_split, read_split_frame, split_dirs, write_split


def rows(n: int) -> list[Row]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        hr = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
        out.append(Row(f"{i:06d}.jpg", encode_png(hr), encode_png(hr[::4, ::4]), 8, 12))
    return out


def test_png_round_trip_is_exact():
    image = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(image)), image)
    assert encode_png(image) == encode_png(image.copy())


def test_fixed_shard_boundaries_and_schema(tmp_path):
    paths = write_split(rows(7), tmp_path / "train", shard_rows=3)
    assert [p.name for p in paths] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.read_metadata(p).num_rows for p in paths] == [3, 3, 1]
    assert pq.read_schema(paths[0]).remove_metadata() == SCHEMA
    samples = list(read_split(tmp_path / "train"))
    assert [s.id for s in samples] == [r.id for r in rows(7)]
    assert samples[0].hr.shape == (8, 12, 3) and samples[0].lr.shape == (2, 3, 3)
    frame = read_split_frame(tmp_path / "train")
    assert list(frame.columns) == ["id", "hr", "lr", "height", "width"] and len(frame) == 7


def test_rewrite_is_byte_identical(tmp_path):
    first = write_split(rows(5), tmp_path / "a", shard_rows=2)
    second = write_split(rows(5), tmp_path / "b", shard_rows=2)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_empty_split_still_has_a_schema_shard(tmp_path):
    (path,) = write_split([], tmp_path / "test", shard_rows=4)
    assert pq.read_metadata(path).num_rows == 0
    assert list(read_split(tmp_path / "test")) == []
    assert len(read_split_frame(tmp_path / "test")) == 0


def test_split_dirs_layout(tmp_path):
    assert split_dirs(tmp_path) == {"train": tmp_path / "train", "valid": tmp_path / "valid", "test": tmp_path / "test"}
