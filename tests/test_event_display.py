"""What the event page makes of events an SDK (or anyone with the DSN) may send: odd shapes never break it."""

from webapp.alerts.event_display import display_event


def test_malformed_parts_are_skipped_not_fatal():
    display = display_event({
        "exception": {"values": [
            {"type": "E", "stacktrace": "not a dict", "mechanism": ["no"]},
            {"type": None, "value": 3, "stacktrace": {"frames": [None, 5, {"lineno": "12", "context_line": 7},
                                                               {"function": "f", "lineno": 3, "context_line": "x",
                                                                "pre_context": ["a", None], "vars": ["v"]}]}},
        ]},
        "breadcrumbs": [{"timestamp": "yesterday", "message": None, "data": {"k": "v"}}, "crumb"],
        "tags": {"a": 1, "b": None},
        "contexts": {"os": "Linux", "runtime": {"name": "CPython"}},
        "request": {"headers": [["Host", "x"], ["bad"]], "query_string": [["q", "1"]]},
        "user": "not a dict",
    })
    main, cause = display.exceptions
    assert (main.type, main.value, cause.type) == ("Error", "3", "E")
    [run] = main.runs
    assert [frame.function for frame in run.frames] == ["f", "?"]
    assert [(line.number, line.text, line.current) for line in run.frames[0].lines] == [(2, "a", False), (3, "x", True)]
    assert run.frames[1].lines == [] and run.frames[1].location == "?"
    assert [(crumb.time, crumb.message) for crumb in display.breadcrumbs] == [(None, '{"k": "v"}')]
    assert ("a", "1") in display.tags and ("runtime", "CPython") in display.tags
    assert display.contexts == [("runtime", [("name", "CPython")])]
    assert display.request["headers"] == [("Host", "x")] and display.request["query"] == "q=1"
    assert display.user == []


def test_tags_sent_as_pairs_a_mapping_or_key_value_objects_read_the_same():
    for tags in ([["region", "eu"]], {"region": "eu"}, [{"key": "region", "value": "eu"}]):
        assert ("region", "eu") in display_event({"tags": tags}).tags
    # The SDK's tag wins over the field Sentry derives a tag from.
    assert display_event({"tags": [["level", "custom"]], "level": "error"}).tags == [("level", "custom")]


def test_tags_sentry_derives_from_the_event_join_the_clients_own():
    from webapp.alerts.eventstore import normalize_event

    event = normalize_event({
        "level": "warning", "environment": "prod", "release": "web@2", "tags": {"team": "payments", "level": "x"},
        "exception": {"values": [{"type": "TypeError", "value": "x is undefined",
                                  "mechanism": {"type": "onerror", "handled": False}}]},
        "request": {"url": "https://shop.example.com/cart?coupon=secret"},
        "contexts": {"browser": {"name": "Chrome", "version": "120.0"}, "os": {"name": "Mac OS X"},
                     "device": {"model": "MacBookPro18,1"}},
        "user": {"ip_address": "{{auto}}", "email": "ann@example.com"},
    })
    assert event["tags"] == [
        ["browser", "Chrome 120.0"], ["browser.name", "Chrome"], ["device", "MacBookPro18,1"], ["environment", "prod"],
        ["handled", "no"], ["level", "x"],  # the client's own tag wins over the derived one
        ["mechanism", "onerror"], ["os", "Mac OS X"], ["os.name", "Mac OS X"], ["release", "web@2"],
        ["team", "payments"], ["url", "https://shop.example.com/cart"], ["user", "email:ann@example.com"]]
