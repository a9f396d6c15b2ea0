#!/usr/bin/env python3
"""One-command local workflow; needs only Python 3.11+ and pip.

    python3 dev.py serve          set up .venv, migrate SQLite, serve on 127.0.0.1:8000 (gunicorn)
    python3 dev.py test [ARGS]    set up .venv and run the whole test suite (pytest ARGS)
    python3 dev.py manage ARGS    run manage.py with the local configuration, e.g. createclient
    python3 dev.py bench [ARGS]   benchmark the token endpoint against Django and DOT (needs Debian's wrk;
                                  see bench/README.md or `python3 dev.py bench --help`)

serve and manage install requirements.txt (what runs the server); test and bench install
requirements-dev.txt (that plus the test, lint and benchmark tools).  Each is installed
again only when one of its files changed, so switching between serve and test installs
nothing.

Local keys (SECRET_KEY, SECRET_HASH_KEY) are generated once into .local/env (git-ignored),
so a restart changes nothing. Variables already set in the environment win.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
LOCAL_ENV = ROOT / ".local" / "env"
# pip installs a set's last file; requirements-dev.txt begins with -r requirements.txt.
RUNTIME = (ROOT / "requirements.txt",)
DEV = (*RUNTIME, ROOT / "requirements-dev.txt")


def _stamp(files: tuple[Path, ...]) -> tuple[Path, str]:
    """Where the set's last install is recorded, and the digest of its files now."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return VENV / f".{files[-1].name}.sha256", digest.hexdigest()


def ensure_venv(files: tuple[Path, ...] = RUNTIME) -> None:
    """Install ``files`` unless their stamp says they are installed as they are now.

    One stamp per set, so moving between serve (RUNTIME) and test (DEV) installs nothing;
    installing DEV also stamps RUNTIME, which it contains.
    """
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    stamps = [_stamp(covered) for covered in (RUNTIME, DEV) if files[: len(covered)] == covered]
    stamp, digest = stamps[-1]
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing {files[-1].name} ...", flush=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(files[-1])],
        check=True,
    )
    for covered_stamp, covered_digest in stamps:
        covered_stamp.write_text(covered_digest)


def local_env() -> dict[str, str]:
    """The environment for local runs: generated keys plus local defaults."""
    if not LOCAL_ENV.exists():
        LOCAL_ENV.parent.mkdir(exist_ok=True)
        LOCAL_ENV.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\nSECRET_HASH_KEY={secrets.token_hex(32)}\n"
        )
        LOCAL_ENV.chmod(0o600)
    env = dict(os.environ)
    for line in LOCAL_ENV.read_text().splitlines():
        name, _, value = line.partition("=")
        if name and not name.startswith("#"):
            env.setdefault(name.strip(), value.strip())
    env.setdefault("ISSUER", "http://127.0.0.1:8000")
    return env


def manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run([str(PYTHON), "manage.py", *args], cwd=ROOT, env=env, check=True)


def serve(args: list[str]) -> int:
    ensure_venv()
    env = local_env()
    manage(["migrate", "--noinput"], env)
    env.setdefault("BIND", "127.0.0.1:8000")
    env.setdefault("WEB_CONCURRENCY", "2")
    print(f"Serving {env['ISSUER']} (Ctrl-C stops)", flush=True)
    gunicorn = [str(VENV / "bin" / "gunicorn"), "-c", "authserver/gunicorn.conf.py", "authserver.wsgi", *args]
    os.chdir(ROOT)
    os.execve(gunicorn[0], gunicorn, env)
    return 0


def test(args: list[str]) -> int:
    ensure_venv(DEV)
    return subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT).returncode


def bench(args: list[str]) -> int:
    ensure_venv(DEV)
    return subprocess.run([str(PYTHON), "-m", "bench", *args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test", "manage", "bench"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return serve(rest)
    if command == "test":
        return test(rest)
    if command == "bench":
        return bench(rest)
    ensure_venv()
    try:
        manage(rest, local_env())
    except subprocess.CalledProcessError as error:
        return error.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
