"""Nudges: a customer close to a reward (a share of its cost, in the program file) who has not
been in for a while hears what one more visit brings; once per idle spell (until they buy)."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import Clock
from bot.domain.notices import localised
from bot.domain.promotions import Promotion, promote
from bot.domain.pushes import PushMessage
from bot.program import Program, Reward
from bot.scheduled_job import JobParts, ScheduledJob
from bot.storage.audiences import Audiences, Idle
from bot.storage.customers import CustomerRepository
from bot.storage.database import Database


class NudgeJob:
    def __init__(self, database: Database, clock: Clock, program: Program) -> None:
        self._db = database
        self._clock = clock
        self._program = program

    async def run(self) -> int:
        rules = self._program.nudges
        rewards = self._program.rewards_by_cost()
        if not rules.near_reward_share:
            return 0
        now = self._clock.now()
        near_from = min(int(rules.near_reward_share * reward.cost) for reward in rewards)
        async with self._db.transaction() as tx:
            near: dict[int, tuple[Idle, Reward]] = {}
            for found in await Audiences(tx).idle_with_points(
                now - timedelta(days=rules.idle_days), max(near_from, 1)
            ):
                reward = next((r for r in rewards if r.cost > found.balance), None)
                if reward is None or found.balance < rules.near_reward_share * reward.cost:
                    continue  # can afford everything, or not close enough to the next
                near[found.customer_id] = (found, reward)
            promotions = []
            # Only those close to a reward are read in full: most idle customers are not.
            for customer in await CustomerRepository(tx).by_ids(list(near)):
                found, reward = near[customer.id]
                message = PushMessage(
                    "pushes/nudge",
                    {
                        "name": customer.name,
                        "balance": found.balance,
                        "missing": reward.cost - found.balance,
                        "reward": localised(reward.name),
                    },
                )
                key = f"nudge:{customer.id}:{found.last_sale_id}"
                promotions.append(Promotion(customer, "nudge", key, message, reason="near_reward"))
            return (await promote(tx, promotions, now, self._program.contact)).queued


def scheduled(parts: JobParts) -> ScheduledJob:
    """Daily at the program's hour; a start after that hour catches up on today."""
    hour = parts.program.nudges.send_hour
    job = NudgeJob(parts.database, parts.clock, parts.program)
    return ScheduledJob.daily(job.run, hour, parts.zone)
