"""The open conversation of /messages/[conversation_id]: its messages and the composer."""

from __future__ import annotations

import time
import weakref
from typing import TypedDict

import reflex as rx

from chat_app.clock import isoformat
from chat_app.db import run_in_session
from chat_app.domain import conversations
from chat_app.domain.conversations import MessageView
from chat_app.domain.errors import DomainError, InvalidInput, NotFound
from chat_app.realtime import push, read_receipts, topics
from chat_app.states.inbox import InboxState
from chat_app.states.session import SessionState

WINDOW_MAX = 300
# A window past WINDOW_MAX drops its oldest rows down to WINDOW_KEEP, so the large
# frame that re-sends the earlier part comes once per hundred messages, not with each.
WINDOW_KEEP = 200
# Reflex re-sends a changed variable whole, and the socket server keeps, for as
# long as a tab stays open, a buffer as large as the largest frame it has sent
# that tab. So the thread travels in parts, each sent in a frame of its own:
# - `latest`: the newest stored messages (at most BLOCK_ROWS) and pending sends,
#   which change with every message;
# - BLOCKS blocks of exactly BLOCK_ROWS stored messages, filled in order as the
#   latest part overflows and never changed after (a page opens as the latest
#   part and four blocks, newest first: five frames of about 2.5 KB, not one of 13 KB);
# - `earlier`: what the reader paged in, and the blocks folded together once
#   every block is full (then one large frame).
BLOCK_ROWS = 10
BLOCKS = tuple(f"block_{index}" for index in range(8))
PARTS = ("earlier", *BLOCKS, "latest")
CATCH_UP_OVERLAP = 20
TYPING_SHOWN_SECONDS = 5.0


class MessageRow(TypedDict):
    """One message as the thread shows it, the same for every viewer. Pending rows have id 0."""

    id: int
    client_id: str
    sender_id: int
    sender_name: str
    body: str
    created_at: str
    status: str  # "sent", "sending" or "failed"
    error: str


class _StoredRow(dict):
    """A stored message's row: one object for every tab that shows the message.

    Stored messages never change, so the tabs of a conversation's members hold
    the same row instead of a copy each. It refuses changes, because a change
    would show in all of them; a pending row is a plain dict of its tab's own.
    """

    __slots__ = ("__weakref__",)

    def __reduce__(self):
        # A copied or unpickled state (Reflex's Redis or disk state manager) shares the
        # rows too, and the default would rebuild the row through the refused __setitem__.
        return (_shared_row, (dict(self),))

    def _refuse(self, *_args, **_kwargs):
        raise TypeError("a stored message's row is shared by tabs: copy it to change it")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


# Rows live as long as some tab shows them. Only the event loop's thread uses this.
_stored_rows: weakref.WeakValueDictionary[int, _StoredRow] = weakref.WeakValueDictionary()


def _shared_row(fields: dict) -> _StoredRow:
    """The row tabs already hold for message `fields["id"]` if it equals `fields`, else a new one."""
    row = _stored_rows.get(fields["id"])
    if row is None:
        row = _stored_rows[fields["id"]] = _StoredRow(fields)
    elif row != fields:
        row = _StoredRow(fields)
    return row


def message_row(view: MessageView) -> MessageRow:
    """The thread's row for a stored message, shared with every tab that already shows it.

    A message's text never changes, but its sender's name can: a row made before
    the sender renamed themselves is not handed to a tab that reads the new name.
    """
    row = _stored_rows.get(view.id)
    if row is None or row["sender_name"] != view.sender_name:
        row = _stored_rows[view.id] = _StoredRow(
            {
                "id": view.id,
                "client_id": view.client_message_id,
                "sender_id": view.sender_id,
                "sender_name": view.sender_name,
                "body": view.body,
                "created_at": isoformat(view.created_at),
                "status": "sent",
                "error": "",
            }
        )
    return row  # type: ignore[return-value]  (a dict with MessageRow's keys)


def _follow_in_order(stored: list[MessageRow], rows: list[MessageRow]) -> bool:
    """Whether `rows` are newer than every row of `stored` (in id order), and in id order."""
    last = stored[-1]["id"] if stored else 0
    for row in rows:
        if row["id"] <= last:
            return False
        last = row["id"]
    return True


def _stored_count(rows: list[MessageRow]) -> int:
    """How many rows lead before the first pending send (pending sends come last)."""
    return next((i for i, row in enumerate(rows) if not row["id"]), len(rows))


