"""An S3-compatible server on this machine (moto's, in a thread) for DVC remotes.

with S3Server(host="127.0.0.1") as s3:
    s3.url                                  # http://127.0.0.1:PORT, a remote's endpointurl
    s3.create_bucket("models")
    s3.upload_tree(local_remote, "models", "dvcstore")   # what `dvc push` would have written
    s3.stats.requests                       # requests served, counted by a WSGI wrapper
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gitstage.dev.git_server import ServerStats
from tests.support.background import BackgroundServer

ACCESS_KEY = "AKIAGITSTAGETEST0001"
SECRET_KEY = "s3-secret-key-not-for-logs-0001"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3Server(BackgroundServer):
    """moto's S3 on `host` with an ephemeral port; counts the requests it serves."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        self.stats = ServerStats()
        app: WsgiApp = DomainDispatcherApplication(create_backend_app)
        self._wsgi = make_server(host, 0, self._counting(app), threaded=True)
        super().__init__(self._wsgi)

    def _counting(self, app: WsgiApp) -> WsgiApp:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.stats.add(requests=1)
            return app(environ, start_response)

        return counted

    @property
    def url(self) -> str:
        return f"http://{self._wsgi.host}:{self._wsgi.port}"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def upload_tree(self, root: Path, bucket: str, prefix: str) -> int:
        """Every file under `root` as `prefix/<relative path>`; returns how many."""
        s3 = self.client()
        files = [path for path in sorted(root.rglob("*")) if path.is_file()]
        for path in files:
            key = f"{prefix}/{path.relative_to(root).as_posix()}"
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        return len(files)
