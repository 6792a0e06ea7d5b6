"""Compile portable C to a host shared library and load it with ctypes (for testing kernels against NumPy).

The library lands in a cache directory keyed by a hash of everything that decides its bytes: the compiler's
identity, the flags, the sources and every header in the include directories. A second call with the same inputs
loads the cached library without compiling. Writes go to a temporary name and are renamed into place, so parallel
test processes never load half a library.

    lib = hostcc.build([Path("firmware/kernels/dense_f32.c")], include_dirs=[Path("firmware/kernels")])
    lib.pz_dense_f32(...)

Cache: $PICOZOO_HOSTCC_CACHE, else $XDG_CACHE_HOME/picozoo/hostcc, else ~/.cache/picozoo/hostcc.
Compiler: $CC, else `cc`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

DEFAULT_FLAGS = ("-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")


class HostCcError(Exception):
    """The host C compiler is missing or rejected the sources; the message holds the command and its output."""


def cache_dir() -> Path:
    if os.environ.get("PICOZOO_HOSTCC_CACHE"):
        return Path(os.environ["PICOZOO_HOSTCC_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "picozoo" / "hostcc"


def compiler() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise HostCcError(f"host C compiler '{cc}' not found on PATH; install it (Debian: apt-get install gcc) "
                          f"or set CC")
    return path


def _compiler_identity(cc: str) -> bytes:
    out = subprocess.run([cc, "--version"], capture_output=True)
    return cc.encode() + b"\0" + out.stdout


def _key(cc: str, sources, include_dirs, flags) -> str:
    h = hashlib.sha256()
    h.update(_compiler_identity(cc))
    for flag in flags:
        h.update(b"flag\0" + flag.encode() + b"\0")
    for src in sources:
        h.update(b"src\0" + Path(src).name.encode() + b"\0" + Path(src).read_bytes())
    for inc in include_dirs:
        for header in sorted(Path(inc).rglob("*.h")):
            h.update(b"hdr\0" + str(header.relative_to(inc)).encode() + b"\0" + header.read_bytes())
    return h.hexdigest()[:24]


def build(sources, include_dirs=(), flags=(), name: str = "lib") -> ctypes.CDLL:
    """Compile `sources` (paths) into one shared library and return it loaded; cached by content hash."""
    sources = [Path(s) for s in sources]
    for src in sources:
        if not src.is_file():
            raise HostCcError(f"{src}: C source not found")
    include_dirs = [Path(d) for d in include_dirs]
    all_flags = (*DEFAULT_FLAGS, *flags)
    cc = compiler()
    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{_key(cc, sources, include_dirs, all_flags)}.so"
    if not target.exists():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        cmd = [cc, *all_flags, *[f"-I{d}" for d in include_dirs], "-o", tmp, *map(str, sources), "-lm"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            os.unlink(tmp)
            raise HostCcError(f"host compile failed: {' '.join(cmd)}\n{result.stderr}")
        os.replace(tmp, target)
    return ctypes.CDLL(str(target))
