"""firmware.uf2 against the UF2 spec and the RP2040 bootrom's rules: round trip, every rejection, the boot2 CRC."""

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import uf2
from tests.conftest import require_tool

MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30  # microsoft/uf2 README, written out independently
FAMILY_RP2040 = 0xE48BFF56


def crc32_mpeg2_bitwise(data: bytes) -> int:
    """Reference CRC-32/MPEG-2, one bit at a time (no table), to check the module's table-driven version."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            top = (crc >> 31) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if top:
                crc ^= 0x04C11DB7
    return crc


def bootable_image(extra: int = 1000) -> bytes:
    boot2 = uf2.boot2_with_crc(bytes(range(100)))
    vectors = struct.pack("<II", 0x20042000, 0x10000201)
    return boot2 + vectors + bytes(extra)


def test_crc_check_value():
    assert uf2.crc32_mpeg2(b"123456789") == 0x0376E6E7
    assert crc32_mpeg2_bitwise(b"123456789") == 0x0376E6E7


@given(st.binary(max_size=300))
def test_crc_equals_bitwise_reference(data):
    assert uf2.crc32_mpeg2(data) == crc32_mpeg2_bitwise(data)


def test_boot2_with_crc_pads_and_appends_little_endian_crc():
    code = b"\x01\x02\x03"
    blob = uf2.boot2_with_crc(code)
    assert len(blob) == 256
    assert blob[:3] == code and blob[3:252] == bytes(249)
    assert struct.unpack("<I", blob[252:])[0] == crc32_mpeg2_bitwise(blob[:252])


def test_boot2_with_crc_rejects_code_over_252_bytes():
    uf2.boot2_with_crc(bytes(252))
    with pytest.raises(ValueError, match="253 bytes"):
        uf2.boot2_with_crc(bytes(253))


@settings(max_examples=30)
@given(st.binary(min_size=1, max_size=2000))
def test_round_trip(image):
    data = uf2.write_uf2(image)
    assert len(data) % 512 == 0
    base, back = uf2.read_uf2(data)
    assert base == 0x10000000
    assert back[:len(image)] == image
    assert back[len(image):] == b"\xff" * (len(back) - len(image))  # erased-flash padding to 256
    assert len(back) % 256 == 0


def test_writer_follows_the_spec_field_by_field():
    data = uf2.write_uf2(bytes(range(256)) * 3, base=0x10000100)
    assert len(data) == 3 * 512
    for i in range(3):
        block = data[i * 512:(i + 1) * 512]
        fields = struct.unpack_from("<8I", block)
        assert fields == (MAGIC0, MAGIC1, 0x2000, 0x10000100 + 256 * i, 256, i, 3, FAMILY_RP2040)
        assert block[32:288] == bytes(range(256))
        assert block[288:508] == bytes(220)
        assert struct.unpack_from("<I", block, 508)[0] == MAGIC_END


def _blocks():
    return bytearray(uf2.write_uf2(bytes(256 * 3)))


def _patch(data: bytearray, block: int, offset: int, value: int) -> bytes:
    struct.pack_into("<I", data, block * 512 + offset, value)
    return bytes(data)


@pytest.mark.parametrize("offset,value,rule", [
    (0, 0x12345678, "start magics"),
    (4, 0x12345678, "start magics"),
    (508, 0, "end magic"),
    (8, 0x2001, "not main flash"),
    (8, 0x3000, "file container"),
    (8, 0x0000, "familyID present"),
    (28, 0xADA52840, "family ID 0xada52840"),
    (16, 128, "payload size 128"),
    (12, 0x10000180, "not 256-aligned"),
    (12, 0x20000000, "outside"),
    (20, 7, "block number 7"),
    (24, 9, "number of blocks 9"),
])
def test_each_rule_is_enforced_and_named(offset, value, rule):
    data = _patch(_blocks(), 1, offset, value)
    with pytest.raises(uf2.Uf2Error) as e:
        uf2.read_uf2(data, "x.uf2")
    message = str(e.value)
    assert message.startswith("x.uf2: block 1: ")
    assert rule in message


def test_rejects_nonzero_padding():
    data = _blocks()
    data[512 + 32 + 256] = 1
    with pytest.raises(uf2.Uf2Error, match="block 1: non-zero bytes after the payload"):
        uf2.read_uf2(bytes(data), "x.uf2")


def test_rejects_gaps():
    data = _patch(_blocks(), 2, 12, 0x10000300)
    with pytest.raises(uf2.Uf2Error, match="block 2: target address 0x10000300, expected 0x10000200"):
        uf2.read_uf2(data, "x.uf2")


def test_rejects_empty_and_truncated_files():
    with pytest.raises(uf2.Uf2Error, match="x.uf2: empty file"):
        uf2.read_uf2(b"", "x.uf2")
    with pytest.raises(uf2.Uf2Error, match="size 1000 is not a multiple of 512"):
        uf2.read_uf2(bytes(_blocks())[:1000], "x.uf2")


def test_writer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="not 256-aligned"):
        uf2.write_uf2(b"x", base=0x10000010)
    with pytest.raises(ValueError, match="does not fit"):
        uf2.write_uf2(bytes(2 * 1024 * 1024 + 1))
    with pytest.raises(ValueError, match="empty"):
        uf2.write_uf2(b"")


def test_check_image_accepts_a_bootable_image():
    uf2.check_image(0x10000000, bootable_image(), "ok")


def test_check_image_rejects_bad_boot2_crc():
    image = bytearray(bootable_image())
    image[10] ^= 0xFF
    with pytest.raises(uf2.Uf2Error, match="img: boot2 CRC .* computed"):
        uf2.check_image(0x10000000, bytes(image), "img")


@pytest.mark.parametrize("sp,reset,rule", [
    (0x10000000, 0x10000201, "initial SP 0x10000000"),
    (0x20042004, 0x10000201, "initial SP 0x20042004"),
    (0x20041FFE, 0x10000201, "initial SP 0x20041ffe"),
    (0x20042000, 0x10000200, "reset vector 0x10000200 is even"),
    (0x20042000, 0x20000001, "points outside the image"),
    (0x20042000, 0x10000011, "points outside the image"),  # inside boot2, not the application
])
def test_check_image_rejects_implausible_vectors(sp, reset, rule):
    image = bytearray(bootable_image())
    struct.pack_into("<II", image, 0x100, sp, reset)
    with pytest.raises(uf2.Uf2Error, match=rule):
        uf2.check_image(0x10000000, bytes(image), "img")


def test_check_image_rejects_wrong_base_and_short_image():
    with pytest.raises(uf2.Uf2Error, match="starts at 0x10001000"):
        uf2.check_image(0x10001000, bootable_image(), "img")
    with pytest.raises(uf2.Uf2Error, match="too short"):
        uf2.check_image(0x10000000, bootable_image()[:260], "img")


def test_cli_check_and_info(tmp_path, capsys):
    good = tmp_path / "good.uf2"
    good.write_bytes(uf2.write_uf2(bootable_image()))
    assert uf2.main(["check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    assert uf2.main(["info", str(good)]) == 0
    out = capsys.readouterr().out
    assert "initial sp  0x20042000" in out and "reset       0x10000201" in out


def test_cli_failures_exit_nonzero_naming_file_block_and_rule(tmp_path, capsys):
    bad = tmp_path / "bad.uf2"
    bad.write_bytes(_patch(bytearray(uf2.write_uf2(bootable_image())), 2, 28, 0))
    assert uf2.main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "block 2" in err and "family ID" in err
    unbootable = tmp_path / "nocrc.uf2"
    unbootable.write_bytes(uf2.write_uf2(bytes(1024)))
    assert uf2.main(["check", str(unbootable)]) == 1
    assert "boot2 CRC" in capsys.readouterr().err
    assert uf2.main(["check", str(tmp_path / "missing.uf2")]) == 1
    assert "missing.uf2: no such file" in capsys.readouterr().err
    assert uf2.main(["frobnicate", str(bad)]) == 2


# -- issue 10: the reset vector, the ELF check that catches truncation, hostile files, parser properties --
def test_check_image_reset_vector_must_point_past_the_two_words_it_reads():
    image = bytearray(bootable_image())
    struct.pack_into("<I", image, 0x104, 0x10000105)  # into the vector table itself
    with pytest.raises(uf2.Uf2Error, match="reset vector 0x10000105 points outside the image"):
        uf2.check_image(0x10000000, bytes(image), "img")
    struct.pack_into("<I", image, 0x104, 0x10000109)  # a minimal image: code right after SP and reset
    uf2.check_image(0x10000000, bytes(image), "img")


def test_check_against_elf_names_truncation_and_difference():
    image = bootable_image(extra=0x300)
    segments = [(0x10000000, image[:0x200]), (0x10000200, image[0x200:])]
    uf2.check_against_elf(image, segments, "a.uf2", "a.elf")
    with pytest.raises(uf2.Uf2Error, match=r"a.uf2: image ends at 0x10000300 but a.elf loads .* image is truncated"):
        uf2.check_against_elf(image[:0x300], segments, "a.uf2", "a.elf")
    other = bytearray(image)
    other[0x250] ^= 1
    with pytest.raises(uf2.Uf2Error, match="differs from a.elf's segment at 0x10000200 first at 0x10000250"):
        uf2.check_against_elf(bytes(other), segments, "a.uf2", "a.elf")


PADDED_PROGRAM = r"""
    .thumb_func
    .global reset