def _parts_for(
    rows: list[MessageRow], current: dict[str, list[MessageRow]]
) -> dict[str, list[MessageRow]]:
    """The parts (`PARTS`) that must change for the page to show `rows`, and their new values.

    A thread that grew at its end keeps its earlier part and its full blocks;
    one that grew at its start (a page of older messages) keeps its blocks and
    latest part; anything else is laid out afresh.
    """
    earlier = current["earlier"]
    shown = [row for part in PARTS for row in current[part]]
    grown_at_start = len(rows) - len(shown)
    if shown and grown_at_start > 0 and rows[grown_at_start:] == shown:
        return {"earlier": rows[: grown_at_start + len(earlier)]}
    dropped = _dropped_from_the_start(rows, earlier)
    if dropped:  # the window outgrew WINDOW_MAX: its oldest rows left the earlier part
        earlier = earlier[dropped:]
    if rows[: len(earlier)] != earlier:
        return _changed(_laid_out_afresh(rows), current)
    parts: dict[str, list[MessageRow]] = {"earlier": earlier}
    offset = len(earlier)
    free = list(BLOCKS)
    while free:
        block = current[free[0]]
        if len(block) != BLOCK_ROWS or rows[offset : offset + BLOCK_ROWS] != block:
            break
        parts[free.pop(0)] = block
        offset += BLOCK_ROWS
    kept_a_block = len(free) < len(BLOCKS)
    stored = _stored_count(rows)
    for part in free:
        parts[part] = []
        if stored - offset > BLOCK_ROWS:
            parts[part] = rows[offset : offset + BLOCK_ROWS]
            offset += BLOCK_ROWS
    if stored - offset > BLOCK_ROWS:
        if not kept_a_block:
            return _changed(_laid_out_afresh(rows), current)
        # Every block is full: fold them into the earlier part (one large frame),
        # which leaves all the blocks to the messages that follow.
        offset = stored - BLOCK_ROWS
        parts = {"earlier": rows[:offset], **{part: [] for part in BLOCKS}}
    parts["latest"] = rows[offset:]
    return _changed(parts, current)


def _dropped_from_the_start(rows: list[MessageRow], earlier: list[MessageRow]) -> int:
    """How many of the earlier part's first rows `rows` no longer starts with (0 if not so)."""
    if not rows or not earlier or rows[0] is earlier[0] or not rows[0]["id"]:
        return 0
    first = rows[0]["id"]
    dropped = next((i for i, row in enumerate(earlier) if row["id"] == first), 0)
    return dropped if rows[: len(earlier) - dropped] == earlier[dropped:] else 0


def _laid_out_afresh(rows: list[MessageRow]) -> dict[str, list[MessageRow]]:
    """The newest stored rows in full blocks and the latest part, the older ones earlier."""
    stored = _stored_count(rows)
    in_latest = stored % BLOCK_ROWS or min(BLOCK_ROWS, stored)
    in_blocks = min(len(BLOCKS) * BLOCK_ROWS, stored - in_latest)
    start = stored - in_latest - in_blocks
    parts = {"earlier": rows[:start]}
    for index, part in enumerate(BLOCKS):
        first = start + index * BLOCK_ROWS
        parts[part] = rows[first : first + BLOCK_ROWS] if index * BLOCK_ROWS < in_blocks else []
    parts["latest"] = rows[stored - in_latest :]
    return parts


def _changed(
    parts: dict[str, list[MessageRow]], current: dict[str, list[MessageRow]]
) -> dict[str, list[MessageRow]]:
    return {part: value for part, value in parts.items() if value != current[part]}


def conversation_id_from_path(path: str) -> int:
    """The id in "/messages/<id>" (the page path is the client's word: it is only a request)."""
    parts = [part for part in path.split("/") if part]
    if len(parts) == 2 and parts[0] == "messages" and parts[1].isdigit() and len(parts[1]) < 18:
        return int(parts[1])
    return 0


