"""rp2040_sim's own ROM, exercised by a test program that looks routines up through the ROM header as firmware
does (rp2040_sim/rom_harness.py): the header, the lookup, bit operations, memset/memcpy, the soft-float and
soft-double tables against Python's float and numpy's float32 (bit for bit, subnormals, infinities and NaN
included), the ROM's reset path to boot2, reset_to_usb_boot, and `--bootrom`."""

import math
import struct

import numpy as np
import pytest

from rp2040_sim import asm, rom
from rp2040_sim.__main__ import main
from rp2040_sim.core import Rp2040
from tests.conftest import require_tool
from rp2040_sim.rom_harness import RomCaller, code

F32 = struct.Struct("<f")
U32 = struct.Struct("<I")


def fbits(x) -> int:
    return U32.unpack(F32.pack(np.float32(x)))[0]


def ffrom(u) -> np.float32:
    return np.frombuffer(U32.pack(u), dtype=np.float32)[0]


def dwords(x) -> tuple[int, int]:
    u = struct.unpack("<Q", struct.pack("<d", x))[0]
    return u & 0xFFFFFFFF, u >> 32


def dfrom(lo, hi) -> float:
    return struct.unpack("<d", struct.pack("<Q", lo | hi << 32))[0]


@pytest.fixture(scope="module")
def caller(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    return RomCaller(tmp_path_factory.mktemp("rom"))


RNG = np.random.default_rng(2040)
SPECIAL_F = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-45, -1e-45, 1.17549435e-38, 5.877472e-39, 3.4028235e38,
             -3.4028235e38, math.inf, -math.inf, math.nan, 1e30, 1e-30, 0.1, 2.0 ** 24, 16777217.0]


def float_samples(n):
    """Random bit patterns (every exponent, subnormals and NaNs included) plus hand-picked specials."""
    bits = RNG.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    values = list(bits.view(np.float32)) + [np.float32(v) for v in SPECIAL_F]
    return [np.float32(v) for v in values]


def double_samples(n):
    bits = RNG.integers(0, 1 << 63, n, dtype=np.uint64) | (RNG.integers(0, 2, n, dtype=np.uint64) << 63)
    specials = [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.0, -0.0, 1.0, math.inf,
                -math.inf, math.nan, 0.1, 3.0]
    return list(bits.view(np.float64).astype(float)) + specials


def same_f32(got: np.float32, want: np.float32) -> bool:
    return (np.isnan(got) and np.isnan(want)) or fbits(got) == fbits(want)


