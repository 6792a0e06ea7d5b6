"""firmware.flash against a simulated BOOTSEL drive (a directory plus a fake bootrom thread) and a pty serial port."""

import hashlib
import json
import os
import shutil
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_fifo_or_device_as_info_file_is_not_a_drive_and_does_not_block(built, tmp_path, capsys):
    fake = tmp_path / "media" / "RPI-RP2"
    fake.mkdir(parents=True)
    os.mkfifo(fake / "INFO_UF2.TXT")
    (tmp_path / "media" / "ZERO").mkdir()
    (tmp_path / "media" / "ZERO" / "INFO_UF2.TXT").symlink_to("/dev/zero")
    assert run_with_deadline([str(built)], [tmp_path / "media"]) == 2
    assert "no RPI-RP2 drive found" in capsys.readouterr().err


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


# -- hostile drives and inputs (issue 10): nothing the tool did not write is touched, only verified bytes go out --
def other_image() -> bytes:
    image = bytearray(make_image())
    image[-1] ^= 0x5A  # same layout, other program bytes
    return bytes(image)


def test_symlink_planted_on_the_drive_is_refused_and_not_followed(built, drive, tmp_path, capsys):
    victim = tmp_path / "thesis.tex"
    victim.write_text("years of work")
    (drive / built.name).symlink_to(victim)
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    err = capsys.readouterr().err
    assert "already exists (a symlink to" in err and str(victim) in err
    assert victim.read_text() == "years of work"
    assert sorted(p.name for p in drive.iterdir()) == ["INDEX.HTM", "INFO_UF2.TXT", built.name]


def test_dangling_symlink_on_the_drive_creates_nothing(built, drive, tmp_path):
    target = tmp_path / "elsewhere" / "created.uf2"
    target.parent.mkdir()
    (drive / built.name).symlink_to(target)
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert not target.exists()


def test_existing_file_on_the_drive_is_left_untouched(built, drive, capsys):
    (drive / built.name).write_bytes(b"someone else's file")
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert "already exists (a file)" in capsys.readouterr().err
    assert (drive / built.name).read_bytes() == b"someone else's file"


def test_uf2_on_the_drive_itself_is_refused_not_truncated(built, drive, capsys):
    on_drive = drive / "firmware.uf2"
    on_drive.write_bytes(built.read_bytes())
    (drive / "emulator.json").write_text((built.parent / "emulator.json").read_text())
    size = on_drive.stat().st_size
    assert flash.main([str(on_drive), "--drive", str(drive)]) == 2
    assert "is on the drive" in capsys.readouterr().err
    assert on_drive.stat().st_size == size and on_drive.read_bytes() == built.read_bytes()


def test_file_replaced_between_check_and_copy_flashes_the_verified_bytes(built, drive, monkeypatch):
    """A rebuild racing the flash: after verification the file on disk changes; the drive gets what was checked."""
    choose = flash.choose_drive

    def choose_and_rebuild(*args, **kwargs):
        built.write_bytes(uf2.write_uf2(other_image()))  # between the check and the copy
        return choose(*args, **kwargs)
    monkeypatch.setattr(flash, "choose_drive", choose_and_rebuild)
    bootrom = FakeBootrom(drive)
    bootrom.start()
    assert flash.main([str(built)], roots=[drive.parent]) == 0
    bootrom.join(5)
    image = make_image()
    assert b"".join(bootrom.flashed[a] for a in sorted(bootrom.flashed))[:len(image)] == image


