"""The output directory of every pipeline command (zoo.train, compress, firmware.build, zoo.report, zoo.demo).

One rule, in one place (docs/RELIABILITY.md): a command never deletes or overwrites a file it did not write.

- Each command names the files it writes. It records them, with their SHA-256, in MANIFEST inside the directory.
- Checked before any work: the output is a directory (or can be made), writable, and neither an input, nor a
  directory that contains an input, nor (unless `nested_ok`) a directory inside an input.
- An existing output is replaced only with --force, and then only the files its manifest lists whose bytes are still
  the ones recorded; a user's files, another command's outputs and nested variants beside them are left alone.
  zoo.report and zoo.demo (`regenerate=True`) are caches: they refresh their own unchanged files without --force.
- A directory with files but no manifest (a user's, or one written by picozoo before manifests) is refused, naming
  the files. With --force it is adopted only when every file in it is one this command writes (hidden files and
  subdirectories are left untouched).
- Files are staged in a sibling directory `.NAME.tmp-PID` and renamed into place; the manifest is written before
  (listing old and new hashes) and after. Staging left by a killed run (its PID gone) is removed at the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

MANIFEST = ".picozoo-manifest.json"
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)(?:\.png)?$")  # our staging names (and older ones)
_SHOWN = 6  # file names listed in an error before "..."


class OutputError(Exception):
    """An output directory that cannot be written without losing data; the message names it and the fix."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _names(names) -> str:
    names = sorted(names)
    return ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**22  # another user's live process (or an impossible pid: treat as dead)
    return True


