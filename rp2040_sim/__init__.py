"""rp2040_sim: a cycle-counting Unicorn RP2040 emulator that boots the UF2 we flash."""
