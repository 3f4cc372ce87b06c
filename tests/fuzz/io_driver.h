/* io_driver.h: main() of the I/O fuzz entries built without libFuzzer
 * (-DFUZZ_STANDALONE): NAME [COUNT [SEED]] runs COUNT random inputs made
 * by the entry's make_input from a seed; NAME FILE... runs those files
 * (tests/fuzz/regress-io). The entry includes it, then defines make_input,
 * which may use fuzz_next. */
#ifndef COGEN_FUZZ_IO_DRIVER_H
#define COGEN_FUZZ_IO_DRIVER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next number of a 64-bit LCG (its high bits are the good ones). */
static inline uint64_t fuzz_next(uint64_t *s) { return *s = *s * 6364136223846793005ull + 1442695040888963407ull; }

/* One random input in buf (at most cap bytes): its size. */
static size_t make_input(uint64_t *seed, uint8_t *buf, size_t cap);

int main(int argc, char **argv) {
    static uint8_t buf[1 << 16];
    if (argc > 1 && (argv[1][0] < '0' || argv[1][0] > '9')) {
        for (int i = 1; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f) {
                fprintf(stderr, "cannot open %s\n", argv[i]);
                return 1;
            }
            size_t len = fread(buf, 1, sizeof buf, f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, len);
        }
        printf("%s: %d files\n", argv[0], argc - 1);
        return 0;
    }
    long count = argc > 1 ? atol(argv[1]) : 2000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    for (long i = 0; i < count; i++) LLVMFuzzerTestOneInput(buf, make_input(&seed, buf, sizeof buf));
    printf("%s: %ld random inputs\n", argv[0], count);
    return 0;
}

#endif
