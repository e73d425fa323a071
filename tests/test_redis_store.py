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


def test_held_writes_wait_until_a_write_that_is_not_held_and_then_go_first(app):
    """In a batch a prompt success's records are held back; the next write that is not held sends them first."""
    from webapp.core.redis_store import holding_writes

    client = app.extensions["redis"]
    with holding_writes(client) as held:
        WriteBatch(client).lpush("held:log", "first").hincrby("held:health", "ok", 1).execute(defer=True)
        WriteBatch(client).lpush("held:log", "second").hincrby("held:health", "ok", 1).execute(defer=True)
        assert client.lrange("held:log", 0, -1) == [] and client.hgetall("held:health") == {}
        WriteBatch(client).hincrby("held:health", "error", 1).lpush("held:log", "third").execute()
        assert client.lrange("held:log", 0, -1) == [b"third", b"second", b"first"]
        assert client.hgetall("held:health") == {b"ok": b"2", b"error": b"1"}
        WriteBatch(client).lpush("held:log", "fourth").execute(defer=True)
    assert client.llen("held:log") == 3  # still held: whoever holds them sends them
    batch = held.take_all()
    assert held.take_all() is None
    batch.client_call()
    assert client.lrange("held:log", 0, 0) == [b"fourth"]


def test_outside_a_hold_a_deferred_write_is_sent_at_once(app):
    client = app.extensions["redis"]
    WriteBatch(client).lpush("held:alone", "now").execute(defer=True)
    assert client.lrange("held:alone", 0, -1) == [b"now"]


def test_held_writes_fold_into_fewer_commands_with_the_same_effect(app):
    """A chunk's records fold (pushes joined, increments added, a field set again kept once): same end state."""
    from webapp.core.redis_store import holding_writes

    client = app.extensions["redis"]

    def records(batch, n):
        batch.lpush("fold:log", f"entry {n}").ltrim("fold:log", 0, 2).expire("fold:log", 100)
        batch.hincrby("fold:metrics", "ok", 1).hincrbyfloat("fold:metrics", "seconds", 0.1)
        batch.hset("fold:last", "app", f"date {n}").zadd("fold:done", n, f"msg {n}")
        return batch

    for n in range(5):  # the reference: one call each, in order
        records(WriteBatch(client), n).execute()
    expected = {key: client.dump(key) for key in ("fold:log", "fold:metrics", "fold:last", "fold:done")}
    reference = (client.lrange("fold:log", 0, -1), client.hgetall("fold:metrics"), client.hgetall("fold:last"),
                 client.zrange("fold:done", 0, -1, withscores=True))
    client.delete(*expected)

    with holding_writes(client) as held:
        for n in range(5):
            records(WriteBatch(client), n).execute(defer=True)
        batch = held.take_all()
    commands = [write[0] for write in batch.writes]
    assert commands.count("LPUSH") == 1 and commands.count("LTRIM") == 1 and commands.count("HINCRBY") == 1
    assert commands.count("ZADD") == 5 and commands.count("HINCRBYFLOAT") == 5  # not folded
    batch.client_call()
    folded = (client.lrange("fold:log", 0, -1), client.hgetall("fold:metrics"), client.hgetall("fold:last"),
              client.zrange("fold:done", 0, -1, withscores=True))
    assert folded[0] == reference[0] == [b"entry 4", b"entry 3", b"entry 2"]
    assert folded[1][b"ok"] == reference[1][b"ok"] == b"5" and folded[2] == reference[2] == {b"app": b"date 4"}
    assert float(folded[1][b"seconds"]) == pytest.approx(float(reference[1][b"seconds"]))
    assert folded[3] == reference[3]
