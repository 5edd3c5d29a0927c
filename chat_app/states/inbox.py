"""The conversation list of /messages, and starting new conversations."""

from __future__ import annotations

from operator import itemgetter
from typing import TypedDict

import reflex as rx

from chat_app.clock import isoformat
from chat_app.db import run_in_session
from chat_app.domain import conversations
from chat_app.domain.conversations import ConversationSummary, MessageView, preview
from chat_app.domain.errors import DomainError
from chat_app.realtime import push, read_receipts, topics
from chat_app.states.session import SessionState


class ConversationRow(TypedDict):
    """One conversation as the list shows it."""

    id: int
    title: str
    initials: str
    is_group: bool
    preview: str
    preview_is_mine: bool
    last_activity_at: str
    has_messages: bool
    last_message_id: int
    unread: int
    search_text: str
    href: str


def conversation_row(summary: ConversationSummary, *, viewer_id: int) -> ConversationRow:
    """Shape a conversation summary for the list."""
    others = [member for member in summary.members if member.id != viewer_id]
    initials = "".join(word[0] for word in summary.title.split()[:2]).upper() or "?"
    return ConversationRow(
        id=summary.id,
        title=summary.title,
        initials=initials if not summary.is_group else str(len(summary.members)),
        is_group=summary.is_group,
        preview=summary.last_message_preview,
        preview_is_mine=summary.last_message_sender_id == viewer_id,
        last_activity_at=isoformat(summary.last_activity_at),
        has_messages=summary.last_message_id > 0,
        last_message_id=summary.last_message_id,
        unread=summary.unread_count,
        search_text=" ".join([summary.title.lower(), *(member.email for member in others)]),
        href=f"/messages/{summary.id}",
    )


# Reflex re-sends a changed variable whole, so the list travels in tiers of
# growing size, newest activity first, each re-sent only when it changed. A
# message to a conversation near the top re-sends the first tier; one to a
# conversation further down moves it to the top, so each tier above it passes a
# row down and is re-sent with its own. A list of 200 conversations then costs
# a push 8 rows, not 200, when its conversation was among the first eight.
TIER_ROWS = (8, 16, 32, 64)
# The last tier holds every row past the others.
TIERS = ("rows_0", "rows_1", "rows_2", "rows_3", "rows_rest")


def _activity(row: ConversationRow) -> tuple[str, int]:
    """The list's order, newest activity first: rows with a greater key come first."""
    return row["last_activity_at"], row["id"]


