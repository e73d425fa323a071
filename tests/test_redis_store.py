"""WriteBatch: a delivery's Redis writes as one script call."""

import pytest

from webapp.core.redis_store import WriteBatch


def test_a_write_batch_applies_every_write_in_order(app):
    client = app.extensions["redis"]
    client.rpush("batch:list", "old")
    batch = WriteBatch(client)
    batch.lpush("batch:list", "a").lpush("batch:list", "b", "c").ltrim("batch:list", 0, 2)
    batch.expire("batch:list", 100)
    batch.hset("batch:hash", "name", "héllo ✓").hincrby("batch:hash", "count", 3).hincrby("batch:hash", "count", 1)
    batch.hincrbyfloat("batch:hash", "sum", 0.25)
    batch.execute()
    assert client.lrange("batch:list", 0, -1) == [b"c", b"b", b"a"]
    assert 0 < client.ttl("batch:list") <= 100
    assert client.hgetall("batch:hash") == {b"name": "héllo ✓".encode(), b"count": b"4", b"sum": b"0.25"}


def test_a_write_batch_is_one_command_and_can_be_reused(app):
    client = app.extensions["redis"]
    WriteBatch(client).hincrby("batch:counts", "warm-up", 1).execute()  # the server has the script from here on
    sent = []
    original = client.execute_command

    def counted(*args, **kwargs):
        sent.append(args[0])
        return original(*args, **kwargs)

    client.execute_command = counted
    try:
        batch = WriteBatch(client)
        for value in range(5):
            batch.hincrby("batch:counts", f"field{value}", value)
        batch.execute()
        batch.execute()  # nothing left to send: no command
        batch.hincrby("batch:counts", "field4", 1).execute()
    finally:
        del client.execute_command
    assert sent == ["EVALSHA", "EVALSHA"]
    assert client.hget("batch:counts", "field4") == b"5"


def test_a_failing_write_applies_none_after_it_and_raises(app):
    """A wrong-type key makes the script raise: the caller sees the error, as with a pipeline."""
    import redis

    client = app.extensions["redis"]
    client.set("batch:string", "x")
    with pytest.raises(redis.ResponseError):
        WriteBatch(client).hincrby("batch:before", "n", 1).lpush("batch:string", "y").hincrby("batch:after", "n", 1).execute()
    assert client.get("batch:string") == b"x"
    assert client.hget("batch:after", "n") is None
