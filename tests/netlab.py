"""A small network of hosts on this machine, for tests of what crosses a network.

Each host is a network namespace with its own UTS namespace (so its own
hostname), one veth into a bridge on a private /24, and its own state folder:
no host shares a disk with another. The machine itself is the services host:
PostgreSQL, Redis and S3 listen on 127.0.0.1 only, so ``socat`` forwards the
bridge address's ports to them, which is what a routed database host looks
like from the others. Needs root, ``ip`` (iproute2), ``unshare`` and ``socat``.
"""
from __future__ import annotations

import contextlib
import html.parser
import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def missing_tools() -> str | None:
    """Why this machine can't build the lab, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "socat"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (Debian: iproute2, util-linux, socat)"
    return None


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@dataclass
class Host:
    name: str
    netns: str
    address: str
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def var_dir(self) -> Path:
        return self.root / "var"

    def start(self, args: list[str], *, env: dict[str, str], log_name: str, cwd: Path) -> subprocess.Popen[bytes]:
        """Run ``args`` on this host: in its namespaces, under its hostname, with its own state folder."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.root / log_name, "wb")  # noqa: SIM115 - the child keeps it
        wrapped = ["ip", "netns", "exec", self.netns, "unshare", "--uts", "--",
                   "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *args]
        process = subprocess.Popen(wrapped, cwd=cwd, env={**env, "ATELIER_VAR_DIR": str(self.var_dir)},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """What a host losing power looks like to the others: every process in it, at once."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


class Lab:
    """``with Lab(tmp, subnet="10.213.77") as lab: lab.add_host("web", 10)``."""

    def __init__(self, root: Path, *, subnet: str, tag: str) -> None:
        self.root, self.subnet, self.tag = root, subnet, tag
        self.bridge = f"atl{tag}br"
        self.gateway = f"{subnet}.1"
        self.hosts: dict[str, Host] = {}
        self.forwarders: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Lab:
        self._remove_leftovers()
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        return self

    def _remove_leftovers(self) -> None:
        """An interrupted run leaves its namespaces and bridge behind: this subnet is the lab's own."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for netns in (n for n in listed if re.fullmatch(r"atl\d{3}-[\w-]+", n)):
            Host(name="", netns=netns, address="", root=self.root).kill_all()
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "to", f"{self.subnet}.0/24"],
                               capture_output=True, text=True).stdout
        for line in shown.splitlines():
            subprocess.run(["ip", "link", "del", line.split()[1]], capture_output=True)

    def add_host(self, name: str, last_octet: int) -> Host:
        netns = f"atl{self.tag}-{name}"
        host_if, peer_if = f"atl{self.tag}{last_octet}", f"atl{self.tag}{last_octet}p"
        address = f"{self.subnet}.{last_octet}"
        _run("ip", "netns", "add", netns)
        _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        _run("ip", "link", "set", host_if, "master", self.bridge)
        _run("ip", "link", "set", host_if, "up")
        _run("ip", "link", "set", peer_if, "netns", netns)
        ns = ("ip", "netns", "exec", netns)
        _run(*ns, "ip", "link", "set", peer_if, "name", "eth0")
        _run(*ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        _run(*ns, "ip", "link", "set", "eth0", "up")
        _run(*ns, "ip", "link", "set", "lo", "up")
        _run(*ns, "ip", "route", "add", "default", "via", self.gateway)
        host = Host(name=name, netns=netns, address=address, root=self.root / name)
        host.root.mkdir(parents=True, exist_ok=True)
        self.hosts[name] = host
        return host

    def forward(self, port: int, *, to_port: int | None = None) -> None:
        """Make 127.0.0.1:``to_port`` on this machine answer at the bridge address, port ``port``."""
        process = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind={self.gateway},fork,reuseaddr", f"TCP:127.0.0.1:{to_port or port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.forwarders.append(process)

    def __exit__(self, *exc: Any) -> None:
        for host in self.hosts.values():
            host.kill_all()
        for process in self.forwarders:  # socat and the children it forked per connection
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class _FormParser(html.parser.HTMLParser):
    """The fields of the first form whose action contains ``action``, as a browser would send them."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.done = action, False, False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done and a.get("action", "") == self.action and a.get("method", "").lower() == "post":
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button", "checkbox", "radio"):
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" in a and a.get("name"):
            self.fields[a["name"]] = a.get("value", "on")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and (self._select not in self.fields or "selected" in a):
            self.fields[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a.get("name")
            if self._textarea:
                self.fields[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self.inside and self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


class Browser:
    """An HTTP client with cookies that submits a page's form as a person would (urllib only)."""

    def __init__(self, base_url: str, *, sessionid: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        host = urllib.parse.urlsplit(base_url).hostname or ""
        self.jar.set_cookie(http.cookiejar.Cookie(
            0, "sessionid", sessionid, None, False, host, False, False, "/", True, False, None, False, None, None, {},
        ))
        self.redirects = _RedirectRecorder()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), self.redirects)

    def get(self, path: str) -> tuple[int, bytes, str]:
        with self.opener.open(self.base_url + path, timeout=60) as response:
            return response.status, response.read(), response.geturl()

    def submit(self, path: str, *, action: str, **values: str) -> str:
        """GET ``path``, fill the form posting to ``action`` with ``values``, POST it; the URL it redirects to.

        A form that comes back instead of a redirect was refused: AssertionError with its errors.
        """
        _, body, _ = self.get(path)
        parser = _FormParser(action)
        parser.feed(body.decode())
        if not parser.done:
            raise AssertionError(f"no POST form to {action!r} on {path}")
        data = urllib.parse.urlencode({**parser.fields, **values}).encode()
        request = urllib.request.Request(self.base_url + action, data=data, method="POST")  # noqa: S310
        self.redirects.seen = 0
        with self.opener.open(request, timeout=60) as response:
            body = response.read().decode()
            if not self.redirects.seen:
                errors = re.findall(r'<ul class="errorlist[^>]*>(.*?)</ul>', body, re.S)
                raise AssertionError(f"the form at {action} was refused: {errors or body[:2000]}")
            return response.geturl()


class _RedirectRecorder(urllib.request.HTTPRedirectHandler):
    seen = 0

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        self.seen += 1
        return super().redirect_request(req, fp, code, msg, headers, newurl)
