"""Loopback SIP peers for the demo and end-to-end tests: kamailio as registrar/proxy, baresip as the subscriber's
phone (Debian packages `kamailio`, `baresip`).

Both run in their own process groups (duebot.processes) and are always stopped with `stop`.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from duebot.processes import RunningService, ServiceSpec, free_port, start, stop, wait_ready

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias=127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (is_method("INVITE|SUBSCRIBE")) {{ record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""

BARESIP_CONFIG = """poll_method epoll
sip_listen 127.0.0.1:{sip_port}
net_interface 127.0.0.1
dns_server 127.0.0.1:53
audio_player aubridge,nowhere
audio_source aufile,{source}
audio_alert aubridge,nowhere
ausrc_srate 8000
auplay_srate 8000
ausrc_channels 1
auplay_channels 1
rtp_ports {rtp_low}-{rtp_high}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
snd_path {record_dir}
"""


def _udp_sip_ready(port: int) -> bool:
    """kamailio answers an OPTIONS ping (404 or 200: any SIP reply means it is up)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{time.time_ns()}\r\n"
               f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\nCall-ID: {time.time_ns()}@probe\r\n"
               "CSeq: 1 OPTIONS\r\nMax-Forwards: 5\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(msg.encode(), ("127.0.0.1", port))
        return sock.recv(4096).startswith(b"SIP/2.0")


def start_kamailio(workdir: Path) -> tuple[RunningService, int]:
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port))
    (workdir / "run").mkdir(exist_ok=True)
    spec = ServiceSpec("kamailio", ["kamailio", "-f", str(cfg), "-DD", "-E", "-Y", str(workdir / "run"),
                                    "-w", str(workdir)], workdir / "kamailio.log", lambda: _udp_sip_ready(port),
                       ready_timeout=15)
    service = start(spec)
    try:
        wait_ready(service, poll=0.1)
    except Exception:
        stop(service)
        raise
    return service, port


class Baresip:
    """The subscriber's phone: plays `source` (8 kHz mono WAV) into the call, records what it hears."""

    def __init__(self, workdir: Path, registrar_port: int, source: Path, user: str = "phone",
                 auto_answer: bool = False) -> None:
        self.dir = workdir / f"baresip-{user}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record_dir = self.dir / "recordings"
        self.record_dir.mkdir(exist_ok=True)
        self.ctrl_port = free_port()
        rtp = free_port() // 2 * 2
        (self.dir / "config").write_text(BARESIP_CONFIG.format(
            sip_port=free_port(), source=source, rtp_low=rtp, rtp_high=rtp + 40, ctrl_port=self.ctrl_port,
            record_dir=self.record_dir))
        answer = ";answermode=auto" if auto_answer else ""
        (self.dir / "accounts").write_text(
            f"<sip:{user}@127.0.0.1:{registrar_port}>;auth_pass=none;regint=600{answer};audio_codecs=PCMU\n")
        (self.dir / "contacts").write_text("")
        self.service: RunningService | None = None
        self.events: list[dict] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def start(self) -> None:
        spec = ServiceSpec("baresip", ["baresip", "-f", str(self.dir)], self.dir / "baresip.log",
                           self._ctrl_ready, ready_timeout=15)
        self.service = start(spec)
        wait_ready(self.service, poll=0.1)

    def _ctrl_ready(self) -> bool:
        self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
        return True

    def wait_registered(self, timeout: float = 10.0) -> None:
        # REGISTER_OK may fire before the control connection exists: the log line is the reliable sign.
        deadline = time.monotonic() + timeout
        while "200 OK" not in (self.dir / "baresip.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"baresip did not register; see {self.dir / 'baresip.log'}")
            time.sleep(0.05)

    def command(self, command: str, params: str = "") -> None:
        assert self._sock is not None
        data = json.dumps({"command": command, "params": params, "token": str(time.time_ns())}).encode()
        self._sock.sendall(f"{len(data)}:".encode() + data + b",")

    def poll(self, wait: float = 0.05) -> list[dict]:
        """Read pending netstring messages (events and responses) without blocking long."""
        assert self._sock is not None
        self._sock.settimeout(wait)
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                self._buf += chunk
        except (TimeoutError, BlockingIOError):
            pass
        new: list[dict] = []
        while b":" in self._buf:
            head, _, rest = self._buf.partition(b":")
            size = int(head)
            if len(rest) < size + 1:
                break
            new.append(json.loads(rest[:size]))
            self._buf = rest[size + 1:]
        self.events.extend(new)
        return new

    def wait_event(self, kind: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in [*self.events, *self.poll(0.1)]:
                if event.get("type") == kind:
                    return event
        raise TimeoutError(f"baresip: no {kind} event; log in {self.dir / 'baresip.log'}")

    def recording(self) -> Path:
        """What the phone heard (sndfile's decoder-side dump)."""
        files = sorted(self.record_dir.glob("dump-*-dec.wav"))
        assert files, f"no recording in {self.record_dir}"
        return files[-1]

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        if self.service is not None:
            stop(self.service, grace=3)
