"""``make monitor``: Prometheus and a Pushgateway on this machine, over the project's local state.

Starts, on 127.0.0.1:

* a Pushgateway (``:9091``): runs push there when ``SLIPWAY_PUSHGATEWAY_URL=http://localhost:9091``;
* a tiny exporter (``:9101``) serving the textfile metrics in ``SLIPWAY_METRICS_DIR`` (what the
  steps write when no Pushgateway is configured), as node_exporter's textfile collector would;
* Prometheus (``:9090``) scraping both every 5 s, with Slipway's alert rules loaded.

Data lives in ``.slipway/monitoring/``. Stop with Ctrl-C (every process started is stopped).
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from slipway.metrics import read_textfiles

ROOT = Path(__file__).resolve().parents[1]


def serve_textfiles(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = read_textfiles(folder).encode() if folder.is_dir() else b""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def prometheus_config(pushgateway_port: int, textfile_port: int) -> dict:
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(ROOT / "monitoring" / "rules" / "slipway.yml")],
        "scrape_configs": [
            {
                "job_name": "slipway-pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{pushgateway_port}"]}],
            },
            {
                "job_name": "slipway-textfile",
                "honor_labels": True,
                "static_configs": [{"targets": [f"127.0.0.1:{textfile_port}"]}],
            },
        ],
    }


def wait_ready(url: str, process: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"error: {what} exited with code {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"error: {what} did not become ready at {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", default=str(ROOT / ".slipway" / "monitoring"), help="data folder")
    parser.add_argument("--textfile-dir", default=os.environ.get("SLIPWAY_METRICS_DIR", ".slipway/metrics"))
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--pushgateway-port", type=int, default=9091)
    parser.add_argument("--textfile-port", type=int, default=9101)
    args = parser.parse_args(argv)
    prometheus = shutil.which("prometheus")
    pushgateway = shutil.which("prometheus-pushgateway")
    if not prometheus or not pushgateway:
        print(
            "error: prometheus and prometheus-pushgateway are needed (make install installs them)",
            file=sys.stderr,
        )
        return 1
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    (state / "prometheus.yml").write_text(
        yaml.safe_dump(prometheus_config(args.pushgateway_port, args.textfile_port))
    )
    server = serve_textfiles(Path(args.textfile_dir), args.textfile_port)
    log = (state / "monitor.log").open("ab")
    processes = [
        subprocess.Popen(
            [
                pushgateway,
                f"--web.listen-address=127.0.0.1:{args.pushgateway_port}",
                f"--persistence.file={state / 'pushgateway.data'}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                prometheus,
                f"--config.file={state / 'prometheus.yml'}",
                f"--storage.tsdb.path={state / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{args.prometheus_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
    ]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        wait_ready(f"http://127.0.0.1:{args.pushgateway_port}/-/ready", processes[0], "pushgateway")
        wait_ready(f"http://127.0.0.1:{args.prometheus_port}/-/ready", processes[1], "prometheus")
        base = f"http://localhost:{args.prometheus_port}"
        print(f"Prometheus:   {base}/graph?g0.expr=slipway_step_duration_seconds&g0.tab=0&g0.range_input=1h")
        print(f"Alerts:       {base}/alerts")
        print(
            f"Pushgateway:  http://localhost:{args.pushgateway_port} (SLIPWAY_PUSHGATEWAY_URL to push runs there)"
        )
        print(f"Textfiles:    {Path(args.textfile_dir).resolve()} served on :{args.textfile_port}")
        print("SLIPWAY_MONITOR_READY", flush=True)
        while not stopping.is_set() and all(p.poll() is None for p in processes):
            stopping.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