def _remove(path: Path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def remove_stale(directory: Path, owned) -> list[str]:
    """Delete `.NAME.tmp-PID` (and `.NAME.old-PID`) entries in `directory` for NAME in `owned` whose process is gone:
    what a killed run of the same output left. Anything else, and a live run's staging, is left alone."""
    removed = []
    if Path(directory).is_dir():
        for entry in Path(directory).iterdir():
            m = _TEMP.match(entry.name)
            if m and m["name"] in owned and not _pid_alive(int(m["pid"])):
                _remove(entry)
                removed.append(entry.name)
    return removed


def work_dir_prefix(tool: str) -> str:
    """Prefix of a command's temporary work directory in the system temp dir: `pz-TOOL-PID-`, so that the next run can
    tell a killed run's leftovers (dead PID) from a live run's (remove_stale_work_dirs)."""
    return f"pz-{tool}-{os.getpid()}-"


def remove_stale_work_dirs(tool: str) -> list[str]:
    """Delete `pz-TOOL-PID-*` directories in the system temp dir that belong to this user and whose process is gone."""
    removed = []
    pattern = re.compile(rf"pz-{re.escape(tool)}-(\d+)-")
    for entry in Path(tempfile.gettempdir()).iterdir():
        m = pattern.match(entry.name)
        with contextlib.suppress(OSError):
            if m and entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid() \
                    and not _pid_alive(int(m[1])):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
    return removed


class OutputDir:
    """`OutputDir(out, "compress", names=(...), inputs=[model_dir], force=...)`: `check()` before the work, then
    `with od.staging() as tmp:` write the files into tmp and `od.commit(tmp)`."""

    def __init__(self, path, tool: str, names, *, inputs=(), force: bool = False, nested_ok: bool = False,
                 regenerate: bool = False, companions=(), flag: str = "--out"):
        self.path, self.tool, self.names = Path(path), tool, tuple(names)
        self.companions = set(companions)  # other commands' files that belong beside ours (left untouched)
        self.inputs = [Path(i) for i in inputs if i is not None]
        self.force, self.nested_ok, self.regenerate, self.flag = force, nested_ok, regenerate, flag

    # -- checks ------------------------------------------------------------------------------------------------
    def check(self) -> dict:
        """Raise OutputError unless the output can be written safely; returns {name: sha256 or None} of the
        existing files this command may replace. Also removes stale staging left by killed runs."""
        out = self.path
        if out.exists() and not out.is_dir():
            raise OutputError(f"{self.flag} {out}: is a file, not a directory; choose a directory path")
        real = out.resolve()
        for given in self.inputs:
            source = given.resolve()
            if real == source:
                raise OutputError(f"{self.flag} {out} is the input {given}; choose another directory")
            if source.is_relative_to(real):
                raise OutputError(f"{self.flag} {out} contains the input {given}; writing there could replace it; "
                                  f"choose a directory outside it")
            if real.is_relative_to(source) and not self.nested_ok:
                raise OutputError(f"{self.flag} {out} is inside the input {given}; choose a directory outside it")
        existing = real.parent  # the staging directory goes beside the output
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise OutputError(f"{self.flag} {out}: {existing} is a file, so no directory can be made below it")
        for place in (existing, real) if real.is_dir() else (existing,):
            try:  # really create something: permissions alone miss read-only mounts, /proc and root's exemptions
                os.rmdir(tempfile.mkdtemp(prefix=".picozoo-probe-", dir=place))
            except OSError as e:
                raise OutputError(f"{self.flag} {out}: cannot create anything in {place} ({e.strerror}); choose "
                                  f"another directory") from None
        self._clean_stale(real)
        return self._replaceable(real)

    def _clean_stale(self, real: Path):
        """Remove staging of this same output left by a run that was killed (its process is gone)."""
        remove_stale(real.parent, {real.name})
        if real.is_dir():
            remove_stale(real, {*self.names, MANIFEST})

    def _manifest(self, real: Path) -> dict | None:
        path = real / MANIFEST
        if not path.exists() and not path.is_symlink():
            return None
        try:
            if not path.is_file() or path.stat().st_size > 1 << 20:
                raise ValueError
            manifest = json.loads(path.read_text())
            files = manifest["files"]
            if not (isinstance(manifest["tool"], str) and isinstance(files, dict)
                    and all(isinstance(v, list) and all(isinstance(h, str) for h in v) for v in files.values())):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputError(f"{path}: not a readable picozoo manifest; picozoo cannot tell which files in {real} "
                              f"it wrote, so it replaces none: choose another {self.flag}") from None
        return manifest

    def _replaceable(self, real: Path) -> dict:
        if not real.is_dir():
            return {}
        manifest = self._manifest(real)
        present = {e.name for e in real.iterdir()} - {MANIFEST}
        if manifest is None:
            files = {e.name for e in real.iterdir() if not e.name.startswith(".") and not e.is_dir()}
            if not present:
                return {}
            if not self.force:
                raise OutputError(f"{self.flag} {self.path} already exists and holds files picozoo has no record "
                                  f"of writing ({_names(present)}); choose another directory, or pass --force to "
                                  f"replace them if they are an earlier {self.tool} output")
            foreign = files - set(self.names) - self.companions
            if foreign:
                raise OutputError(f"{self.flag} {self.path} holds files {self.tool} does not write "
                                  f"({_names(foreign)}); even with --force it replaces only its own files: "
                                  f"choose another directory")
            return {name: None for name in files}
        if manifest["tool"] != self.tool:
            raise OutputError(f"{self.flag} {self.path} holds the outputs of {manifest['tool']}; {self.tool} does "
                              f"not replace them, even with --force: choose another directory")
        # Only names this command writes count (a manifest listing "../x" or another name claims nothing).
        ours = {name: hashes for name, hashes in manifest["files"].items()
                if name in self.names and (real / name).is_file()}
        changed = [name for name, hashes in ours.items() if sha256_file(real / name) not in hashes]
        if changed:
            raise OutputError(f"{self.flag} {self.path}: {_names(changed)} changed since {self.tool} wrote it; "
                              f"{self.tool} does not replace a file someone edited: move it away or choose another "
                              f"directory")
        clash = [n for n in self.names if n in present and n not in ours]
        if clash:
            raise OutputError(f"{self.flag} {self.path}: {_names(clash)} exists and was not written by {self.tool}; "
                              f"move it away or choose another directory")
        if ours and not (self.force or self.regenerate):
            raise OutputError(f"{self.flag} {self.path} already holds a {self.tool} output ({_names(ours)}); pass "
                              f"--force to replace those files (nothing else there is touched), or choose another "
                              f"directory")
        return {name: hashes[-1] for name, hashes in ours.items()}

    # -- writing -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def staging(self):
        """A fresh sibling directory for the new files (same filesystem, so renames are atomic); removed after."""
        real = self.path.resolve()
        real.parent.mkdir(parents=True, exist_ok=True)
        tmp = real.parent / f".{real.name}.tmp-{os.getpid()}"
        _remove(tmp)
        tmp.mkdir()
        try:
            yield tmp
        finally:
            _remove(tmp)

    def commit(self, staged: Path, partial: bool = False) -> list[str]:
        """Move the staged files into the output; returns their names. Re-checks first (a file may have appeared
        while the work ran). Files an earlier run of this command wrote and this one did not are removed, unless
        `partial` (a failed run that still hands over its log keeps the earlier results)."""
        real = self.path.resolve()
        previous = self.check()
        new = sorted(p.name for p in Path(staged).iterdir() if p.is_file())
        unknown = [n for n in new if n not in self.names]
        if unknown:
            raise ValueError(f"{self.tool} staged files it does not declare: {unknown}")  # a bug, not bad input
        hashes = {name: sha256_file(Path(staged) / name) for name in new}
        real.mkdir(parents=True, exist_ok=True)
        pending = {name: [h for h in (previous.get(name), hashes.get(name)) if h] for name in {*previous, *new}}
        self._write_manifest(real, pending)  # a crash from here on leaves every file accounted for
        for name in new:
            os.replace(Path(staged) / name, real / name)
        kept = {name: [h] for name, h in previous.items() if name not in hashes and h} if partial else {}
        for name in () if partial else set(previous) - set(new):
            with contextlib.suppress(FileNotFoundError):
                (real / name).unlink()
        self._write_manifest(real, {**kept, **{name: [h] for name, h in hashes.items()}})
        return new

    def _write_manifest(self, real: Path, files: dict):
        from zoo import __version__

        body = {"tool": self.tool, "picozoo_version": __version__, "files": dict(sorted(files.items())),
                "note": "files this command wrote, with their SHA-256; it replaces only these (docs/RELIABILITY.md)"}
        tmp = real / f".{MANIFEST}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, real / MANIFEST)
