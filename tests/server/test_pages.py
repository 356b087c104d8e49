"""The pages' shared pieces: how a thread's events are shown, and what of them is hidden."""

from threadloom import Event, Runtime, Thread
from threadloom.server._pages import timeline
from threadloom.server._redaction import Redaction

LEAK = "sk-live-9f8e7d6c5b4a"


def test_a_secret_found_in_one_event_is_hidden_in_every_other() -> None:
    # The model's context hides it everywhere; the timeline of an answer link or the inbox must too.
    thread = Thread.start("user_input", {"text": "rotate it", "api_key": LEAK}, agent="ops")
    thread = thread.append(Event("slack_message", {"text": f"fyi {LEAK} is in the vault too"}))
    thread = thread.append(Event("note_rotation", {"old": LEAK}))
    runtime = Runtime(store="memory://")
    shown = timeline(thread, Redaction.of(runtime, thread))
    assert [v.event.type for v in shown] == ["user_input", "slack_message", "note_rotation"]
    assert all(LEAK not in v.summary and LEAK not in v.detail for v in shown)
    assert "fyi [REDACTED] is in the vault too" in shown[1].summary


def test_a_thread_without_secrets_is_shown_as_it_is() -> None:
    thread = Thread.start("user_input", {"text": "deploy v1.2.3"}, agent="ops")
    [view] = timeline(thread, Redaction.of(Runtime(store="memory://"), thread))
    assert view.summary == "deploy v1.2.3" and '"text": "deploy v1.2.3"' in view.detail
