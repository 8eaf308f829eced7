"""SQLite's turns (bot/storage/turns.py): one at a time, what arrives first ahead of the work
already waiting, first come first served within each kind, and a waiter cancelled at any
moment never keeps the turn from the others."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage.turns import Turns


async def _take(turns: Turns, name: str, order: list[str], *, first: bool = False) -> None:
    async with turns.turn(first=first):
        order.append(name)
        await asyncio.sleep(0)  # others queue meanwhile; nobody else is inside


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_what_arrives_goes_ahead_of_the_work_waiting_and_each_kind_in_order() -> None:
    turns, order = Turns(), list[str]()
    async with turns.turn():
        waiting = [
            asyncio.create_task(_take(turns, "work 1", order)),
            asyncio.create_task(_take(turns, "work 2", order)),
            asyncio.create_task(_take(turns, "arrival 1", order, first=True)),
            asyncio.create_task(_take(turns, "arrival 2", order, first=True)),
        ]
        await _settle()
        assert order == []  # the turn is held
    await asyncio.gather(*waiting)
    assert order == ["arrival 1", "arrival 2", "work 1", "work 2"]


async def test_only_one_holds_the_turn_at_a_time() -> None:
    turns, inside, most = Turns(), 0, 0

    async def work(first: bool) -> None:
        nonlocal inside, most
        async with turns.turn(first=first):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(work(n % 3 == 0) for n in range(30)))
    assert (most, inside) == (1, 0)


async def test_a_waiter_cancelled_while_waiting_is_skipped() -> None:
    turns, order = Turns(), list[str]()
    async with turns.turn():
        gone = asyncio.create_task(_take(turns, "gone", order, first=True))
        stays = asyncio.create_task(_take(turns, "stays", order))
        await _settle()
        gone.cancel()
        await _settle()
    await stays
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert order == ["stays"]


async def test_a_waiter_cancelled_as_its_turn_came_passes_it_on() -> None:
    turns, order = Turns(), list[str]()
    async with turns.turn():
        unlucky = asyncio.create_task(_take(turns, "unlucky", order))
        after = asyncio.create_task(_take(turns, "after", order))
        await _settle()
    unlucky.cancel()  # handed the turn on leaving the block, cancelled before it could run
    await asyncio.wait_for(after, 5)  # a turn kept by the cancelled waiter would stop here
    with pytest.raises(asyncio.CancelledError):
        await unlucky
    assert order == ["after"]
    async with turns.turn():  # free again
        order.append("later")
    assert order == ["after", "later"]
