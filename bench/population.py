"""Who is in the benchmark: users, their conversations (2–10 members) and their open tabs.

The plan is drawn from a seed, independent of any server, so the app and the
relay are measured with the same people, rooms and tabs. About one user in
ten has a second tab (so a sender's own other tab is measured too), and about
one in ten is also in a second, group conversation (so some tabs show one
conversation while another one's messages reach their conversation list).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

import aiohttp

PASSWORD = "bench-password-123"


@dataclass
class Plan:
    """Users 0..n_users-1, groups of user indexes, tabs (user, group it opens)."""

    n_users: int
    groups: list[list[int]]
    user_groups: list[list[int]]
    tabs: list[tuple[int, int]]
    group_tabs: list[frozenset[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        tabs_of_user: dict[int, list[int]] = {}
        for index, (user, _group) in enumerate(self.tabs):
            tabs_of_user.setdefault(user, []).append(index)
        self.group_tabs = [
            frozenset(tab for user in members for tab in tabs_of_user.get(user, ()))
            for members in self.groups
        ]

    @property
    def mean_fanout(self) -> float:
        """Deliveries per message when conversations are picked uniformly."""
        return sum(len(tabs) for tabs in self.group_tabs) / len(self.groups)


def build_plan(clients: int, seed: int) -> Plan:
    """Draw the population for `clients` tabs."""
    rng = random.Random(seed)
    n_users = max(2, round(clients / 1.1))
    n_users = min(n_users, clients)
    order = list(range(n_users))
    rng.shuffle(order)
    groups: list[list[int]] = []
    position = 0
    while position < n_users:
        remaining = n_users - position
        size = rng.randint(2, 10)
        if remaining - size == 1:
            size = size + 1 if size < 10 else size - 1
        size = min(size, remaining)
        group = order[position : position + size]
        position += size
        if len(group) < 2:
            groups[-1].extend(group)
        else:
            groups.append(group)
    # About one user in ten also belongs to a second conversation, a group of 3–10.
    extra_members = max(0, n_users // 10)
    while extra_members > 0 and n_users >= 3:
        size = min(rng.randint(3, 10), n_users)
        groups.append(rng.sample(range(n_users), size))
        extra_members -= size
    user_groups: list[list[int]] = [[] for _ in range(n_users)]
    for index, members in enumerate(groups):
        for user in members:
            user_groups[user].append(index)
    second_tab = set(rng.sample(range(n_users), clients - n_users))
    tabs = []
    for user in range(n_users):
        for _ in range(2 if user in second_tab else 1):
            tabs.append((user, rng.choice(user_groups[user])))
    return Plan(n_users=n_users, groups=groups, user_groups=user_groups, tabs=tabs)


def api_session(base_url: str, *, limit: int = 100) -> aiohttp.ClientSession:
    """An HTTP client for scripts: Bearer tokens only, it keeps no cookie (so no CSRF check applies)."""
    return aiohttp.ClientSession(
        base_url=base_url,
        cookie_jar=aiohttp.DummyCookieJar(),
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=120),
    )


@dataclass
class Account:
    email: str
    token: str
    id: int


async def sign_up_all(base_url: str, plan: Plan, run_id: str, *, concurrency: int = 4) -> list[Account]:
    """Create every user through `POST /api/auth/sign-up/email` (Bearer tokens come back)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with api_session(base_url) as client:

        async def one(index: int) -> Account:
            email = f"bench-{run_id}-{index}@example.com"
            async with semaphore:
                async with client.post(
                    "/api/auth/sign-up/email",
                    json={"name": f"User {index}", "email": email, "password": PASSWORD},
                ) as response:
                    response.raise_for_status()
                    body = await response.json()
            return Account(email=email, token=body["token"], id=int(body["user"]["id"]))

        return list(await asyncio.gather(*(one(index) for index in range(plan.n_users))))


async def create_conversations(
    base_url: str, plan: Plan, accounts: list[Account], *, concurrency: int = 4
) -> list[int]:
    """Create each group through `POST /api/conversations` as its first member; returns ids."""
    semaphore = asyncio.Semaphore(concurrency)
    async with api_session(base_url) as client:

        async def one(members: list[int]) -> int:
            creator, others = accounts[members[0]], [accounts[user].email for user in members[1:]]
            async with semaphore:
                async with client.post(
                    "/api/conversations",
                    json={"emails": others},
                    headers={"Authorization": f"Bearer {creator.token}"},
                ) as response:
                    response.raise_for_status()
                    return int((await response.json())["id"])

        return list(await asyncio.gather(*(one(members) for members in plan.groups)))