def same_f64(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or struct.pack("<d", got) == struct.pack("<d", want)


# -- header and lookup -------------------------------------------------------------------------------------------
FUNCTIONS = ("P3", "R3", "L3", "T3", "MS", "S4", "MC", "C4", "UB", "DT", "WV", "IF", "EX", "RE", "RP", "FC", "CX")


def test_header_as_datasheet_2_8_3():
    image = rom.image()
    sp, reset = struct.unpack_from("<II", image, 0)
    assert sp == 0x20041F00 and reset & 1 and reset < 0x4000
    assert image[0x10:0x13] == b"Mu\x01" and image[0x13] == 3
    func_table, data_table, lookup = struct.unpack_from("<HHH", image, 0x14)
    assert lookup & 1 and func_table and data_table and len(image) == 0x4000


def test_every_function_code_is_found_with_its_thumb_bit(caller):
    for name in FUNCTIONS:
        _, stop, fn = caller.call([], func=name)
        assert stop.kind == "halt" and fn & 1 and fn < 0x4000, name
    _, stop, fn = caller.call([], func="ZZ")                    # unknown codes give 0
    assert fn == 0 and stop.regs["r0"] == 1


def test_python_lookup_matches_the_roms_and_rom_cycles_are_named_bootrom(caller, tmp_path):
    # rom.lookup (used to find wait_for_vector's launch branch) agrees with the ROM's own rom_table_lookup
    for name in FUNCTIONS:
        assert rom.lookup(rom.image(), name) == caller.call([], func=name)[2] & ~1, name
    assert rom.lookup(rom.image(), "ZZ") is None
    assert int.from_bytes(rom.image()[rom.launch_branch(rom.image()):][:2], "little") == rom.BLX_R6
    # cycles spent in ROM routines appear in a run's profile as "bootrom", not as raw addresses
    from rp2040_sim import runner
    popcount = rom.lookup(rom.image(), "P3") | 1
    image = asm.build_image(f"    .thumb_func\n    .global reset\nreset:\n    ldr r0, =0xF0F0\n"
                            f"    ldr r3, =0x{popcount:x}\n    blx r3\n    bkpt #0\n    .ltorg\n", tmp_path)
    result, _ = runner.run_image(image["uf2"])
    assert result.stop.ok and result.stop.regs["r0"] == 8
    assert "bootrom" in dict(result.functions) and not any(n.startswith("0x0000") for n, _ in result.functions)


def test_data_table_float_tables_and_sizes():
    image = rom.image()
    data_table = struct.unpack_from("<H", image, 0x16)[0]
    entries = {}
    for off in range(data_table, 0x4000, 4):
        c, ptr = struct.unpack_from("<HH", image, off)
        if c == 0:
            break
        entries[c] = ptr
    sf, sd, fz = entries[code("SF")], entries[code("SD")], entries[code("FZ")]
    assert fz == sf - 2 and image[fz] == 32 and image[sd - 2] == 32   # 32 entries: the SDK copies 0x80 bytes
    assert all(struct.unpack_from("<I", image, t + 4 * i)[0] & 1 for t in (sf, sd) for i in range(32))
    assert b"rp2040_sim ROM" in image[entries[code("CR")]:entries[code("CR")] + 40]


# -- bit operations, memset/memcpy ---------------------------------------------------------------------------------
def test_bit_operations(caller):
    values = [0, 1, 0x80000000, 0xFFFFFFFF, 0x00F0F000] + [int(v) for v in RNG.integers(0, 1 << 32, 200)]
    rows = [(v,) for v in values]
    expect = {"P3": lambda v: bin(v).count("1"),
              "R3": lambda v: int(f"{v:032b}"[::-1], 2),
              "L3": lambda v: 32 - v.bit_length(),
              "T3": lambda v: (v & -v).bit_length() - 1 if v else 32}
    for name, f in expect.items():
        out, stop, _ = caller.call(rows, func=name)
        assert stop.kind == "halt"
        assert [o[0] for o in out] == [f(v) for v in values], name


def test_memset_memcpy_variants(caller):
    sim = Rp2040()
    src = bytes(RNG.integers(0, 256, 300, dtype=np.uint8))
    sim.write(0x20030000, src)
    sim.write(0x20031000, b"\xAA" * 0x400)
    out, stop, _ = caller.call([(0x20031003, 0x20030001, 257)], func="MC", sim=sim)
    assert stop.kind == "halt" and out[0][0] == 0x20031003            # returns dst
    assert sim.read(0x20031000, 300) == b"\xAA" * 3 + src[1:258] + b"\xAA" * 40
    out, _, _ = caller.call([(0x20031100, 0x20030000, 64)], func="C4", sim=sim)
    assert sim.read(0x20031100, 68) == src[:64] + b"\xAA" * 4
    out, _, _ = caller.call([(0x20031201, 0x15A, 5)], func="MS", sim=sim)
    assert out[0][0] == 0x20031201 and sim.read(0x20031200, 7) == b"\xAA" + b"\x5A" * 5 + b"\xAA"
    caller.call([(0x20031300, 0x7E, 8)], func="S4", sim=sim)
    assert sim.read(0x20031300, 12) == b"\x7E" * 8 + b"\xAA" * 4


# -- soft float ('SF') against numpy float32, bit for bit ------------------------------------------------------
SF_BINARY = {0x00: np.add, 0x04: np.subtract, 0x08: np.multiply, 0x0C: np.divide}


@pytest.mark.parametrize("offset", sorted(SF_BINARY))
def test_float_arithmetic_is_ieee(caller, offset):
    a, b = float_samples(500), float_samples(500)
    b = b[len(b) // 2:] + b[:len(b) // 2]
    out, stop, _ = caller.call([(fbits(x), fbits(y)) for x, y in zip(a, b)], table="SF", offset=offset)
    assert stop.kind == "halt"
    with np.errstate(all="ignore"):
        for x, y, o in zip(a, b, out):
            want = SF_BINARY[offset](np.float32(x), np.float32(y))
            assert same_f32(ffrom(o[0]), want), (offset, x, y, ffrom(o[0]), want)


def test_float_sqrt_is_correctly_rounded(caller):
    xs = float_samples(700)
    out, _, _ = caller.call([(fbits(x),) for x in xs], table="SF", offset=0x18)
    with np.errstate(all="ignore"):
        for x, o in zip(xs, out):
            assert same_f32(ffrom(o[0]), np.sqrt(np.float32(x))), x


SD_BINARY = {0x00: lambda x, y: x + y, 0x04: lambda x, y: x - y, 0x08: lambda x, y: x * y,
             0x0C: lambda x, y: x / y if y else (math.nan if x == 0 or math.isnan(x) else
                                                 math.copysign(math.inf, x) * math.copysign(1, y))}


@pytest.mark.parametrize("offset", sorted(SD_BINARY))
def test_double_arithmetic_is_ieee(caller, offset):
    a, b = double_samples(400), double_samples(400)
    b = b[len(b) // 2:] + b[:len(b) // 2]
    out, stop, _ = caller.call([(*dwords(x), *dwords(y)) for x, y in zip(a, b)], table="SD", offset=offset)
    assert stop.kind == "halt"
    for x, y, o in zip(a, b, out):
        with np.errstate(all="ignore"):
            want = float(SD_BINARY[offset](np.float64(x), np.float64(y)))
        assert same_f64(dfrom(o[0], o[1]), want), (offset, x, y, dfrom(o[0], o[1]), want)


def test_double_sqrt_is_correctly_rounded(caller):
    xs = double_samples(500) + [float(v) for v in RNG.uniform(0, 1e6, 200)]
    out, _, _ = caller.call([dwords(x) for x in xs], table="SD", offset=0x18)
    with np.errstate(all="ignore"):
        for x, o in zip(xs, out):
            assert same_f64(dfrom(o[0], o[1]), float(np.sqrt(np.float64(x)))), x


def _floor_clamp(x, n, lo, hi):
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return hi if x > 0 else lo
    if abs(x) >= 2.0 ** 70:
        return hi if x > 0 else lo
    return max(lo, min(hi, math.floor(math.ldexp(x, n))))


def test_float_to_integer_rounds_down_and_clamps(caller):
    xs = [float(v) for v in float_samples(300)] + [-0.5, -1.5, 2.5, -2147483648.0, 2147483648.0, -1e-40]
    cases = [(0x1C, 0, -2**31, 2**31 - 1, 32), (0x24, 0, 0, 2**32 - 1, 32), (0x20, 5, -2**31, 2**31 - 1, 32),
             (0x28, 3, 0, 2**32 - 1, 32), (0x6C, 0, -2**63, 2**63 - 1, 64), (0x74, 0, 0, 2**64 - 1, 64),
             (0x70, 7, -2**63, 2**63 - 1, 64)]
    for offset, n, lo, hi, bits in cases:
        out, _, _ = caller.call([(fbits(x), n) for x in xs], table="SF", offset=offset)
        for x, o in zip(xs, out):
            got = o[0] | (o[1] << 32 if bits == 64 else 0)
            assert got == _floor_clamp(x, n, lo, hi) % (1 << bits), (offset, x, got)


def test_double_to_integer_rounds_down_and_clamps(caller):
    xs = double_samples(300) + [-0.5, -1.5, 2.5, -9.3e18, 9.3e18, 4294967295.5]
    cases = [(0x1C, 0, -2**31, 2**31 - 1, 32), (0x24, 0, 0, 2**32 - 1, 32), (0x6C, 0, -2**63, 2**63 - 1, 64),
             (0x78, 4, 0, 2**64 - 1, 64)]
    for offset, n, lo, hi, bits in cases:
        out, _, _ = caller.call([(*dwords(x), n) for x in xs], table="SD", offset=offset)
        for x, o in zip(xs, out):
            got = o[0] | (o[1] << 32 if bits == 64 else 0)
            assert got == _floor_clamp(x, n, lo, hi) % (1 << bits), (offset, x, got)


def test_integer_to_float_rounds_to_nearest(caller):
    ints = [0, 1, -1, 2**31 - 1, -2**31, 16777217, -16777219] + [int(v) for v in RNG.integers(-2**31, 2**31, 200)]
    out, _, _ = caller.call([(i & 0xFFFFFFFF,) for i in ints], table="SF", offset=0x2C)
    assert all(ffrom(o[0]) == np.float32(i) for i, o in zip(ints, out))
    out, _, _ = caller.call([(i & 0xFFFFFFFF, 8) for i in ints], table="SF", offset=0x30)     # fix2float
    assert all(ffrom(o[0]) == np.float32(i) / np.float32(256) for i, o in zip(ints, out))
    longs = [2**63 - 1, -2**63, 2**53 + 1, 3] + [int(v) for v in RNG.integers(-2**63, 2**63 - 1, 200)]
    out, _, _ = caller.call([(v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF) for v in longs], table="SF", offset=0x5C)
    assert all(ffrom(o[0]) == np.float32(v) for v, o in zip(longs, out))    # numpy rounds the exact int once
    out, _, _ = caller.call([(v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF) for v in longs], table="SD", offset=0x5C)
    assert all(dfrom(o[0], o[1]) == float(v) for v, o in zip(longs, out))


def test_float_double_conversions(caller):
    fs = float_samples(300)
    out, _, _ = caller.call([(fbits(x),) for x in fs], table="SF", offset=0x7C)
    assert all(same_f64(dfrom(o[0], o[1]), float(x)) for x, o in zip(fs, out))
    ds = double_samples(300)
    out, _, _ = caller.call([dwords(x) for x in ds], table="SD", offset=0x7C)
    with np.errstate(all="ignore"):
        assert all(same_f32(ffrom(o[0]), np.float32(x)) for x, o in zip(ds, out))


def test_compare_value_and_flags(caller):
    pairs = [(1.0, 2.0), (2.0, 1.0), (3.0, 3.0), (-0.0, 0.0), (-math.inf, 1.0), (math.nan, 1.0)]
    want = [-1, 1, 0, 0, -1, 1]                                    # unordered compares as "greater"
    for table, enc in (("SF", lambda x: (fbits(x),)), ("SD", dwords)):
        for offset in (0x10, 0x14, 0x54):
            rows = [(*enc(a), *enc(b)) if table == "SD" else (fbits(a), fbits(b)) for a, b in pairs]
            out, _, _ = caller.call(rows, table=table, offset=offset)
            for w, o in zip(want, out):
                n, z, c = o[4] >> 31 & 1, o[4] >> 30 & 1, o[4] >> 29 & 1
                assert (o[0] if o[0] < 2**31 else o[0] - 2**32) == w
                assert (n, z, c) == {-1: (1, 0, 0), 0: (0, 1, 1), 1: (0, 0, 1)}[w], (table, offset, w)


def test_transcendental_functions_match_python_math(caller):
    xs = [float(v) for v in RNG.uniform(-100, 100, 150)] + [0.0, 1e-3, 0.5, 1.0, math.pi / 4, 3.0]
    pos = [float(v) for v in 10.0 ** RNG.uniform(-30, 30, 150)] + [1.0, 2.0, 0.5]
    small = [float(v) for v in RNG.uniform(-80, 80, 150)]
    for table, enc, dec, tol in (("SD", dwords, lambda o: dfrom(o[0], o[1]), 1e-14),
                                 ("SF", lambda x: (fbits(x),), lambda o: float(ffrom(o[0])), 3e-7)):
        rnd = (lambda v: float(np.float32(v))) if table == "SF" else (lambda v: v)
        for offset, f, inputs in ((0x3C, math.cos, xs), (0x40, math.sin, xs), (0x44, math.tan, xs),
                                  (0x4C, math.exp, small), (0x50, math.log, pos)):
            inputs = [rnd(x) for x in inputs]
            out, _, _ = caller.call([enc(x) for x in inputs], table=table, offset=offset)
            for x, o in zip(inputs, out):
                want = f(x)
                assert abs(dec(o) - want) <= tol * max(1.0, abs(want)), (table, hex(offset), x, dec(o), want)
        ys = [rnd(v) for v in RNG.uniform(-5, 5, 100)]
        out, _, _ = caller.call([(*enc(y), *enc(x)) for y, x in zip(ys, xs)], table=table, offset=0x58)
        for y, x, o in zip(ys, xs, out):
            assert abs(dec(o) - math.atan2(y, rnd(x))) <= tol * 4, (table, y, x)
    # fsin also returns cos in r1; dsin returns cos in r2:r3 (the SDK's sincos relies on it)
    out, _, _ = caller.call([(fbits(0.5),)], table="SF", offset=0x40)
    assert abs(float(ffrom(out[0][1])) - math.cos(0.5)) < 1e-7
    out, _, _ = caller.call([dwords(0.5)], table="SD", offset=0x48)
    assert abs(dfrom(out[0][2], out[0][3]) - math.cos(0.5)) < 1e-15


# -- reset path, reset_to_usb_boot, debug trampoline, --bootrom ----------------------------------------------------
@pytest.fixture(scope="module")
def tiny_image(tmp_path_factory):
    require_tool("arm-none-eabi-as")
    return asm.build_image(".thumb_func\nreset:\n    movs r0, #42\n    bkpt #0\n", tmp_path_factory.mktemp("tiny"))


def test_rom_reset_loads_boot2_checks_crc_and_enters_it(tiny_image):
    sim = Rp2040()
    sim.load_flash(tiny_image["bin"].read_bytes())
    sp, reset = sim.read_u32(0), sim.read_u32(4)                 # what the core loads at reset
    sim.set_regs(sp=sp)
    stop = sim.run(reset)
    assert stop.kind == "halt" and stop.regs["r0"] == 42
    assert sim.read(0x20041F00, 256) == tiny_image["bin"].read_bytes()[:256]
    bad = bytearray(tiny_image["bin"].read_bytes())
    bad[10] ^= 0xFF                                             # boot2 CRC now wrong: the chip goes to USB boot
    sim = Rp2040()
    sim.load_flash(bytes(bad))
    sim.set_regs(sp=sp)
    stop = sim.run(reset)
    assert stop.kind == "usb boot" and "USB boot" in stop.detail


def test_reset_to_usb_boot_stops_with_a_clear_message(caller):
    out, stop, fn = caller.call([(0x1234, 0x5)], func="UB")
    assert stop.kind == "usb boot" and "reboot into USB boot" in stop.detail and stop.pc < 0x4000
    sim = Rp2040()
    caller.call([(0x1234, 0x5)], func="UB", sim=sim)
    assert sim.watchdog.regs[0x0C] == 0x1234 and sim.watchdog.regs[0x10] == 5      # SCRATCH0/1


def test_bootrom_option_validates_the_image(tiny_image, tmp_path, capsys):
    uf2 = str(tiny_image["uf2"])
    good = tmp_path / "rom.bin"
    good.write_bytes(rom.image())
    assert main(["run", uf2, "--bootrom", str(good), "--quiet"]) == 0
    for name, data, message in (("short.bin", rom.image()[:4096], "exactly 16384 bytes"),
                                ("long.bin", rom.image() + b"\0", "more than 16384 bytes"),
                                ("nomagic.bin", b"\0" * 16384, "not the RP2040 bootrom magic")):
        (tmp_path / name).write_bytes(data)
        assert main(["run", uf2, "--bootrom", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert message in err and name in err
    assert main(["run", uf2, "--bootrom", str(tmp_path / "missing.bin")]) == 1
    assert "no such file" in capsys.readouterr().err


# -- building the ROM ----------------------------------------------------------------------------------------------
def test_rom_build_is_cached_by_source_hash_and_errors_name_the_fix(tmp_path, monkeypatch):
    require_tool("arm-none-eabi-gcc")
    import shutil
    monkeypatch.setenv("PICOZOO_NATIVE_CACHE", str(tmp_path / "cache"))
    built = rom.build()
    assert built.parent == tmp_path / "cache" / "picozoo" / "rp2040_sim" and built.read_bytes() == rom.image()[
        :built.stat().st_size]
    mtime = built.stat().st_mtime_ns
    assert rom.build() == built and built.stat().st_mtime_ns == mtime          # cached: not rebuilt
    src = tmp_path / "src"
    shutil.copytree(rom.HERE, src, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(rom, "HERE", src)
    (src / "bits.c").write_text((src / "bits.c").read_text() + "\nint broken(void) { return }\n")
    assert rom.image_path() != built                                          # the source hash moved
    with pytest.raises(rom.RomError, match="building the rp2040_sim ROM failed.*bits.c"):
        rom.build()
    monkeypatch.setattr(rom.shutil, "which", lambda name: None)
    with pytest.raises(rom.RomError, match="arm-none-eabi-gcc not found.*apt-get install -y gcc-arm-none-eabi"):
        rom.build()


def test_rom_larger_than_16k_is_refused(tmp_path, monkeypatch):
    require_tool("arm-none-eabi-gcc")
    monkeypatch.setenv("PICOZOO_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setattr(rom, "ROM_SIZE", 1024)
    with pytest.raises(rom.RomError, match="over the 1024-byte ROM"):
        rom.build(force=True)
