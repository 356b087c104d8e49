from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadloom import Event, Thread
from threadloom.server._links import AnswerToken, BadToken, answer_url, read_token, sign_token

SECRET = b"s" * 32
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_signed_token_reads_back() -> None:
    token = AnswerToken("th_1", "ev_1", LATER)
    assert read_token(SECRET, sign_token(SECRET, token), now=LATER - timedelta(seconds=1)) == token


def test_an_expired_token_is_refused() -> None:
    text = sign_token(SECRET, AnswerToken("th_1", "ev_1", LATER))
    with pytest.raises(BadToken, match="expired"):
        read_token(SECRET, text, now=LATER)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    text = sign_token(b"other" * 8, AnswerToken("th_1", "ev_1", LATER))
    with pytest.raises(BadToken, match="not valid"):
        read_token(SECRET, text, now=LATER - timedelta(days=1))


@given(st.text(max_size=200))
def test_no_text_but_a_signed_token_is_accepted(text: str) -> None:
    with pytest.raises(BadToken):
        read_token(SECRET, text)


@given(st.integers(min_value=0, max_value=200), st.characters(codec="ascii"))
def test_changing_any_character_of_a_token_breaks_it(position: int, character: str) -> None:
    text = sign_token(SECRET, AnswerToken("th_1", "ev_1", LATER))
    position %= len(text)
    if text[position] == character:
        return
    changed = text[:position] + character + text[position + 1 :]
    with pytest.raises(BadToken):
        read_token(SECRET, changed, now=LATER - timedelta(days=1))


def test_the_link_of_a_pending_request_is_the_same_every_time_and_none_when_nothing_waits() -> None:
    thread = Thread.start("user_input", "hi")
    assert answer_url("http://x", SECRET, thread, timedelta(days=1)) is None
    asked = thread.append(Event("request_human_input", {"question": "which tag?"}))
    link = answer_url("http://x/", SECRET, asked, timedelta(days=1))
    assert link is not None and link == answer_url("http://x", SECRET, asked, timedelta(days=1))
    token = read_token(SECRET, link.rsplit("/", 1)[1], now=asked.events[-1].at)
    assert (token.thread_id, token.event_id) == (asked.id, asked.events[-1].id)
    assert token.expires == (asked.events[-1].at + timedelta(days=1)).replace(microsecond=0)


def test_once_the_link_has_expired_a_look_gives_a_new_one_good_for_another_ttl() -> None:
    asked = Thread.start("user_input", "hi").append(Event("request_human_input", {"question": "which tag?"}))
    made = asked.events[-1].at
    later = made + timedelta(days=2)  # the first link, good for a day, has expired
    old = answer_url("http://x", SECRET, asked, timedelta(days=1), now=made)
    new = answer_url("http://x", SECRET, asked, timedelta(days=1), now=later)
    assert old is not None and new is not None and new != old
    with pytest.raises(BadToken, match="expired"):
        read_token(SECRET, old.rsplit("/", 1)[1], now=later)
    token = read_token(SECRET, new.rsplit("/", 1)[1], now=later)
    assert token.event_id == asked.events[-1].id and token.expires == (later + timedelta(days=1)).replace(microsecond=0)


@given(st.text(min_size=1, max_size=40).filter(lambda text: not text.isascii()))
def test_a_token_with_characters_beyond_ascii_is_refused_as_any_other(mac: str) -> None:
    # hmac.compare_digest raises TypeError on a str that is not ASCII; the link's route answered 500.
    body = sign_token(SECRET, AnswerToken("th_1", "ev_1", LATER)).split(".")[1]
    with pytest.raises(BadToken, match="not valid"):
        read_token(SECRET, f"a1.{body}.{mac}")
