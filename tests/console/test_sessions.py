"""console/sessions.py: the signed session cookie and the login limit, on a fake clock."""

from __future__ import annotations

from kktmon.console.sessions import LoginLimiter, Sessions, limit_keys, new_session


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_cookie_reads_back_as_its_session() -> None:
    clock = Clock()
    sessions = Sessions(b"k" * 32, clock=clock)
    session = new_session("ivanov", clock())
    assert sessions.load(sessions.dump(session)) == session


def test_a_changed_or_foreign_cookie_is_no_session() -> None:
    clock = Clock()
    ours, theirs = Sessions(b"k" * 32, clock=clock), Sessions(b"x" * 32, clock=clock)
    cookie = ours.dump(new_session("acme-it", clock()))
    body, mac = cookie.split(".")
    engineer = ours.dump(new_session("ivanov", clock())).split(".")[0]
    for forged in (
        f"{engineer}.{mac}",  # another body under this signature
        f"{body}.{mac[:-2]}AA",
        body,
        "",
        "a.b.c",
        theirs.dump(new_session("ivanov", clock())),
    ):
        assert ours.load(forged) is None, forged
    assert ours.load(None) is None


def test_a_session_expires_after_max_age() -> None:
    clock = Clock()
    sessions = Sessions(b"k" * 32, max_age_s=3600, clock=clock)
    cookie = sessions.dump(new_session("ivanov", clock()))
    clock.now += 3599
    assert sessions.load(cookie) is not None
    clock.now += 2
    assert sessions.load(cookie) is None


def test_logout_revokes_the_session_but_not_others() -> None:
    clock = Clock()
    sessions = Sessions(b"k" * 32, clock=clock)
    mine, other = new_session("ivanov", clock()), new_session("ivanov", clock())
    sessions.revoke(mine)
    assert sessions.load(sessions.dump(mine)) is None
    assert sessions.load(sessions.dump(other)) == other


def test_random_secrets_differ_per_start() -> None:
    clock = Clock()
    cookie = Sessions(clock=clock).dump(new_session("ivanov", clock()))
    assert Sessions(clock=clock).load(cookie) is None


def test_five_failures_block_for_the_rest_of_the_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=5, window_s=300, clock=clock)
    keys = limit_keys("ivanov", "10.0.0.5")
    for _ in range(4):
        limiter.failed(keys)
        clock.now += 10
    assert limiter.retry_after(keys) is None
    limiter.failed(keys)  # the fifth, 40 s after the first
    assert limiter.retry_after(keys) == 260
    clock.now += 259
    assert limiter.retry_after(keys) == 1
    clock.now += 1
    assert limiter.retry_after(keys) is None  # the first failure left the window


def test_the_user_and_the_address_are_counted_apart() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=2, window_s=60, clock=clock)
    limiter.failed(limit_keys("ivanov", "10.0.0.1"))
    limiter.failed(limit_keys("ivanov", "10.0.0.2"))
    assert limiter.retry_after(limit_keys("ivanov", "10.0.0.3")) == 60  # the user
    assert limiter.retry_after(limit_keys("petrov", "10.0.0.3")) is None
    limiter.failed(limit_keys("a", "10.0.0.9"))
    limiter.failed(limit_keys("b", "10.0.0.9"))
    assert limiter.retry_after(limit_keys("c", "10.0.0.9")) == 60  # the address


def test_success_clears_the_users_count_only() -> None:
    clock = Clock()
    limiter = LoginLimiter(failures=2, window_s=60, clock=clock)
    keys = limit_keys("Ivanov", "10.0.0.1")
    limiter.failed(keys)
    limiter.succeeded(keys[0])
    limiter.failed(limit_keys("ivanov", "10.0.0.2"))
    assert limiter.retry_after(limit_keys("ivanov", "10.0.0.3")) is None
    limiter.failed(limit_keys("x", "10.0.0.1"))
    assert limiter.retry_after(limit_keys("y", "10.0.0.1")) == 60


def test_made_up_names_cannot_fill_the_memory() -> None:
    limiter = LoginLimiter(max_keys=100, clock=Clock())
    for n in range(1000):
        limiter.failed(limit_keys(f"user{n}", "10.0.0.1"))
    assert len(limiter._seen) <= 100
