"""The Reflex app: pages, their load handlers, and the HTTP API mounted beside them."""

from __future__ import annotations

from chat_app.api.app import serve_api_beside
from chat_app.api.security_headers import add_security_headers
from chat_app.pages.account import account_page
from chat_app.pages.auth import sign_in_page, sign_up_page
from chat_app.pages.home import home_page
from chat_app.pages.messages import messages_page, thread_page
from chat_app.realtime import push
from chat_app.realtime.expiry import watch_session_expiry
from chat_app.realtime.guard import SocketGuard
from chat_app.realtime.redis_watch import watch_for_redis_restarts
from chat_app.serving import ChatApp, draw_event_ids_in_process, tune_garbage_collection
from chat_app.states.account import AccountState
from chat_app.states.auth import AuthFormState
from chat_app.states.inbox import InboxState
from chat_app.states.session import SessionState
from chat_app.states.subscriptions import subscribe_states
from chat_app.states.thread import ThreadState

draw_event_ids_in_process()
app = ChatApp(api_transformer=[serve_api_beside, add_security_headers])
app.add_middleware(SocketGuard(binding_state=SessionState, bound_user_attribute="_bound_user_id"))
push.bind_app(app)
app.register_lifespan_task(tune_garbage_collection)
app.register_lifespan_task(watch_session_expiry)
app.register_lifespan_task(watch_for_redis_restarts, app=app)
app.register_lifespan_task(push.serve_forwarded_pushes, app=app)
subscribe_states()

app.add_page(home_page, route="/", title="chat_app", on_load=SessionState.load_user)
app.add_page(
    sign_up_page,
    route="/sign-up",
    title="Sign up · chat_app",
    on_load=[AuthFormState.clear_errors, SessionState.leave_if_signed_in],
)
app.add_page(
    sign_in_page,
    route="/sign-in",
    title="Sign in · chat_app",
    on_load=[AuthFormState.clear_errors, SessionState.leave_if_signed_in],
)
app.add_page(
    messages_page,
    route="/messages",
    title="Messages · chat_app",
    on_load=[SessionState.require_sign_in, ThreadState.close, InboxState.load],
)
app.add_page(
    thread_page,
    route="/messages/[conversation_id]",
    title="Messages · chat_app",
    on_load=[SessionState.require_sign_in, InboxState.load, ThreadState.open],
)
app.add_page(
    account_page,
    route="/account",
    title="Account · chat_app",
    on_load=[SessionState.require_sign_in, AccountState.load],
)