reset:
    bl work
    bkpt #0
    .space 900
    .thumb_func
work:
    bx lr
"""


def test_cli_refuses_a_truncated_renumbered_uf2_when_the_elf_is_beside_it(tmp_path, capsys):
    """The issue's case: drop the last block and renumber; the format and the vectors are still fine, the program is
    not (on the chip `bl work` lands in erased flash). The ELF beside it tells."""
    from rp2040_sim import asm
    require_tool(*asm.TOOLS)
    paths = asm.build_image(PADDED_PROGRAM, tmp_path / "prog")
    full = paths["bin"].read_bytes()
    assert len(full) > 3 * 256
    assert uf2.main(["check", str(paths["uf2"])]) == 0
    assert "every loadable segment of" in capsys.readouterr().out
    cut = tmp_path / "prog" / "cut.uf2"
    last_page = (len(full) - 1) // 256 * 256
    cut.write_bytes(uf2.write_uf2(full[:last_page]))  # one block fewer, numbered 0..n-2 of n-1
    uf2.check_image(*uf2.read_uf2(cut.read_bytes()))  # the format and vector rules alone accept it
    assert uf2.main(["check", str(cut), "--elf", str(paths["elf"])]) == 1
    assert "the image is truncated" in capsys.readouterr().err
    assert uf2.main(["check", str(cut)]) == 0  # no ELF: says what it could not check
    assert "the bytes past the vector table are unchecked" in capsys.readouterr().out


def test_cli_refuses_devices_fifos_and_huge_files(tmp_path, capsys):
    assert uf2.main(["check", "/dev/zero"]) == 1
    assert "is a character device" in capsys.readouterr().err
    fifo = tmp_path / "pipe.uf2"
    os.mkfifo(fifo)
    assert uf2.main(["check", str(fifo)]) == 1  # opened non-blocking: no wait for a writer
    assert "is a FIFO" in capsys.readouterr().err
    huge = tmp_path / "huge.uf2"
    with open(huge, "wb") as f:
        f.truncate(uf2.MAX_UF2_BYTES + 512)
    assert uf2.main(["check", str(huge)]) == 1
    assert "over the 4,194,304-byte limit for a UF2 file" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1536))
def test_reader_property_arbitrary_bytes_only_uf2_errors(data):
    try:
        base, image = uf2.read_uf2(data, "fuzz.uf2")
    except uf2.Uf2Error:
        return
    uf2.write_uf2(image, base)  # anything accepted is a valid flash image


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 512 - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_reader_property_mutated_uf2(mutations):
    """Byte mutations of a valid 3-block UF2: rejected with Uf2Error, or accepted with each payload taken verbatim
    from its block (spec: bytes 32..287) and the image passing or failing check_image cleanly."""
    data = bytearray(uf2.write_uf2(bootable_image(extra=500)))
    for offset, value in mutations:
        data[offset] = value
    try:
        base, image = uf2.read_uf2(bytes(data), "fuzz.uf2")
    except uf2.Uf2Error:
        return
    assert image == b"".join(data[i * 512 + 32:i * 512 + 288] for i in range(3))
    try:
        uf2.check_image(base, image, "fuzz.uf2")
    except uf2.Uf2Error:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=0x200))
def test_check_image_property_only_uf2_errors(tail):
    try:
        uf2.check_image(0x10000000, uf2.boot2_with_crc(b"") + tail, "fuzz")
    except uf2.Uf2Error:
        pass
