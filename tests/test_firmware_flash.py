"""firmware.flash against a simulated BOOTSEL drive (a directory plus a fake bootrom thread) and a pty serial port."""

import hashlib
import json
import os
import shutil
import struct
import threading
import time

import pytest

from firmware import flash, uf2

INFO_TEXT = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"  # B2 bootrom, rp2040.md


def make_image() -> bytes:
    """A plausible flash image: boot2 with its CRC, a vector table at 0x100 (SP in SRAM, Thumb reset in flash)."""
    boot2 = uf2.boot2_with_crc(bytes([0x00, 0xBF]) * 20)  # NOPs; the content does not matter to the flasher
    vectors = struct.pack("<II", 0x20042000, 0x10000201)
    return boot2 + vectors + bytes(0x300 - 256 - len(vectors))


class FakeBootrom(threading.Thread):
    """Consumes a .uf2 written to the drive, checks it by the bootrom's rules (independently of firmware.uf2), and
    removes the drive as the reboot does. What it accepted is kept in `flashed`."""

    def __init__(self, drive):
        super().__init__(daemon=True)
        self.drive, self.flashed, self.rejected = drive, {}, []

    def run(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            files = list(self.drive.glob("*.uf2"))
            if files:
                time.sleep(0.05)  # let the writer finish
                self.consume(files[0].read_bytes())
                shutil.rmtree(self.drive)
                return
            time.sleep(0.01)

    def consume(self, data):
        for n in range(len(data) // 512):
            block = data[n * 512:(n + 1) * 512]
            magic0, magic1, flags, addr, size, blockno, nblocks, family = struct.unpack_from("<8I", block)
            (magic_end,) = struct.unpack_from("<I", block, 508)
            ok = (magic0, magic1, magic_end) == (0x0A324655, 0x9E5D5157, 0x0AB16F30) and flags & 0x2000 \
                and not flags & 1 and family == 0xE48BFF56 and size == 256 and addr % 256 == 0
            if ok:
                self.flashed[addr] = block[32:32 + 256]
            else:
                self.rejected.append(n)


@pytest.fixture
def built(tmp_path):
    """A UF2 with a passing emulator record beside it, as `rp2040_sim eval` leaves it."""
    build = tmp_path / "build"
    build.mkdir()
    path = build / "firmware.uf2"
    path.write_bytes(uf2.write_uf2(make_image()))
    record = {"images": 50, "test_set_images": 50, "dataset": "mnist", "accuracy": 0.98, "agreement_with_host": 1.0,
              "uf2_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (build / "emulator.json").write_text(json.dumps(record))
    return path


@pytest.fixture
def drive(tmp_path):
    root = tmp_path / "media"
    d = root / "RPI-RP2"
    d.mkdir(parents=True)
    (d / "INFO_UF2.TXT").write_text(INFO_TEXT)
    (d / "INDEX.HTM").write_text("<html></html>")
    return d


def test_flashes_and_waits_for_reboot(built, drive, capsys):
    bootrom = FakeBootrom(drive)
    bootrom.start()
    assert flash.main([str(built)], roots=[drive.parent]) == 0
    bootrom.join(5)
    image = make_image()
    assert bootrom.rejected == []
    assert b"".join(bootrom.flashed[a] for a in sorted(bootrom.flashed))[:len(image)] == image
    assert min(bootrom.flashed) == 0x10000000
    assert "the board rebooted" in capsys.readouterr().out


def test_refuses_invalid_uf2_even_with_force(built, drive, capsys):
    data = bytearray(built.read_bytes())
    data[0] ^= 0xFF  # first magic of block 0
    built.write_bytes(bytes(data))
    assert flash.main([str(built), "--force"], roots=[drive.parent]) == 2
    assert "refusing to flash" in capsys.readouterr().err
    assert not list(drive.glob("*.uf2"))


def test_refuses_bad_boot2_crc(built, drive, capsys):
    image = bytearray(make_image())
    image[10] ^= 1
    built.write_bytes(uf2.write_uf2(bytes(image)))
    assert flash.main([str(built), "--force"], roots=[drive.parent]) == 2
    assert "refusing to flash" in capsys.readouterr().err


def test_refuses_without_emulator_record(built, drive, capsys):
    (built.parent / "emulator.json").unlink()
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    err = capsys.readouterr().err
    assert "no emulator record" in err and "python -m rp2040_sim eval" in err
    assert not list(drive.glob("*.uf2"))


def test_refuses_record_of_another_image(built, drive, capsys):
    record = json.loads((built.parent / "emulator.json").read_text())
    record["uf2_sha256"] = "0" * 64
    (built.parent / "emulator.json").write_text(json.dumps(record))
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert "is for another image" in capsys.readouterr().err


def test_refuses_failing_record(built, drive, capsys):
    record = json.loads((built.parent / "emulator.json").read_text())
    record["agreement_with_host"] = 0.9
    (built.parent / "emulator.json").write_text(json.dumps(record))
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert "agreed with the host model on 0.9" in capsys.readouterr().err


def test_force_flashes_without_record_loudly(built, drive, capsys):
    (built.parent / "emulator.json").unlink()
    bootrom = FakeBootrom(drive)
    bootrom.start()
    assert flash.main([str(built), "--force"], roots=[drive.parent]) == 0
    bootrom.join(5)
    assert bootrom.flashed
    assert "WARNING: --force" in capsys.readouterr().err


def test_refuses_a_directory_that_is_not_a_bootsel_drive(built, tmp_path, capsys):
    usb_stick = tmp_path / "stick"
    usb_stick.mkdir()
    (usb_stick / "INFO_UF2.TXT").write_text("UF2 Bootloader v1.0\nBoard-ID: SAMD21-Feather\n")
    assert flash.main([str(built), "--drive", str(usb_stick)]) == 2
    assert "not an RP2040 BOOTSEL drive" in capsys.readouterr().err
    assert not list(usb_stick.glob("*.uf2"))


def test_no_drive_found(built, tmp_path, capsys):
    assert flash.main([str(built)], roots=[tmp_path / "empty"]) == 2
    assert "no RPI-RP2 drive found" in capsys.readouterr().err


def test_two_drives_need_a_choice(built, drive, capsys):
    second = drive.parent / "RPI-RP2 1"
    second.mkdir()
    (second / "INFO_UF2.TXT").write_text(INFO_TEXT)
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert "2 RPI-RP2 drives found" in capsys.readouterr().err


def test_board_that_does_not_reboot_times_out(built, drive, capsys):
    assert flash.main([str(built), "--timeout", "0.3"], roots=[drive.parent]) == 2
    assert "still there" in capsys.readouterr().err


REPORT = ["img 0 label 7 pred 7 us 812", "img 1 label 2 pred 2 us 811", "summary images 2 correct 2 us_total 1623"]


def test_compare_reports_ignores_timing_and_finds_differences():
    board = ["booting", "img 0 label 7 pred 7 us 900", "img 1 label 2 pred 3 us 811",
             "summary images 2 correct 1 us_total 1711"]
    assert flash.compare_reports(REPORT, REPORT) == []
    problems = flash.compare_reports(board, REPORT)
    assert problems == ["image 1: board says label 2 pred 3, emulator label 2 pred 2",
                        "summary (images, correct): board (2, 1), emulator (2, 2)"]


def test_serial_report_read_from_a_pty():
    serial = pytest.importorskip("serial")
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), flash.SERIAL_BAUD, timeout=0.2)
    os.write(master, ("\r\n".join(["boot", *REPORT]) + "\r\n").encode())
    lines = flash.read_serial_report(port, timeout=5)
    assert lines[-1] == REPORT[-1] and flash.compare_reports(lines, REPORT) == []
    port.close()
    os.close(master)
    os.close(slave)


def test_serial_silence_times_out():
    class Silent:
        def readline(self):
            return b""
    with pytest.raises(flash.FlashError, match="no summary line on the serial port"):
        flash.read_serial_report(Silent(), timeout=0.2)


def test_missing_serial_port(built, drive, capsys):
    pytest.importorskip("serial")
    assert flash.main([str(built), "--serial", "/dev/picozoo-no-such-port"], roots=[drive.parent]) == 2
    assert "cannot open the serial port" in capsys.readouterr().err
    assert not list(drive.glob("*.uf2"))  # nothing flashed when the check could not run


def test_serial_check_against_the_emulators_run_of_a_real_image(tmp_path, capsys):
    """End to end on a real build: the 'board' (a pty) replays the emulator's own UART text, then one wrong line."""
    serial = pytest.importorskip("serial")
    from tests.conftest import require_tool
    require_tool("arm-none-eabi-gcc")
    from firmware import build as fw_build
    from zoo import train
    from zoo.models import get_model

    cfg = get_model("xor").with_overrides(epochs=200)
    train.train_and_evaluate(cfg, tmp_path / "xor", progress=False)
    assert fw_build.main([str(tmp_path / "xor"), "--images", "4", "--out", str(tmp_path / "build")]) == 0
    uf2_path = tmp_path / "build" / "firmware.uf2"
    expected = flash.emulator_report(uf2_path)
    assert any(line.startswith("summary images 4 ") for line in expected)

    for lines, ok in ((expected, True), ([line.replace("pred 0", "pred 1") for line in expected], False)):
        master, slave = os.openpty()
        port = serial.Serial(os.ttyname(slave), flash.SERIAL_BAUD, timeout=0.2)
        os.write(master, ("\r\n".join(lines) + "\r\n").encode())
        problems = flash.compare_reports(flash.read_serial_report(port, timeout=5), expected)
        assert (problems == []) is ok
        port.close()
        os.close(master)
        os.close(slave)
