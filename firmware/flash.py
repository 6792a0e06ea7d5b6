"""`python -m firmware.flash FIRMWARE.uf2`: copy a verified UF2 to a Pico in BOOTSEL mode.

The UF2 is read once into memory (a regular file of at most 4 MiB); that buffer is validated, hashed and written:
a file replaced or rebuilt meanwhile cannot get other bytes onto the board. Refuses, before touching any drive:
- an image that fails the bootrom's UF2 rules or has a bad boot2 CRC (`firmware.uf2`) — never overridable;
- an image with no passing emulator record: `emulator.json` beside it (written by `rp2040_sim eval`) whose
  `uf2_sha256` equals the buffer's SHA-256, which ran the *whole* test set (`images == test_set_images`) and whose
  predictions agreed with the host model — `--force` overrides this one, loudly.
The copy is a new file on the drive (O_CREAT|O_EXCL|O_NOFOLLOW in the drive directory): an existing file or a
symlink planted under that name is refused, never followed or truncated, and a UF2 that sits on the drive itself is
refused. Exit status: 0 flashed (and, with --serial, the reports match), 1 the board's report differs, 2 refused or
failed (nothing written, or only the new file on the drive).
Then finds the BOOTSEL drive the way uf2conv does (a mounted directory whose INFO_UF2.TXT says `Board-ID: RPI-RP2`
under /media, /media/$USER, /run/media/$USER, /mnt, /Volumes) or takes `--drive`, copies and syncs, and waits for the
drive to disappear as the board reboots. With `--serial PORT` (pyserial: `pip install 'picozoo[serial]'`) it reads
the firmware's UART report and compares it line by line with the emulator's run of the same image.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from firmware import uf2
from firmware.untrusted import InputError, field, read_json_object, read_regular

BOARD_ID = "RPI-RP2"  # INFO_UF2.TXT of the RP2040 bootrom (pico-bootrom virtual_disk.c)
INFO_FILE = "INFO_UF2.TXT"
INFO_MAX_BYTES = 64 * 1024  # the bootrom's INFO_UF2.TXT is 3 lines
MIN_AGREEMENT = 0.999  # emulator vs host predictions; int8 variants are bit-exact (1.0), float ones may differ on ties
REBOOT_TIMEOUT_S = 10.0  # the bootrom reboots ~1 s after the last block (microsoft/uf2 README)
SERIAL_BAUD = 115200
SERIAL_TIMEOUT_S = 60.0
LINE = re.compile(r"^img (\d+) label (\d+) pred (\d+) us (\d+)(?: class (.+))?$")  # class: a name, if any
SUMMARY = re.compile(r"^summary images (\d+) correct (\d+) us_total (\d+)$")


class FlashError(Exception):
    """Flashing refused or failed; the message says why and what to do."""


def default_roots() -> list[Path]:
    user = getpass.getuser()
    return [Path(p) for p in ("/media", f"/media/{user}", f"/run/media/{user}", "/mnt", "/Volumes")]


def is_bootsel_drive(path: Path) -> bool:
    try:  # a regular file of a few lines: a FIFO or device planted under that name must not block or flood us
        info = read_regular(Path(path) / INFO_FILE, INFO_MAX_BYTES, INFO_FILE).decode(errors="replace")
    except InputError:
        return False
    return any(line.strip() == f"Board-ID: {BOARD_ID}" for line in info.splitlines())


def find_drives(roots=None) -> list[Path]:
    found = []
    for root in roots if roots is not None else default_roots():
        try:
            candidates = sorted(p for p in Path(root).iterdir() if p.is_dir())
        except OSError:
            continue
        found += [p for p in candidates if is_bootsel_drive(p)]
    return found


def choose_drive(drive: Path | None, roots=None) -> Path:
    if drive is not None:
        if not is_bootsel_drive(drive):
            raise FlashError(f"{drive}: not an RP2040 BOOTSEL drive (no {INFO_FILE} with 'Board-ID: {BOARD_ID}'); "
                             f"hold BOOTSEL while plugging the Pico in and pass its mount point")
        return Path(drive)
    drives = find_drives(roots)
    if not drives:
        searched = ", ".join(str(r) for r in (roots if roots is not None else default_roots()))
        raise FlashError(f"no {BOARD_ID} drive found under {searched}: hold BOOTSEL while plugging the Pico in, "
                         f"wait for the drive to mount, or pass --drive PATH")
    if len(drives) > 1:
        raise FlashError(f"{len(drives)} {BOARD_ID} drives found ({', '.join(map(str, drives))}); "
                         f"pass --drive PATH to pick one")
    return drives[0]


@dataclass
class Verified:
    path: Path
    data: bytes                # the bytes that were validated and hashed: exactly these are written to the drive
    sha256: str
    record: dict | None        # the emulator record, None when --force skipped it


def verify_image(path: Path, force: bool = False, warn=print) -> Verified:
    """Read the UF2 once; the UF2 rules always, the emulator record unless `force`."""
    path = Path(path)
    try:
        raw = read_regular(path, uf2.MAX_UF2_BYTES, "UF2 file")
    except InputError as e:
        raise FlashError(f"refusing to flash: {e}") from None
    try:
        base, image = uf2.read_uf2(raw, str(path))
        uf2.check_image(base, image, str(path))
    except uf2.Uf2Error as e:
        raise FlashError(f"refusing to flash: {e}") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        record = check_emulator_record(path, digest)
    except FlashError as e:
        if not force:
            raise
        warn(f"WARNING: --force: flashing without a passing emulator record: {e}")
        return Verified(path, raw, digest, None)
    return Verified(path, raw, digest, record)


def check_emulator_record(path: Path, digest: str) -> dict:
    """emulator.json beside `path` passes: it is for these bytes (`digest`), it covered the whole test set and the
    emulated firmware agreed with the host model on at least MIN_AGREEMENT of it."""
    record_path = path.with_name("emulator.json")
    fix = f"run `python -m rp2040_sim eval {path.parent}` (all test images) first, or pass --force"
    try:
        record = read_json_object(record_path, "record file")
        sha = field(record, "uf2_sha256", "sha256", record_path, fix)
        if sha != digest:
            raise FlashError(f"{record_path} is for another image (uf2_sha256 {sha}, this file is {digest}): the UF2 "
                             f"changed since it was emulated; {fix}")
        older = f"a record from an older rp2040_sim eval lacks it; {fix}"
        images = field(record, "images", "positive int", record_path, fix)
        total = field(record, "test_set_images", "positive int", record_path, older)
        dataset = field(record, "dataset", "string", record_path, fix)
        agreement = field(record, "agreement_with_host", "fraction", record_path, fix)
    except InputError as e:
        if e.missing:
            raise FlashError(f"{path}: no emulator record ({record_path} is missing); {fix}") from None
        raise FlashError(str(e)) from None
    if images != total:
        raise FlashError(f"{record_path}: the emulator checked {images:,} of the {total:,} {dataset} test images; "
                         f"flashing needs a run over the whole test set: {fix}")
    if agreement < MIN_AGREEMENT:
        raise FlashError(f"{record_path}: the emulated firmware agreed with the host model on {agreement} of "
                         f"{images} images (needs >= {MIN_AGREEMENT}); fix the build before flashing")
    return record


def refuse_source_on_drive(source: Path, drive: Path):
    """Copying a UF2 that already sits on the drive onto the drive would truncate it: refuse."""
    src, root = Path(source).resolve(), Path(drive).resolve()
    if root == src.parent or root in src.parents:
        raise FlashError(f"{source} is on the drive {drive} itself; flash the UF2 from its build directory "
                         f"(writing it onto the drive it sits on would destroy it)")


def write_new_file(drive: Path, name: str, data: bytes) -> Path:
    """Create `name` in the drive directory and write `data`, fsynced. The directory is opened once and the file is
    created relative to it with O_CREAT|O_EXCL|O_NOFOLLOW: a file or symlink already under that name (say
    firmware.uf2 -> ~/thesis.tex) makes this fail instead of being followed or truncated."""
    target = Path(drive) / name
    try:
        dir_fd = os.open(drive, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise FlashError(f"{drive}: cannot open the drive ({e.strerror})") from None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ELOOP):
                what = f"a symlink to {os.readlink(target)}" if target.is_symlink() else "a file"
                raise FlashError(f"{target} already exists ({what}); a fresh BOOTSEL drive holds only {INFO_FILE} "
                                 f"and INDEX.HTM, so nothing was written and it was left untouched: replug the "
                                 f"Pico with BOOTSEL held, or check what planted it") from None
            raise FlashError(f"{target}: cannot create ({e.strerror})") from None
        try:
            with os.fdopen(fd, "wb") as dst:
                dst.write(data)
                dst.flush()
                os.fsync(dst.fileno())
        except OSError as e:
            try:
                os.unlink(name, dir_fd=dir_fd)  # our own partial file, nothing else
            except OSError:
                pass
            raise FlashError(f"{target}: write failed ({e.strerror}); the partial copy was removed") from None
    finally:
        os.close(dir_fd)
    return target


def copy_to_drive(verified: Verified, drive: Path, timeout: float = REBOOT_TIMEOUT_S) -> Path:
    """Write the verified bytes as a new file, then wait for the drive to go away as the bootrom reboots."""
    refuse_source_on_drive(verified.path, drive)
    target = write_new_file(drive, verified.path.name, verified.data)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (drive / INFO_FILE).exists():
            return target
        time.sleep(0.05)
    raise FlashError(f"{drive}: the drive is still there {timeout:.0f} s after the copy; the board did not reboot "
                     f"(was the copy complete? is it an RP2040?)")


def parse_report(lines) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """(img, label, pred) per image line and (images, correct) from the summary line; other lines are ignored."""
    images, summary = [], None
    for line in lines:
        line = line.strip()
        if m := LINE.match(line):
            images.append(tuple(int(g) for g in m.groups()[:3]))
        elif m := SUMMARY.match(line):
            summary = (int(m.group(1)), int(m.group(2)))
    return images, summary


def compare_reports(board_lines, emulator_lines) -> list[str]:
    """Differences between the board's UART report and the emulator's (timings are not compared)."""
    board, board_summary = parse_report(board_lines)
    expected, expected_summary = parse_report(emulator_lines)
    problems = [f"image {b[0]}: board says label {b[1]} pred {b[2]}, emulator label {e[1]} pred {e[2]}"
                for b, e in zip(board, expected) if b != e]
    if len(board) != len(expected):
        problems.append(f"board reported {len(board)} images, the emulator {len(expected)}")
    if board_summary != expected_summary:
        problems.append(f"summary (images, correct): board {board_summary}, emulator {expected_summary}")
    return problems


def read_serial_report(port, timeout: float = SERIAL_TIMEOUT_S) -> list[str]:
    """Lines from `port` (a pyserial-like object with readline()) up to and including the summary line."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = port.readline()
        if not raw:
            continue
        line = raw.decode(errors="replace").strip()
        lines.append(line)
        if SUMMARY.match(line):
            return lines
    raise FlashError(f"no summary line on the serial port within {timeout:.0f} s (got {len(lines)} lines); "
                     f"is the Pico's UART0 (GP0/GP1) wired to this port at {SERIAL_BAUD} baud?")


