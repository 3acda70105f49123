"""What decoding a logger batch costs per reading, beside the bare ceiling measured in the same
run: the batch of 100 Tive-shaped entries (200 readings: device and probe) parsed with orjson
alone, and the same batch decoded into one `shipment.readings_reported` command (validated wire
models, canonical readings, fingerprint and batch id). And a LoRaWAN uplink of 10 history records.

    .venv/bin/python bench/logger_decode.py [--rounds 15] [--entries 100]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import struct
import time
from collections.abc import Callable

import orjson

from adapters.couriers.lorawan.adapter import adapter as lorawan
from adapters.couriers.tive.adapter import adapter as tive
from gateway.canonical.envelope import utcnow
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import Settings

T0_MS = 1_794_297_600_000


def tive_batch(entries: int) -> bytes:
    return orjson.dumps(
        [
            {
                "DeviceId": "350000000000017",
                "EntryTimeEpoch": T0_MS + n * 60_000,
                "Temperature": {"Celsius": 4.0 + (n % 30) / 10, "Fahrenheit": 39.2},
                "ProbeTemperature": {"Celsius": 4.5},
                "Battery": {"Percentage": 80},
                "Light": {"Lux": 0},
                "Accelerometer": {"G": 1.0, "X": 0.0, "Y": 0.0, "Z": 1.0},
                "Shipment": {"TrackingNumber": "DC000000001"},
                "Location": {"Latitude": 0.0, "Longitude": 0.0, "LocationMethod": "cell"},
            }
            for n in range(entries)
        ]
    )


def uplink(records: int) -> bytes:
    history = b"".join(
        bytes([0x20, 0xCE]) + struct.pack("<I", T0_MS // 1000 + n * 600) + b"\x01" + struct.pack("<h", 45)
        for n in range(records)
    )
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": "cold-box-0001", "dev_eui": "A1B2C3D4E5F60001"},
            "correlation_ids": ["as:up:01JBENCH"],
            "received_at": "2026-11-10T08:00:00Z",
            "uplink_message": {"f_port": 85, "frm_payload": base64.b64encode(history).decode()},
        }
    )


def per_call_us(work: Callable[[], object], rounds: int, calls: int) -> float:
    """The median over `rounds` of the mean time of one call, in microseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--entries", type=int, default=100)
    args = parser.parse_args()
    courier = load_partners(Settings().partners_file, env="test").get("demo-courier")
    ctx = InboundContext(courier, "bench", utcnow())
    batch, readings = tive_batch(args.entries), args.entries * 2
    assert len(tive.decode(batch, ctx).commands[0].payload.readings) == readings  # type: ignore[attr-defined]
    ceiling = per_call_us(lambda: orjson.loads(batch), args.rounds, 50)
    decode = per_call_us(lambda: tive.decode(batch, ctx), args.rounds, 20)
    up = uplink(10)
    up_ceiling = per_call_us(lambda: orjson.loads(up), args.rounds, 500)
    up_decode = per_call_us(lambda: lorawan.decode(up, ctx), args.rounds, 200)
    print(f"tive batch of {args.entries} entries ({readings} readings, {len(batch)} bytes)")
    print(f"  orjson.loads alone   {ceiling:9.1f} us  ({ceiling / readings:.2f} us/reading)")
    print(
        f"  decode to a command  {decode:9.1f} us  ({decode / readings:.2f} us/reading, "
        f"{readings / decode * 1e6:,.0f} readings/s, x{decode / ceiling:.1f} the parse)"
    )
    print(f"lorawan uplink of 10 history records ({len(up)} bytes)")
    print(f"  orjson.loads alone   {up_ceiling:9.1f} us")
    print(f"  decode to a command  {up_decode:9.1f} us  (x{up_decode / up_ceiling:.1f} the parse)")


if __name__ == "__main__":
    main()
