"""MLLP framing, byte by byte: whatever the chunking, the same frames come out."""

from __future__ import annotations

import random

import pytest

from adapters.hl7v2.mllp import END, START, Frame, FrameReader, FrameTooLong, Oversize, frame


def feed_all(reader: FrameReader, data: bytes, chunks: list[int]) -> list[Frame | Oversize]:
    out: list[Frame | Oversize] = []
    pos = 0
    for size in chunks:
        out += reader.feed(data[pos : pos + size])
        pos += size
    return out + reader.feed(data[pos:])


def test_frames_come_out_whole_however_the_bytes_are_chunked() -> None:
    payloads = [b"MSH|one", b"MSH|two\rPID|x", b"", b"MSH|" + b"z" * 500]
    stream = b"".join(frame(p) for p in payloads)
    rng = random.Random(3)
    for _ in range(300):
        chunks = [rng.randint(1, 40) for _ in range(rng.randint(0, 60))]
        reader = FrameReader(limit=1024)
        assert feed_all(reader, stream, chunks) == [Frame(p) for p in payloads]
        assert not reader.mid_frame


def test_bytes_outside_frames_are_skipped_and_counted() -> None:
    reader = FrameReader(limit=100)
    out = reader.feed(b"noise" + frame(b"MSH|a") + b"\r\n" + frame(b"MSH|b"))
    assert out == [Frame(b"MSH|a"), Frame(b"MSH|b")] and reader.garbage == 7


def test_a_new_start_block_abandons_the_partial_frame() -> None:
    reader = FrameReader(limit=100)
    assert reader.feed(START + b"MSH|half" + START + b"MSH|whole" + END) == [Frame(b"MSH|whole")]
    assert reader.restarts == 1


def test_a_half_received_frame_is_reported_as_in_progress() -> None:
    reader = FrameReader(limit=100)
    assert reader.feed(START + b"MSH|a\x1c") == [] and reader.mid_frame
    assert reader.feed(b"\r") == [Frame(b"MSH|a")] and not reader.mid_frame


def test_an_end_block_without_its_carriage_return_still_ends_the_frame() -> None:
    assert FrameReader(limit=100).feed(START + b"MSH|a\x1c" + frame(b"MSH|b")) == [
        Frame(b"MSH|a"),
        Frame(b"MSH|b"),
    ]


@pytest.mark.parametrize("chunk", [7, 1000, 10_000])
def test_an_oversize_frame_is_reported_with_its_head_and_the_stream_goes_on(chunk: int) -> None:
    big = b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL\r" + b"x" * 5000
    stream = frame(big) + frame(b"MSH|next")
    reader = FrameReader(limit=1000)
    out = feed_all(reader, stream, [chunk] * (len(stream) // chunk))
    assert len(out) == 2
    assert (
        isinstance(out[0], Oversize)
        and out[0].size == len(big)
        and out[0].head.startswith(b"MSH|^~\\&|DEMO_EHR")
    )
    assert out[1] == Frame(b"MSH|next")
    assert len(reader._buffer) <= 1001  # never holds more than the limit


def test_an_endless_frame_drops_the_connection() -> None:
    reader = FrameReader(limit=100)
    reader.feed(START)
    with pytest.raises(FrameTooLong):
        for _ in range(1000):
            reader.feed(b"y" * 100)