def open_serial(name: str):
    try:
        import serial
    except ImportError:
        raise FlashError("--serial needs pyserial: pip install 'picozoo[serial]'") from None
    try:
        return serial.Serial(name, SERIAL_BAUD, timeout=0.5)
    except serial.SerialException as e:
        raise FlashError(f"{name}: cannot open the serial port ({e})") from None


def emulator_report(uf2_path: Path, sha256: str | None = None) -> list[str]:
    """The UART lines the emulator prints when it boots this very image (the .elf beside it gives symbols); with
    `sha256`, the file must still be the one that was flashed."""
    from rp2040_sim import boot, runner
    try:
        image = boot.load_image(uf2_path)
    except boot.BootError as e:
        raise FlashError(f"cannot run the emulator for the comparison: {e}") from None
    if sha256 is not None and image.file_sha256 != sha256:
        raise FlashError(f"{uf2_path} changed after it was flashed (sha256 {image.file_sha256}, flashed {sha256}); "
                         f"the emulator's report would be of another image")
    result, _ = runner.run_loaded(image)
    if not result.stop.ok:
        raise FlashError(f"{uf2_path}: the emulator stopped with {result.stop.kind}, so there is no report to "
                         f"compare with:\n{result.fault_report}")
    return result.uart.splitlines()


