"""A second Python process for the FileStore tests: THREADS threads of one client on a shared token
file send requests until a wall-clock deadline, then print one JSON line of what they did.

    python store_worker.py API_URL TOKEN_URL CLIENT_ID CLIENT_SECRET TOKEN_FILE THREADS UNTIL_UNIX
"""

from __future__ import annotations

import json
import sys
import threading
import time

import tokengate


def main() -> None:
    api_url, token_url, client_id, client_secret, path, threads, until = sys.argv[1:]
    client = tokengate.Client(
        api_url,
        store=tokengate.FileStore(path),
        refresher=tokengate.OAuth2.refresh_token(
            token_url, client_id=client_id, client_secret=client_secret
        ),
    )
    counts = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def work() -> None:
        while time.time() < float(until):
            try:
                good = client.get("/item").status_code == 200
            except tokengate.TokengateError:
                good = False
            with lock:
                counts["ok" if good else "failed"] += 1

    workers = [threading.Thread(target=work) for _ in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stats = client.stats()
    counts.update(refreshes=stats.refreshes, adopted=stats.adopted, store_errors=stats.store_errors)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