class ThreadState(rx.State):
    """The open conversation: a bounded window of its newest messages, in server order."""

    conversation_id: int = 0
    title: str = ""
    member_ids: list[int] = []
    earlier: list[MessageRow] = []
    block_0: list[MessageRow] = []
    block_1: list[MessageRow] = []
    block_2: list[MessageRow] = []
    block_3: list[MessageRow] = []
    block_4: list[MessageRow] = []
    block_5: list[MessageRow] = []
    block_6: list[MessageRow] = []
    block_7: list[MessageRow] = []
    latest: list[MessageRow] = []
    has_older: bool = False
    loading: bool = False
    loading_older: bool = False
    not_found: bool = False
    composer_error: str = ""
    typing_names: list[str] = []
    page_hidden: bool = False
    # user id -> (name, monotonic time until which "is typing" shows)
    _typing: dict[int, tuple[str, float]] = {}

    @rx.var
    def typing_text(self) -> str:
        """ "Alice is typing…", or "" when nobody is."""
        names = self.typing_names
        if not names:
            return ""
        if len(names) == 1:
            return f"{names[0]} is typing…"
        return f"{', '.join(names[:-1])} and {names[-1]} are typing…"

    async def _session(self) -> SessionState:
        return await self.get_state(SessionState)

    def _parts(self) -> dict[str, list[MessageRow]]:
        """Each part as shown, for reading (without Reflex's tracking proxies)."""
        return {part: self.get_value(part) for part in PARTS}

    def _shown(self, parts: dict[str, list[MessageRow]] | None = None) -> list[MessageRow]:
        """The thread as shown (or as `parts`, read by `_parts`), oldest first, for reading."""
        return [row for rows in (parts or self._parts()).values() for row in rows]

    def _changed_parts(
        self, rows: list[MessageRow], parts: dict[str, list[MessageRow]] | None = None
    ) -> dict[str, list[MessageRow]]:
        return _parts_for(rows, parts or self._parts())

    def _show(
        self, rows: list[MessageRow], parts: dict[str, list[MessageRow]] | None = None
    ) -> None:
        """Show `rows` (oldest first), changing as few of the parts sent as possible.

        Args:
            rows: The whole thread to show.
            parts: The parts as shown now, if the caller has just read them (`_parts`).
        """
        for part, value in self._changed_parts(rows, parts).items():
            setattr(self, part, value)

    def _show_part_by_part(self, rows: list[MessageRow]):
        """Like `_show`, one changed part at a time: the caller yields (sends a frame) between them.

        The newest part goes first: the page opens at the bottom of the thread,
        and the older parts then fill in above what the reader already sees.
        """
        changed = self._changed_parts(rows)
        for index, (part, value) in enumerate(reversed(changed.items())):
            if index:
                yield
            setattr(self, part, value)

    def _last_stored_id(self) -> int:
        return max((row["id"] for row in self._shown()), default=0)

    def _merge(
        self,
        rows: list[MessageRow],
        *,
        viewer_id: int,
        parts: dict[str, list[MessageRow]] | None = None,
    ) -> int:
        """Add stored rows, replacing their pending twins; keep server order, no duplicates.

        Args:
            rows: Stored rows, in any order.
            viewer_id: The tab's user: their rows replace their own pending sends.
            parts: The parts as shown now, if the caller has just read them (`_parts`).

        Returns:
            The id of the newest stored message shown (0 if none).
        """
        parts = parts or self._parts()
        shown = self._shown(parts)
        arrived_client_ids = {row["client_id"] for row in rows if row["sender_id"] == viewer_id}
        pending = [
            row for row in shown if not row["id"] and row["client_id"] not in arrived_client_ids
        ]
        stored = [row for row in shown if row["id"]]
        if _follow_in_order(stored, rows):  # what a push almost always brings
            stored = stored + rows
        else:
            by_id = {row["id"]: row for row in stored}
            by_id.update((row["id"], row) for row in rows)
            stored = sorted(by_id.values(), key=lambda row: row["id"])
        if len(stored) > WINDOW_MAX:
            stored = stored[-WINDOW_KEEP:]
            self.has_older = True
        self._show(stored + pending, parts)
        return stored[-1]["id"] if stored else 0

    def _holds(self, message_id: int, shown: list[MessageRow] | None = None) -> bool:
        """Whether this tab already shows message `message_id` (0: the conversation's start)."""
        if message_id == 0:
            return not self.has_older
        # Newest first: the message a push follows is almost always the last one shown.
        return any(row["id"] == message_id for row in reversed(shown or self._shown()))

    @rx.event
    async def open(self):
        """On load of /messages/[id]: show the latest page, or catch up if already shown."""
        session_state = await self._session()
        conversation_id = conversation_id_from_path(self.router.url.path)
        if not session_state.user_id or conversation_id <= 0:
            self._show_not_found()
            return
        if conversation_id == self.conversation_id and not self.not_found:
            await self._catch_up(session_state.user_id)
            await self._mark_read(session_state.user_id)
            return
        self.conversation_id = conversation_id
        self._show([])
        self.has_older, self.not_found = False, False
        self.composer_error, self.typing_names, self._typing = "", [], {}
        self.loading = True
        yield
        try:
            summary = await run_in_session(
                conversations.get_conversation,
                user_id=session_state.user_id,
                conversation_id=conversation_id,
            )
            views = await run_in_session(
                conversations.list_messages,
                user_id=session_state.user_id,
                conversation_id=conversation_id,
            )
        except NotFound:
            self._show_not_found()
            return
        finally:
            self.loading = False
        self.title, self.member_ids = summary.title, [member.id for member in summary.members]
        self.has_older = len(views) == conversations.PAGE_SIZE
        for _ in self._show_part_by_part([message_row(view) for view in views]):
            yield
        await self._mark_read(session_state.user_id)

    def _show_not_found(self) -> None:
        self.conversation_id, self.title, self.member_ids = 0, "", []
        self._show([])
        self.has_older, self.loading = False, False
        self.not_found = True

    @rx.event
    def close(self):
        """Leaving the thread (the list page shows no conversation)."""
        self.conversation_id, self.not_found = 0, False
        self._show([])
        self.typing_names = []

    async def _catch_up(self, user_id: int) -> None:
        """Merge in whatever the database has that this tab may lack.

        The last few known messages are read again: a message stored just
        before one already shown (this tab's own send, or a transaction that
        committed late) must not fall into a gap.
        """
        stored = [row["id"] for row in self._shown() if row["id"]]
        overlap = stored[-CATCH_UP_OVERLAP:]
        after = overlap[0] - 1 if overlap else 0
        while True:
            views = await run_in_session(
                conversations.list_messages,
                user_id=user_id,
                conversation_id=self.conversation_id,
                after=after,
                limit=conversations.PAGE_SIZE_MAX,
            )
            self._merge([message_row(view) for view in views], viewer_id=user_id)
            if len(views) < conversations.PAGE_SIZE_MAX:
                return
            after = views[-1].id

    async def _mark_read(self, user_id: int, newest_shown: int | None = None) -> None:
        """This tab has shown the open thread up to its newest message: mark it read.

        The list's badge in this tab clears now; the database and the user's
        other tabs follow within moments (`read_receipts`).

        Args:
            user_id: The tab's user.
            newest_shown: The newest stored message's id, if the caller knows it.
        """
        if self.page_hidden or not self.conversation_id:
            return
        read_receipts.note_read(
            user_id=user_id,
            conversation_id=self.conversation_id,
            message_id=self._last_stored_id() if newest_shown is None else newest_shown,
            # Not `self.router`, which assembles all the page's router data on each read.
            token=self.rx_router_session.client_token,
        )
        inbox = await self.get_state(InboxState)
        inbox._read_here(self.conversation_id)

    @rx.event
    async def load_older(self):
        """Page in the 50 messages before the oldest one shown."""
        session_state = await self._session()
        if not self.conversation_id or not self.has_older:
            return
        if not await session_state._verified_user_id():
            yield SessionState.require_sign_in
            return
        oldest = min((row["id"] for row in self._shown() if row["id"]), default=None)
        self.loading_older = True
        yield
        try:
            views = await run_in_session(
                conversations.list_messages,
                user_id=session_state.user_id,
                conversation_id=self.conversation_id,
                before=oldest,
            )
        except NotFound:
            self._show_not_found()
            return
        finally:
            self.loading_older = False
        older = [message_row(view) for view in views]
        self._show(older + self._shown())
        self.has_older = len(views) == conversations.PAGE_SIZE

    @rx.event
    async def send(self, form: dict, client_id: str = ""):
        """Send the composer's text: shown at once as "sending", then as sent or failed.

        The page clears the composer as it submits and generates `client_id` then,
        so the same event delivered twice is stored and shown once. A rejected
        message is put back in the composer.
        """
        body = str(form.get("body", ""))
        client_id = str(client_id)
        self.composer_error = ""
        if not body.strip() or not self.conversation_id:
            return
        try:
            conversations.validate_message_body(body)
            conversations.validate_client_message_id(client_id)
        except InvalidInput as error:
            self.composer_error = error.message
            yield rx.set_value("composer", body)
            return
        if any(row["client_id"] == client_id for row in self._shown()):
            return  # this very send was delivered twice
        session_state = await self._session()
        if not await session_state._verified_user_id():
            self.composer_error = "You are signed out. Sign in again to send."
            yield rx.set_value("composer", body)
            return
        self._show(
            self._shown()
            + [
                MessageRow(
                    id=0,
                    client_id=client_id,
                    sender_id=session_state.user_id,
                    sender_name=session_state.user_name,
                    body=body.strip(),
                    created_at="",
                    status="sending",
                    error="",
                )
            ]
        )
        yield
        async for update in self._store(client_id, body):
            yield update

    @rx.event
    async def retry(self, client_id: str):
        """Send a failed message again, with the same client id (stored at most once)."""
        row = next((r for r in self._shown() if r["client_id"] == client_id and not r["id"]), None)
        if row is None or row["status"] != "failed":
            return
        self._set_pending_status(client_id, "sending", "")
        yield
        async for update in self._store(client_id, row["body"]):
            yield update

    def _set_pending_status(self, client_id: str, status: str, error: str) -> None:
        self._show(
            [
                {**row, "status": status, "error": error}
                if row["client_id"] == client_id and not row["id"]
                else row
                for row in self._shown()
            ]
        )

    async def _store(self, client_id: str, body: str):
        session_state = await self._session()
        try:
            result = await run_in_session(
                conversations.send_message,
                user_id=session_state.user_id,
                conversation_id=self.conversation_id,
                body=body,
                client_message_id=client_id,
            )
        except DomainError as error:
            self._set_pending_status(client_id, "failed", error.message)
            yield rx.toast.error(f"Message not sent: {error.message}")
            return
        except Exception:
            self._set_pending_status(client_id, "failed", "Could not reach the server")
            yield rx.toast.error("Message not sent: the server could not store it. Retry?")
            return
        self._merge([message_row(result.message)], viewer_id=session_state.user_id)
        if result.created:
            payload = topics.new_message_payload(result)
            # This tab gets no push of its own send: its list moves here, in the
            # same delta as the thread.
            await (await self.get_state(InboxState))._on_conversation_changed(payload)
            push.publish(
                result.member_ids,
                topics.CONVERSATION_CHANGED,
                payload,
                skip=[self.router.session.client_token],
            )

    @rx.event
    async def typing(self, _value: str = ""):
        """The user is typing (the page throttles this): tell the other members' tabs."""
        session_state = await self._session()
        if not session_state.user_id or not self.conversation_id:
            return
        try:
            members = await run_in_session(
                conversations.conversation_member_ids,
                user_id=session_state.user_id,
                conversation_id=self.conversation_id,
            )
        except NotFound:
            return
        push.publish(
            [member for member in members if member != session_state.user_id],
            topics.TYPING,
            {
                "conversation_id": self.conversation_id,
                "user_id": session_state.user_id,
                "name": session_state.user_name,
            },
        )

    @rx.event
    async def visibility_changed(self, hidden: bool):
        """The tab was hidden or shown; shown again, it marks the open thread read."""
        self.page_hidden = bool(hidden)
        session_state = await self._session()
        if not session_state.user_id or not self.conversation_id:
            return
        if self.page_hidden:
            await (await self.get_state(InboxState))._stop_reading(session_state.user_id)
        else:
            await self._mark_read(session_state.user_id)

    async def _on_conversation_changed(self, payload: dict):
        """Pushed: a conversation changed. If it is the open one, show its new messages."""
        if (
            int(payload.get("conversation_id", 0)) != self.conversation_id
            or not self.conversation_id
            or "read_up_to" in payload  # a read position: nothing to show here
        ):
            return
        session_state = await self._session()
        if not session_state.user_id:
            return
        message = payload.get("message")
        # Every tab of the conversation's members runs this for each message: the
        # parts are read once for all of it.
        parts = self._parts()
        newest_shown = None
        if message is not None and self._holds(
            payload.get("previous_message_id", -1), self._shown(parts)
        ):
            newest_shown = self._merge(
                [message_row(message)], viewer_id=session_state.user_id, parts=parts
            )
        else:
            try:
                await self._catch_up(session_state.user_id)
            except NotFound:
                self._show_not_found()
                return
        sender_id = payload.get("sender_id")
        if sender_id in self._typing:
            self._typing = {k: v for k, v in self._typing.items() if k != sender_id}
            self._refresh_typing()
        await self._mark_read(session_state.user_id, newest_shown)

    async def _on_typing(self, payload: dict):
        """Pushed: someone is typing. Shown for 5 s unless they type again."""
        if int(payload.get("conversation_id", 0)) != self.conversation_id:
            return
        name = str(payload.get("name", ""))[:100]
        until = time.monotonic() + TYPING_SHOWN_SECONDS
        self._typing = {**self._typing, int(payload["user_id"]): (name, until)}
        self._refresh_typing()
        push.publish_later(
            TYPING_SHOWN_SECONDS + 0.2,
            [(await self._session()).user_id],
            topics.TYPING_EXPIRED,
            {"conversation_id": self.conversation_id},
        )

    async def _on_typing_expired(self, _payload: dict):
        self._refresh_typing()

    def _refresh_typing(self) -> None:
        now = time.monotonic()
        self._typing = {
            k: (name, until) for k, (name, until) in self._typing.items() if until > now
        }
        names = sorted(name for name, _ in self._typing.values())
        if names != self.typing_names:
            self.typing_names = names
