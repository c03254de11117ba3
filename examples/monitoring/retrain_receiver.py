#!/usr/bin/env python3
"""A retraining trigger: receives the monitor's Alertmanager webhooks and starts one
retraining job per new firing alert.

    python3 retrain_receiver.py --port 9095 --command './retrain.sh'

Each job gets the alert's facts in its environment (MODELPLANE_MODEL, MODELPLANE_VERSION,
MODELPLANE_ENDPOINT, MODELPLANE_ALERT, MODELPLANE_VALUE, MODELPLANE_THRESHOLD, …) and is
also written as one JSON line to --log and to stdout. Alertmanager repeats notifications
(`repeat_interval`) and sends one per change of a group; a job starts once per alert
occurrence (its fingerprint and start time). A CI system does the same with its own
trigger: GitHub's repository_dispatch, a GitLab pipeline trigger, a Jenkins build URL.

Python's standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def jobs(payload, wanted, seen):
    """The new retraining jobs in one Alertmanager webhook payload (version 4)."""
    out = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        annotations = alert.get("annotations", {})
        if alert.get("status") != "firing":
            continue
        if wanted and labels.get("alertname") not in wanted:
            continue
        key = (alert.get("fingerprint"), alert.get("startsAt"))
        if key in seen:
            continue
        seen.add(key)
        out.append({
            "model": labels.get("model"),
            "version": labels.get("version"),
            "endpoint": labels.get("endpoint"),
            "endpoint_id": labels.get("endpoint_id"),
            "alert": labels.get("alertname"),
            "severity": labels.get("severity"),
            "feature": labels.get("feature"),
            "variant": labels.get("variant"),
            "value": annotations.get("value"),
            "threshold": annotations.get("threshold"),
            "summary": annotations.get("summary"),
            "starts_at": alert.get("startsAt"),
        })
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9095)
    p.add_argument("--alerts", default="drift,quality", help="alert names that trigger retraining (comma-separated; empty: all)")
    p.add_argument("--command", help="shell command to start per job (default: only log it)")
    p.add_argument("--log", help="file to append one JSON line per job to")
    args = p.parse_args()
    wanted = {a for a in args.alerts.split(",") if a}
    seen = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                length = int(self.headers.get("content-length", 0))
                payload = json.loads(self.rfile.read(length))
            except (ValueError, json.JSONDecodeError) as e:
                self.send_error(400, f"not an Alertmanager webhook payload: {e}")
                return
            with lock:
                new = jobs(payload, wanted, seen)
                for job in new:
                    line = json.dumps(job, sort_keys=True)
                    print(line, flush=True)
                    if args.log:
                        with open(args.log, "a") as f:
                            f.write(line + "\n")
                    if args.command:
                        env = dict(os.environ)
                        env.update({f"MODELPLANE_{k.upper()}": str(v) for k, v in job.items() if v is not None})
                        subprocess.Popen(args.command, shell=True, env=env)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, fmt, *a):
            sys.stderr.write("retrain_receiver: " + fmt % a + "\n")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"retrain_receiver: listening on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
