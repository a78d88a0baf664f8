"""Logs into a running ``watchkeeper serve`` from real senders: util-linux ``logger`` over UDP and
TCP (RFC 5424 and RFC 3164, octet counting and newline framing), the OpenTelemetry SDK's OTLP/HTTP
log exporter, and a followed file rotated by rename (logrotate-style) with a restart in between;
hostile frames are counted and dead-lettered while every listener stays alive. Polls with deadlines,
never times."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from conftest import need
from e2e.servers import HOST, Servers, WatchkeeperServer, http, start_watchkeeper, wait_until


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def logger(*args: str) -> None:
    binary = shutil.which("logger")
    need(binary is not None, "logger is missing (apt-get install bsdutils)")
    assert binary is not None
    subprocess.run([binary, *args], check=True, timeout=30)


def templates(wk: WatchkeeperServer, client: httpx.Client, service: str) -> dict[str, int]:
    got = client.get(f"{wk.url}/api/v1/logs/templates", params={"service": service}, headers=wk.headers("viewer"))
    got.raise_for_status()
    return {t["template"]: t["count"] for t in got.json()}


def bad_frames(wk: WatchkeeperServer, client: httpx.Client, name: str) -> float:
    for line in client.get(f"{wk.url}/metrics").text.splitlines():
        if line.startswith("watchkeeper_log_bad_frames_total") and f'input="{name}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def serve(servers: Servers, workdir: Path, config: dict[str, Any]) -> WatchkeeperServer:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "watchkeeper.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return start_watchkeeper(servers, workdir, roles=("ingest", "viewer", "admin"),
                             env={"WATCHKEEPER_CONFIG": str(path)})


def test_logger_over_udp_and_tcp_and_hostile_frames(tmp_path: Path) -> None:
    udp, tcp = free_udp_port(), free_tcp_port()
    config = {"logs": {"syslog": {"udp": f"{HOST}:{udp}", "tcp": f"{HOST}:{tcp}", "max_connections": 8},
                       "max_line_bytes": 4096}}
    with Servers() as servers, http() as client:
        wk = serve(servers, tmp_path / "wk", config)
        for n in range(3):
            logger("--server", HOST, "--port", str(udp), "--udp", "--rfc5424", "-t", "udpapp", f"udp5424 message {n}")
            logger("--server", HOST, "--port", str(udp), "--udp", "--rfc3164", "-t", "udpapp", f"udp3164 message {n}")
            logger("--server", HOST, "--port", str(tcp), "--tcp", "--rfc5424", "--octet-count", "-t", "tcpapp",
                   f"tcp octet message {n}")
            logger("--server", HOST, "--port", str(tcp), "--tcp", "--rfc3164", "-t", "tcpapp", f"tcp newline message {n}")
        # (the miner may merge the two wordings into one template: the lines are what count)
        wait_until(lambda: sum(templates(wk, client, "udpapp").values()) == 6, what="logger's UDP messages",
                   servers=servers)
        wait_until(lambda: sum(templates(wk, client, "tcpapp").values()) == 6, what="logger's TCP messages",
                   servers=servers)

        # hostile frames: invalid UTF-8 and an oversized datagram over UDP; a bad octet count over TCP
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<13>1 - h hostile - - - caf\xe9", (HOST, udp))
            s.sendto(b"<13>" + b"x" * 5000, (HOST, udp))
        with socket.create_connection((HOST, tcp), timeout=10) as s:
            s.sendall(b"99999999 <13>never")
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            assert s.recv(10) == b""  # the server closed this connection
        wait_until(lambda: bad_frames(wk, client, "syslog-udp") >= 2, what="UDP bad frames counted", servers=servers)
        wait_until(lambda: bad_frames(wk, client, "syslog-tcp") >= 1, what="TCP bad frames counted", servers=servers)
        letters = client.get(f"{wk.url}/api/v1/deadletters", headers=wk.headers("admin")).json()
        assert {d["source"] for d in letters} >= {"syslog-udp", "syslog-tcp"}

        # every listener is still alive
        logger("--server", HOST, "--port", str(udp), "--udp", "--rfc5424", "-t", "udpapp", "after the storm 1")
        logger("--server", HOST, "--port", str(tcp), "--tcp", "--rfc5424", "--octet-count", "-t", "tcpapp",
               "after the storm 2")
        wait_until(lambda: sum(templates(wk, client, "udpapp").values()) == 7
                   and sum(templates(wk, client, "tcpapp").values()) == 7,
                   what="messages after the hostile frames", servers=servers)


def test_the_opentelemetry_sdk_exports_logs_to_serve(tmp_path: Path) -> None:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    with Servers() as servers, http() as client:
        wk = serve(servers, tmp_path / "wk", {})
        provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
        exporter = OTLPLogExporter(endpoint=f"{wk.url}/v1/logs", headers=wk.headers("ingest"), timeout=30)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        app_log = provider.get_logger("checkout-e2e")
        try:
            for n in range(5):
                app_log.emit(body=f"order {n} placed", severity_number=SeverityNumber.INFO, severity_text="INFO")
            app_log.emit(body="payment gateway refused card 4111", severity_number=SeverityNumber.ERROR,
                         severity_text="ERROR", attributes={"card.brand": "visa"})
            assert provider.force_flush(30_000)
        finally:
            provider.shutdown()
        found = wait_until(lambda: templates(wk, client, "checkout") or None, what="the SDK's log records",
                           servers=servers)
        assert found == {"order <*> placed": 5, "payment gateway refused card <*>": 1}

        # protobuf that is not an ExportLogsServiceRequest, and a wrong token: 4xx, the route lives on
        bad = client.post(f"{wk.url}/v1/logs", content=b"\xff\xff\xff\xff",
                          headers={**wk.headers("ingest"), "Content-Type": "application/x-protobuf"})
        assert bad.status_code == 400, bad.text
        denied = client.post(f"{wk.url}/v1/logs", content=b"", headers={"Authorization": "Bearer nope",
                                                                        "Content-Type": "application/x-protobuf"})
        assert denied.status_code == 401
        ok = client.post(f"{wk.url}/v1/logs", json={"resourceLogs": []}, headers=wk.headers("ingest"))
        assert ok.status_code == 200 and ok.json() == {}


def test_a_file_rotated_by_rename_across_a_restart_loses_and_doubles_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    config = {"logs": {"files": [{"path": str(log), "service": "billing", "from_start": True}],
                       "poll_seconds": 0.1}}
    written = 0

    def write(count: int) -> None:
        nonlocal written
        with log.open("a", encoding="utf-8") as f:
            for _ in range(count):
                written += 1
                f.write(f"invoice {written} issued\n")

    with Servers() as servers, http() as client:
        write(10)
        wk = serve(servers, tmp_path / "wk", config)

        def stored() -> int:
            return templates(wk, client, "billing").get("invoice <*> issued", 0)

        wait_until(lambda: stored() == 10, what="the first ten lines", servers=servers)
        write(5)
        log.rename(tmp_path / "app.log.1")  # logrotate's default: rename, then the app reopens
        write(5)
        wait_until(lambda: stored() == 20, what="the lines around the rotation", servers=servers)
        wk.server.stop()
        write(3)  # written while serve is down, then rotated away
        (tmp_path / "app.log.1").rename(tmp_path / "app.log.2")
        log.rename(tmp_path / "app.log.1")
        write(4)
        wk.server.start()
        wait_until(lambda: stored() == 27, what="every line once after the restart", servers=servers)
        write(1)
        wait_until(lambda: stored() == 28, what="a line after the restart", servers=servers)
        assert stored() == 28  # nothing doubled
