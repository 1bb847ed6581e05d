"""The circuit breaker in Redis: closed → open after the threshold → half-open after reset_after (one
trial) → closed on success or open again on failure; state shared by every instance of the same name."""

import time
import uuid

import redis
from django.conf import settings

from apps.runtime.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


def a_breaker(**kwargs) -> CircuitBreaker:
    return CircuitBreaker(f"test:{uuid.uuid4().hex}", **kwargs)


def test_a_new_breaker_is_closed_and_lets_calls_through():
    breaker = a_breaker()
    assert breaker.state == CLOSED
    assert breaker.allow() is True
    assert breaker.allow() is True


def test_failures_below_the_threshold_keep_it_closed_and_a_success_resets_the_count():
    breaker = a_breaker(failure_threshold=3)
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED and breaker.failures == 2
    breaker.success()
    assert breaker.failures == 0
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED and breaker.allow()


def test_the_threshold_opens_it_and_an_open_breaker_refuses_calls():
    breaker = a_breaker(failure_threshold=3, reset_after=30)
    for _ in range(3):
        breaker.failure()
    assert breaker.state == OPEN
    assert breaker.allow() is False
    assert breaker.allow() is False


def test_after_reset_after_one_trial_goes_through_and_its_success_closes_it():
    breaker = a_breaker(failure_threshold=2, reset_after=0.3)
    breaker.failure()
    breaker.failure()
    assert breaker.allow() is False
    time.sleep(0.35)
    assert breaker.state == HALF_OPEN
    assert breaker.allow() is True  # the trial
    assert breaker.allow() is False  # everyone else waits for it
    breaker.success()
    assert breaker.state == CLOSED
    assert breaker.allow() is True and breaker.allow() is True
    assert breaker.failures == 0


def test_a_failed_trial_opens_it_again_for_another_reset_after():
    breaker = a_breaker(failure_threshold=2, reset_after=0.3)
    breaker.failure()
    breaker.failure()
    time.sleep(0.35)
    assert breaker.allow() is True
    breaker.failure()
    assert breaker.state == OPEN
    assert breaker.allow() is False
    time.sleep(0.35)
    assert breaker.state == HALF_OPEN
    assert breaker.allow() is True


def test_a_trial_that_never_reports_frees_its_slot_after_reset_after():
    breaker = a_breaker(failure_threshold=1, reset_after=0.3)
    breaker.failure()
    time.sleep(0.35)
    assert breaker.allow() is True
    assert breaker.allow() is False
    time.sleep(0.35)
    assert breaker.allow() is True


def test_state_is_shared_by_name_and_kept_under_the_namespaced_key():
    name = f"outbound:client_x:{uuid.uuid4().hex}.example"
    first = CircuitBreaker(name, failure_threshold=2)
    second = CircuitBreaker(name, failure_threshold=2)
    other = CircuitBreaker(name + ".other", failure_threshold=2)
    first.failure()
    second.failure()
    assert first.state == second.state == OPEN
    assert other.state == CLOSED and other.allow()
    assert redis.Redis.from_url(settings.REDIS_URL).exists(f"triplane:breaker:{name}")
    second.success()
    assert first.state == CLOSED


def test_with_redis_unreachable_calls_are_let_through():
    breaker = CircuitBreaker(f"test:{uuid.uuid4().hex}", url="redis://127.0.0.1:1/0", failure_threshold=1)
    breaker.failure()
    assert breaker.allow() is True
    assert breaker.state == CLOSED
