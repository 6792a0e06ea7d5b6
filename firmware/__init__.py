"""firmware: C runtime and kernels, code generation, cross-compilation and UF2 images for the RP2040."""
