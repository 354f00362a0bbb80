"""The peer the memory bench measures the exporter against: a Python exporter written the
usual way with prometheus_client, polling the same OurPool workers endpoint and serving two
series a worker (hashrate and up), like the exporter's worker_series = "essential".

Arguments: the workers URL (token included), the port to serve on, the poll interval in
seconds. It counts its polls in peer_polls_total so the bench knows when each one is done.
"""

import json
import sys
import time
import urllib.request

from prometheus_client import Counter, Gauge, start_http_server

LABELS = ["pool", "source", "account", "worker"]


def main():
    url, port, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    account = url.split("/accounts/")[1].split("/")[0]
    hashrate = Gauge(
        "ourpool_worker_hashrate_hashes_per_second",
        "Worker hashrate over the last hour.",
        LABELS,
    )
    up = Gauge("ourpool_worker_up", "1 if the pool counts the worker online.", LABELS)
    polls = Counter("peer_polls", "Polls finished.")
    start_http_server(port, addr="127.0.0.1")
    shown = set()
    while True:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                workers = json.load(answer)["workers"]
            seen = set()
            for name, worker in workers.items():
                labels = ("ourpool", "bench", account, name)
                hashrate.labels(*labels).set(float(worker["hashrate1h"]))
                up.labels(*labels).set(1.0 if worker["status"] == "online" else 0.0)
                seen.add(labels)
            # A worker the pool stopped listing leaves the page, as it does the exporter's.
            for labels in shown - seen:
                hashrate.remove(*labels)
                up.remove(*labels)
            shown = seen
            del workers
        except Exception as error:  # noqa: BLE001 - a failed poll is retried, as ours are
            print(f"peer poll failed: {error}", file=sys.stderr)
        polls.inc()
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