class InboxState(rx.State):
    """The signed-in user's conversations, newest activity first (in `TIERS`)."""

    rows_0: list[ConversationRow] = []
    rows_1: list[ConversationRow] = []
    rows_2: list[ConversationRow] = []
    rows_3: list[ConversationRow] = []
    rows_rest: list[ConversationRow] = []
    # The tiers' rows in one list, as the receivers read them (never changed in place).
    # It could be derived from the tiers; joining them on each of a push's reads cost
    # 5-13 µs more per push (`python -m bench.hot_paths`).
    _rows: list[ConversationRow] = []
    loaded: bool = False
    # What each row's unread count was counted from: conversation id -> (the
    # user's read position, the newest message counted). Both only grow, so a
    # pushed count that is behind on both is older than the one shown.
    _counted_from: dict[int, tuple[int, int]] = {}
    # The conversation this tab's thread shows to the user now: its badge stays
    # off (the tab marks it read as messages arrive).
    _reading: int = 0
    search: str = ""
    new_dialog_open: bool = False
    new_error: str = ""
    starting: bool = False

    @rx.var
    def search_needle(self) -> str:
        """The search as the rows' `search_text` is matched against.

        The page filters the rows with it, so a pushed row does not send the list twice.
        """
        return self.search.strip().lower()

    # Both read the rows past Reflex's change-tracking proxies (`_listed`), which
    # wrap every row on each pass; every push to a tab recomputes them.
    @rx.var(deps=[*TIERS, "search_needle"], auto_deps=False)
    def match_count(self) -> int:
        """How many rows match the search box (by name or email)."""
        needle = self.search_needle  # a computed var: read once, not once per row
        listed = self._listed()
        if not needle:
            return len(listed)
        return sum(1 for row in listed if needle in row["search_text"])

    @rx.var(deps=list(TIERS), auto_deps=False)
    def total_unread(self) -> int:
        """Unread messages across all conversations."""
        return sum(map(itemgetter("unread"), self._listed()))

    def _listed(self) -> list[ConversationRow]:
        """The rows as shown, for reading: without Reflex's change-tracking proxies."""
        return self.get_value("_rows")

    def _show(self, rows: list[ConversationRow]) -> None:
        """Show `rows` (newest activity first), assigning only the tiers that change."""
        shown_before = len(self._listed())
        self._rows = rows
        start = 0
        for tier, size in zip(TIERS, (*TIER_ROWS, len(rows)), strict=True):
            if start >= len(rows) and start >= shown_before:
                break  # this tier and those after it were empty and stay so
            part = rows[start : start + size]
            if part != self.get_value(tier):
                setattr(self, tier, part)
            start += size

    async def _user_id(self) -> int:
        return (await self.get_state(SessionState)).user_id

    @rx.event
    async def load(self):
        """On page load (after the sign-in check): the whole list, a long one a tier per frame."""
        user_id = await self._user_id()
        if not user_id:
            self._show([])
            self.loaded = False
            return
        await read_receipts.flush()  # this tab's own reads first, or their badges come back
        summaries = await run_in_session(conversations.list_conversations, user_id=user_id)
        rows = [conversation_row(summary, viewer_id=user_id) for summary in summaries]
        self._counted_from = {
            summary.id: (summary.last_read_message_id, summary.last_message_id)
            for summary in summaries
        }
        self._reading = 0
        self.loaded = True
        if self._listed():  # shown already (a reconnect): changed tiers only, at once
            self._show(rows)
            return
        # A first load: each tier in a frame of its own, the newest rows first, since
        # the socket server keeps a buffer as large as the largest frame a tab was sent.
        shown = 0
        for size in TIER_ROWS:
            shown += size
            self._show(rows[:shown])
            if shown >= len(rows):
                return
            yield
        self._show(rows)

    @rx.event
    def search_changed(self, value: str):
        """Filter the list as the user types."""
        self.search = str(value)[:200]

    @rx.event
    def new_dialog_changed(self, is_open: bool):
        """Open or close the "new conversation" dialog."""
        self.new_dialog_open = bool(is_open)
        self.new_error = ""

    @rx.event
    async def start_conversation(self, form: dict):
        """Start (or reopen) a conversation with the emails typed, and open it."""
        self.new_error, self.starting = "", True
        yield
        session_state = await self.get_state(SessionState)
        if not await session_state._verified_user_id():
            self.starting = False
            yield SessionState.require_sign_in
            return
        emails = [
            part
            for part in str(form.get("emails", "")).replace(";", ",").replace("\n", ",").split(",")
            if part.strip()
        ]
        try:
            conversation_id, created = await run_in_session(
                conversations.start_conversation, creator_id=session_state.user_id, emails=emails
            )
        except DomainError as error:
            self.new_error, self.starting = error.message, False
            return
        await self._upsert(conversation_id, session_state.user_id)
        self.starting, self.new_dialog_open = False, False
        if created:
            members = await run_in_session(
                conversations.member_ids, conversation_id=conversation_id
            )
            push.publish(
                members,
                topics.CONVERSATION_CHANGED,
                {"conversation_id": conversation_id},
                skip=[self.router.session.client_token],
            )
        yield rx.redirect(f"/messages/{conversation_id}")

    async def _upsert(self, conversation_id: int, user_id: int) -> None:
        try:
            summary = await run_in_session(
                conversations.get_conversation, user_id=user_id, conversation_id=conversation_id
            )
        except DomainError:
            self._show([row for row in self._listed() if row["id"] != conversation_id])
            return
        self._counted_from = {
            **self._counted_from,
            conversation_id: (summary.last_read_message_id, summary.last_message_id),
        }
        row = conversation_row(summary, viewer_id=user_id)
        self._place({**row, "unread": 0} if conversation_id == self._reading else row)

    def _place(self, row: ConversationRow) -> None:
        """Show `row` in its place by activity (the other rows are in theirs already)."""
        others = [existing for existing in self._listed() if existing["id"] != row["id"]]
        activity = _activity(row)
        at = next((i for i, other in enumerate(others) if _activity(other) < activity), len(others))
        self._show([*others[:at], row, *others[at:]])

    def _read_here(self, conversation_id: int) -> None:
        """This tab shows `conversation_id` to the user: no badge for it while it does."""
        self._reading = conversation_id
        listed = self._listed()
        shown = next((row for row in listed if row["id"] == conversation_id), None)
        if shown is not None and shown["unread"]:
            self._show(
                [{**row, "unread": 0} if row["id"] == conversation_id else row for row in listed]
            )

    async def _stop_reading(self, user_id: int) -> None:
        """The thread is hidden: its row counts again, from the database's read position."""
        conversation_id, self._reading = self._reading, 0
        if conversation_id and self.loaded:
            await self._upsert(conversation_id, user_id)

    def _count_is_newer(self, conversation_id: int, read_position: int, newest: int) -> bool | None:
        """Whether a count taken at (read_position, newest) is newer than the one shown.

        None when neither is behind the other on both (pushes crossed): then
        only the database can tell.
        """
        shown_position, shown_newest = self._counted_from.get(conversation_id, (0, 0))
        if read_position >= shown_position and newest >= shown_newest:
            return True
        if read_position <= shown_position and newest <= shown_newest:
            return False
        return None

    async def _on_conversation_changed(self, payload: dict):
        """Pushed when a conversation of this user changed: update or refresh its row.

        Pushes can arrive out of order (several workers, several senders): a
        row's preview only moves to a newer message, and its unread count only
        to a newer count.
        """
        user_id = await self._user_id()
        if not user_id or not self.loaded:
            return
        conversation_id = int(payload["conversation_id"])
        existing = next((row for row in self._listed() if row["id"] == conversation_id), None)
        message: MessageView | None = payload.get("message")
        if existing is not None and "read_up_to" in payload:
            row = existing
            counted = (int(payload["read_up_to"]), int(payload["newest_message_id"]))
            unread = int(payload["unread"])
        elif (
            existing is not None and message is not None and user_id in payload["unread_by_member"]
        ):
            row = existing
            if message.id > existing["last_message_id"]:
                row = ConversationRow(
                    **{
                        **existing,
                        "preview": preview(message.body),
                        "preview_is_mine": message.sender_id == user_id,
                        "last_activity_at": isoformat(message.created_at),
                        "has_messages": True,
                        "last_message_id": message.id,
                    }
                )
            counted = (payload["read_position_by_member"][user_id], message.id)
            unread = payload["unread_by_member"][user_id]
        else:
            await self._upsert(conversation_id, user_id)
            return
        if conversation_id == self._reading:
            unread = 0
        else:
            newer = self._count_is_newer(conversation_id, *counted)
            if newer is None:
                await self._upsert(conversation_id, user_id)
                return
            if newer:
                self._counted_from = {**self._counted_from, conversation_id: counted}
            else:
                unread = existing["unread"]
        row = {**row, "unread": unread}
        if row != existing:
            self._place(row)
