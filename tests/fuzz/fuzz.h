/* fuzz.h - the entry point every fuzz target defines, and the check that
 * stops a run when a property fails
 *
 * DESIGN: each fuzz_<target>.c defines LLVMFuzzerTestOneInput only. Built
 * with clang and -DORDERD_FUZZ=ON it links libFuzzer's main and is fuzzed;
 * in every other build it links replay_main.c, which feeds it the
 * committed corpus and regression inputs once each, so a crash that was
 * found and fixed stays fixed even where there is no clang.
 */
#ifndef OD_FUZZ_H
#define OD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One input; returns 0 (libFuzzer reserves other values). Aborts when a
 * property does not hold, which libFuzzer reports as a crash. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): release builds define NDEBUG, and a fuzz target must check
 * its properties in every build. */
#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