def main(argv=None, roots=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.flash", description=__doc__.split("\n")[0])
    parser.add_argument("uf2", type=Path, help="firmware.uf2 from `python -m firmware.build`")
    parser.add_argument("--drive", type=Path, help="the mounted RPI-RP2 drive (default: search for it)")
    parser.add_argument("--serial", help="serial port wired to UART0, e.g. /dev/ttyUSB0, to check the board's report")
    parser.add_argument("--force", action="store_true", help="flash without a passing emulator record")
    parser.add_argument("--timeout", type=float, default=REBOOT_TIMEOUT_S, help="seconds to wait for the reboot")
    args = parser.parse_args(argv)
    try:
        verified = verify_image(args.uf2, force=args.force, warn=lambda m: print(m, file=sys.stderr))
        drive = choose_drive(args.drive, roots)
        port = open_serial(args.serial) if args.serial else None
        target = copy_to_drive(verified, drive, args.timeout)
        if verified.record is not None:
            r = verified.record
            print(f"verified: the emulator ran this exact file on all {r['images']:,} {r['dataset']} test images, "
                  f"agreement with the host model {r['agreement_with_host']}")
        print(f"flashed {verified.path} (sha256 {verified.sha256[:16]}...) to {target}; the board rebooted")
        if port is not None:
            problems = compare_reports(read_serial_report(port), emulator_report(verified.path, verified.sha256))
            if problems:
                print("the board's report differs from the emulator's:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
            print("the board's UART report matches the emulator line by line")
    except FlashError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