def run_with_deadline(argv, roots, seconds=10):
    """flash.main in a thread, so that a hang fails the test instead of stalling the suite."""
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("rc", flash.main(argv, roots=roots)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"flash.main {argv} still running after {seconds} s"
    return result["rc"]


def test_fifo_as_image_is_refused_without_blocking(built, drive, capsys):
    record = built.parent / "emulator.json"
    built.unlink()
    os.mkfifo(built)
    assert run_with_deadline([str(built)], [drive.parent]) == 2
    assert "is a FIFO" in capsys.readouterr().err
    assert record.exists() and not list(drive.glob("*.uf2"))


def test_device_and_huge_file_are_refused_with_the_limit(built, drive, tmp_path, capsys):
    assert run_with_deadline(["/dev/zero", "--force"], [drive.parent]) == 2
    assert "/dev/zero: is a character device" in capsys.readouterr().err
    huge = tmp_path / "huge.uf2"
    with open(huge, "wb") as f:
        f.truncate(uf2.MAX_UF2_BYTES + 512)  # sparse: no disk used
    assert run_with_deadline([str(huge), "--force"], [drive.parent]) == 2
    assert f"over the {uf2.MAX_UF2_BYTES:,}-byte limit" in capsys.readouterr().err
    assert not list(drive.glob("*.uf2"))


def write_record(built, **changes):
    record = json.loads((built.parent / "emulator.json").read_text())
    for key, value in changes.items():
        if value is KeyError:
            del record[key]
        else:
            record[key] = value
    (built.parent / "emulator.json").write_text(json.dumps(record))


@pytest.mark.parametrize("changes,message", [
    ({"agreement_with_host": float("nan")}, "NaN is not a JSON number"),
    ({"agreement_with_host": "1.0"}, "field 'agreement_with_host' is '1.0' (str), expected a number in [0, 1]"),
    ({"agreement_with_host": True}, "field 'agreement_with_host' is True (bool)"),
    ({"agreement_with_host": 7}, "expected a number in [0, 1]"),
    ({"images": "50"}, "field 'images' is '50' (str), expected an integer >= 1"),
    ({"images": 0}, "field 'images' is 0"),
    ({"uf2_sha256": ["0" * 64]}, "field 'uf2_sha256' is ['000"),
    ({"uf2_sha256": KeyError}, "field 'uf2_sha256' is missing"),
    ({"test_set_images": KeyError}, "field 'test_set_images' is missing (expected an integer >= 1); a record from an"),
    ({"dataset": None}, "field 'dataset' is None (NoneType), expected a non-empty string"),
    ({"images": 1}, "the emulator checked 1 of the 50 mnist test images; flashing needs a run over the whole test set"),
])
def test_record_gate_rejects_malformed_and_partial_records(built, drive, changes, message, capsys):
    write_record(built, **changes)
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    err = capsys.readouterr().err
    assert message in err and "emulator.json" in err
    assert not list(drive.glob("*.uf2"))


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", "top level is a JSON list, expected an object"),
    ('{"images": ', "not valid JSON"),
    ("\xff\xfe", "not UTF-8 text"),
])
def test_record_that_is_not_a_json_object(built, drive, text, message, capsys):
    (built.parent / "emulator.json").write_bytes(text.encode("latin-1"))
    assert flash.main([str(built)], roots=[drive.parent]) == 2
    assert message in capsys.readouterr().err


def test_passing_record_says_how_many_images_were_checked(built, drive, capsys):
    bootrom = FakeBootrom(drive)
    bootrom.start()
    assert flash.main([str(built)], roots=[drive.parent]) == 0
    bootrom.join(5)
    assert "on all 50 mnist test images, agreement with the host model 1.0" in capsys.readouterr().out


RECORD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 100), st.floats(allow_nan=True),
                          st.text(max_size=70), st.lists(st.integers(), max_size=3),
                          st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["uf2_sha256", "images", "test_set_images", "dataset", "agreement_with_host",
                                        "accuracy"]), RECORD_VALUES, max_size=6), st.booleans())
def test_record_gate_property_only_flash_errors(tmp_path, record, with_real_sha):
    """Any JSON object as emulator.json: the gate passes it or raises FlashError, never anything else."""
    path = tmp_path / "firmware.uf2"
    digest = hashlib.sha256(b"x").hexdigest()
    if with_real_sha:
        record["uf2_sha256"] = digest
    (tmp_path / "emulator.json").write_text(json.dumps(record))
    try:
        accepted = flash.check_emulator_record(path, digest)
    except flash.FlashError:
        return
    assert accepted["images"] == accepted["test_set_images"] and accepted["agreement_with_host"] >= 0.999
