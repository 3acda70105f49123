"""Consume the gateway's canonical events from a quorum queue of your own (README: Manufacturers).

AMQP_URL=amqp://user:password@broker/vhost QUEUE=acme.cgt-events python docs/examples/consumer.py
"""

import asyncio
import json
import os

import aio_pika

URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
QUEUE = os.environ.get("QUEUE", "acme-mes.cgt-events")
PATTERNS = os.environ.get("PATTERNS", "order.# slot.# manufacturing.# identity.mismatch").split()
MAX_EVENTS = int(os.environ.get("MAX_EVENTS", "0"))  # 0: for ever


async def main() -> None:
    seen: set[str] = set()  # keep it in your database, committed with what the event did
    async with await aio_pika.connect_robust(URL) as connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        events = await channel.get_exchange("cgt.events")  # the gateway declares it
        arguments = {"x-queue-type": "quorum", "x-dead-letter-exchange": "cgt.dlx", "x-delivery-limit": 5}
        queue = await channel.declare_queue(QUEUE, durable=True, arguments=arguments)
        for pattern in PATTERNS:
            await queue.bind(events, routing_key=pattern)
        print(json.dumps({"bound": PATTERNS}), flush=True)
        async with queue.iterator() as messages:
            async for message in messages:
                event = json.loads(message.body)  # a CloudEvent, structured JSON
                if event["id"] not in seen:  # at least once: a repeat has the same id
                    seen.add(event["id"])
                    print(json.dumps({k: event.get(k) for k in ("id", "type", "subject")}), flush=True)
                await message.ack()  # only after your own commit
                if MAX_EVENTS and len(seen) >= MAX_EVENTS:
                    return


if __name__ == "__main__":
    asyncio.run(main())
