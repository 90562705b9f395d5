"""local/download_and_untar.sh against a local HTTP server that honours Range requests."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from conftest import REPO, run

SCRIPT = str(REPO / "local" / "download_and_untar.sh")


def tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """Serves self.files[name]; honours 'Range: bytes=N-'; self.truncate serves only a prefix."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: int | None = None
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                outer.requests.append((name, rng))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data = outer.files[name]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                body = data[start:]
                if outer.truncate is not None:
                    body = body[: outer.truncate]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/resources/33"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def part(server, name: str, members: dict[str, bytes]):
    data = tgz(members)
    server.files[f"{name}.tgz"] = data
    return ["--size", str(len(data)), "--md5", hashlib.md5(data).hexdigest()], data


def test_download_unpack_and_skip_when_complete(server, tmp_path):
    inner = tgz({"train/S0002/BAC009S0002W0001.wav": b"RIFF-not-checked-here"})
    opts, _ = part(server, "data_aishell", {"data_aishell/wav/S0002.tar.gz": inner,
                                            "data_aishell/transcript/aishell_transcript_v0.8.txt": b"x y\n"})
    db = tmp_path / "db"
    p = run([SCRIPT, *opts, db, server.url, "data_aishell"])
    assert "successfully downloaded and unpacked data_aishell" in p.stdout
    assert (db / "data_aishell/wav/train/S0002/BAC009S0002W0001.wav").is_file()
    assert not (db / "data_aishell/wav/S0002.tar.gz").exists()  # inner archives unpacked and removed
    assert (db / "data_aishell/.complete").is_file()
    n = len(server.requests)
    p = run([SCRIPT, *opts, db, server.url, "data_aishell"])
    assert "already complete" in p.stdout and len(server.requests) == n


def test_interrupted_download_is_resumed(server, tmp_path):
    opts, data = part(server, "resource_aishell", {"resource_aishell/lexicon.txt": b"a a1\n" * 5000})
    db = tmp_path / "db"
    db.mkdir()
    (db / "resource_aishell.tgz.part").write_bytes(data[: len(data) // 2])
    run([SCRIPT, *opts, db, server.url, "resource_aishell"])
    assert server.requests == [("resource_aishell.tgz", f"bytes={len(data) // 2}-")]
    assert (db / "resource_aishell/lexicon.txt").read_bytes() == b"a a1\n" * 5000
    assert (db / "resource_aishell.tgz").read_bytes() == data


def test_corrupt_partial_download_is_fetched_again(server, tmp_path):
    opts, data = part(server, "resource_aishell", {"resource_aishell/lexicon.txt": b"b b2\n" * 5000})
    db = tmp_path / "db"
    db.mkdir()
    (db / "resource_aishell.tgz.part").write_bytes(b"\0" * (len(data) // 2))  # wrong bytes: md5 fails after resume
    p = run([SCRIPT, *opts, db, server.url, "resource_aishell"])
    assert "has md5" in p.stderr and "failed its check" in p.stderr
    assert [r[1] for r in server.requests] == [f"bytes={len(data) // 2}-", None]
    assert (db / "resource_aishell/lexicon.txt").read_bytes() == b"b b2\n" * 5000


def test_truncated_download_is_never_unpacked(server, tmp_path):
    opts, data = part(server, "resource_aishell", {"resource_aishell/lexicon.txt": b"c c3\n" * 5000})
    server.truncate = len(data) // 3
    db = tmp_path / "db"
    p = run([SCRIPT, *opts, db, server.url, "resource_aishell"], check=False)
    assert p.returncode == 1
    assert "nothing was unpacked" in p.stderr
    assert not (db / "resource_aishell").exists()
    assert sorted(x.name for x in db.iterdir()) == []


def test_usage_errors(tmp_path):
    assert run([SCRIPT, tmp_path], check=False).returncode == 2
    p = run([SCRIPT, tmp_path, "http://127.0.0.1:9/x", "other_part"], check=False)
    assert p.returncode == 2 and "needs --size and --md5" in p.stderr
