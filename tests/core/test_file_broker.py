"""The embedded broker (make run without Redis): a worker reading the queue folder while beat and
the web process write to it never sees half a message (kombu's own transport let it read an empty
file, and the worker died on JSONDecodeError, taking `make run` down with it)."""
import threading

from kombu import Connection

from cxinbox.broker import FileTransport


def test_messages_written_while_a_worker_drains_arrive_whole(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False,
               "control_folder": str(tmp_path / "control")}
    sent, received, errors = 600, [], []
    with Connection(transport=FileTransport, transport_options=options) as conn:
        # The worker declares its queues when it starts, long before anything is sent (threads
        # of one process share kombu's binding state, so a writer here would not bind again).
        conn.SimpleQueue("tasks").close()

    def write(offset):
        with Connection(transport=FileTransport, transport_options=options) as conn:
            q = conn.SimpleQueue("tasks")
            for i in range(offset, sent, 3):
                q.put({"n": i, "pad": "x" * 2000})
            q.close()

    def drain():
        with Connection(transport=FileTransport, transport_options=options) as conn:
            q = conn.SimpleQueue("tasks")
            while len(received) < sent:
                try:
                    message = q.get(timeout=10)
                except q.Empty:
                    errors.append("timed out")
                    return
                except Exception as exc:  # noqa: BLE001 - what killed the worker
                    errors.append(repr(exc))
                    return
                received.append(message.payload["n"])
                message.ack()
            q.close()

    threads = [threading.Thread(target=drain)] + [threading.Thread(target=write, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(received) == list(range(sent))
    assert list(folder.iterdir()) == []


def test_queues_bound_at_the_same_time_are_all_kept_and_never_read_half_written(tmp_path):
    """Web, beat and worker processes bind and publish at once: kombu truncated the exchange
    table before writing it, so a publisher read an empty table (JSONDecodeError, CI of stop
    29), and two first binds could overwrite each other's queue."""
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path / "control")}
    queues, errors = sorted(f"q{k}" for k in range(12)), []

    def bind_and_read(queue):
        with Connection(transport=FileTransport, transport_options=options) as conn:
            channel = conn.default_channel
            try:
                channel._queue_bind("celery", queue, "", queue)
                for _ in range(200):
                    channel.get_table("celery")
            except Exception as exc:  # noqa: BLE001 - what a publisher would die on
                errors.append(repr(exc))

    threads = [threading.Thread(target=bind_and_read, args=(q,)) for q in queues]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Connection(transport=FileTransport, transport_options=options) as conn:
        assert sorted(b.queue for b in conn.default_channel.get_table("celery")) == queues
