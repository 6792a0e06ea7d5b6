// Run one flash image in rp2040js (npm) the way rp2040_sim boots it, for benchmarks/emulator_speed.py.
//
//   node benchmarks/rp2040js_run.js RP2040JS_DIR ROM.bin FLASH.bin MAX_CYCLES
//
// The same bootrom (rp2040_sim's own, so ROM routines run the same code in both emulators), the image in flash,
// boot2 copied to 0x20041F00 and entered with SP 0x20041F00 and LR 0, as rp2040_sim/boot.py does. Runs until
// bkpt (rp2040js's onBreak) or MAX_CYCLES, and prints one JSON line: instructions, cycles (rp2040js's own cycle
// model), wall and CPU seconds of the run loop only, UART0 text, and whether it stopped at a bkpt.
'use strict';
const path = require('path');
const fs = require('fs');

const [dir, romPath, flashPath, maxCyclesArg] = process.argv.slice(2);
const { RP2040, ConsoleLogger, LogLevel } = require(path.join(path.resolve(dir), 'node_modules', 'rp2040js'));
const BOOT2_SRAM = 0x20041f00;
const NS_PER_CYCLE = 8;   // 125 MHz, as rp2040js's own Simulator ticks its clock

const mcu = new RP2040();
mcu.logger = new ConsoleLogger(LogLevel.Error);   // no per-SEV / unimplemented-register lines on stdout
const rom = fs.readFileSync(romPath);
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.length >> 2));
const image = fs.readFileSync(flashPath);
mcu.flash.set(image);
mcu.sram.set(image.subarray(0, 256), BOOT2_SRAM - 0x20000000);
let uart = '';
mcu.uart[0].onByte = (b) => { uart += String.fromCharCode(b); };
let halted = false;
mcu.onBreak = () => { halted = true; };
const core = mcu.core;
core.SP = BOOT2_SRAM;
core.LR = 0;
core.PC = BOOT2_SRAM;

const maxCycles = Number(maxCyclesArg);
const clock = mcu.clock;
let instructions = 0;
let cycles = 0;
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
while (!halted && cycles < maxCycles) {
  if (core.waiting) {                      // WFI/WFE: skip to the next alarm, as rp2040js's Simulator does
    const ns = clock.nanosToNextAlarm;
    if (!(ns > 0)) break;
    clock.tick(ns);
    cycles += Math.ceil(ns / NS_PER_CYCLE);
  } else {
    const c = core.executeInstruction();
    clock.tick(c * NS_PER_CYCLE);
    cycles += c;
    instructions++;
  }
}
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);       // all of node's threads (JIT, GC) during the loop
process.stdout.write(JSON.stringify({ instructions, cycles, wall_s: wall, cpu_s: (cpu.user + cpu.system) / 1e6, uart, halted }) + '\n');
