"""The embedded broker (make run without Redis): a worker reading the queue folder while beat and
the web process write to it never sees half a message (kombu's own transport let it read an empty
file, and the worker died on JSONDecodeError, taking `make run` down with it)."""
import threading

from kombu import Connection

from cxinbox.broker import FileTransport


def test_messages_written_while_a_worker_drains_arrive_whole(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    sent, received, errors = 600, [], []

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
