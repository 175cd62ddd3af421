"""The seed's count() example, on trilane's loop: three coroutines finish in about 1 s."""

import asyncio
import time

import trilane


async def count() -> None:
    print("One")
    await asyncio.sleep(1)
    print("Two")


async def main() -> None:
    await asyncio.gather(count(), count(), count())


if __name__ == "__main__":
    s = time.perf_counter()
    trilane.run(main())
    elapsed = time.perf_counter() - s
    print(f"{__file__} executed in {elapsed:0.2f} seconds.")
