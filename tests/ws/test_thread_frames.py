"""A tab opening a long thread gets it in several small frames, not one large one.

The socket server keeps, for as long as a tab stays open, a buffer as large as
the largest frame it has sent that tab (see the README's memory figures), so
the rows a frame carries are what an open tab costs.
"""

from __future__ import annotations

import httpx

import chat_app.chat_app  # noqa: F401  (builds the state tree, as the server does)
from chat_app.states.thread import BLOCK_ROWS, PARTS, ThreadState
from tests.support.reflex_client import ReflexSocket, run_async
from tests.ws.thread_page import open_thread_page


def _rows_per_frame(frames: list) -> list[list[dict]]:
    """For every frame that carried the thread: the rows it carried, part by part."""
    key = ThreadState.get_full_name()
    carried = []
    for frame in frames:
        delta = frame.get("delta", {}).get(key, {}) if isinstance(frame, dict) else {}
        parts = [delta[f"{part}_rx_state_"] for part in PARTS if f"{part}_rx_state_" in delta]
        if parts:
            carried.append([row for part in parts for row in part])
    return carried


def _thread_as_shown(socket: ReflexSocket) -> list[str]:
    """The thread the page shows once every frame so far is applied."""
    shown = {part: socket.delta_value(ThreadState, part) or [] for part in PARTS}
    return [row["body"] for part in PARTS for row in shown[part]]


def test_a_page_of_fifty_arrives_in_frames_of_at_most_one_block(app_server, make_account) -> None:
    alice, bob = make_account("Alice Frames"), make_account("Bob Frames")
    auth = {"Authorization": f"Bearer {alice.token}"}
    with httpx.Client(base_url=app_server.url, headers=auth, timeout=20) as client:
        conversation_id = client.post("/api/conversations", json={"emails": [bob.email]}).json()[
            "id"
        ]
        bodies = [f"message {index:03d}" for index in range(60)]
        for index, body in enumerate(bodies):
            client.post(
                f"/api/conversations/{conversation_id}/messages",
                json={"content": body, "client_message_id": f"frames-{index}"},
            ).raise_for_status()

    async def bob_opens_it_and_alice_sends_one_more() -> tuple[ReflexSocket, int]:
        socket = ReflexSocket(app_server.url, cookie=f"chat_app.session_token={bob.token}")
        await socket.connect()
        await open_thread_page(socket, conversation_id)
        opened = len(socket.frames)
        httpx.post(
            f"{app_server.url}/api/conversations/{conversation_id}/messages",
            json={"content": "one more", "client_message_id": "frames-one-more"},
            headers=auth,
            timeout=20,
        ).raise_for_status()
        await socket.settle(quiet=0.5)
        await socket.close()
        return socket, opened

    socket, opened = run_async(bob_opens_it_and_alice_sends_one_more)
    carried = _rows_per_frame(socket.frames)
    assert _thread_as_shown(socket) == bodies[10:] + ["one more"]
    # The newest page of 50 came in five frames of one block each...
    opening = [rows for rows in carried if rows][:5]
    assert [len(rows) for rows in opening] == [BLOCK_ROWS] * 5
    assert max(len(rows) for rows in carried) <= BLOCK_ROWS + 1
    # ...and the message after it came in one frame: the block the latest part sealed, and
    # the latest part now holding only that message.
    pushed = _rows_per_frame(socket.frames[opened:])
    assert [len(rows) for rows in pushed] == [BLOCK_ROWS + 1]
