"""A delivery holds no database connection while it waits for the receiver (hundreds may be in flight)."""

from werkzeug import Response

from tests.lifecycle import pager, send  # noqa: F401  (fixture)
from webapp.core.extensions import db


def test_no_database_connection_is_held_while_the_receiver_answers(app, pager, receiver, run_worker):
    checked_out = []

    def answer(request):
        with app.app_context():
            checked_out.append(db.engine.pool.checkedout())
        return Response("ok")

    receiver.server.expect_request("/hook", method="POST").respond_with_handler(answer)
    send(app, pager, 3)
    run_worker()
    assert checked_out == [0, 0, 0]
