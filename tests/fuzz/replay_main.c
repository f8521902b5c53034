/* replay_main.c - runs a fuzz target once over every file of the given
 * directories, for builds without libFuzzer
 *
 * DESIGN: the arguments look like libFuzzer's (options starting with '-'
 * are ignored, directories are read in name order), so CTest runs either
 * kind of binary with the same command line. Each input is copied into a
 * buffer of exactly its size, so a read past its end is caught by ASan as
 * it would be under libFuzzer. A directory that does not exist is skipped
 * (git keeps no empty regression directory), but a run that found no
 * input at all fails: a replay that checks nothing must not pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads path whole into a malloc'ed buffer of its exact size (one byte
 * when empty, so malloc never returns NULL for a valid file); -1 on error. */
static int
read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf = NULL;
    int rc = -1;

    if (f == NULL || fstat(fileno(f), &st) != 0)
        goto out;
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL ||
        fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        goto out;
    *out = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (f != NULL)
        fclose(f);
    return rc;
}

static int
replay_one(const char *path, long *count)
{
    uint8_t *data;
    size_t len;

    if (read_file(path, &data, &len) < 0) {
        fprintf(stderr, "could not read %s: %s\n", path, strerror(errno));
        return -1;
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    (*count)++;
    return 0;
}

static int
skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int
replay_dir(const char *dir, long *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dot, alphasort), rc = 0;

    if (n < 0) {
        fprintf(stderr, "could not read directory %s: %s\n", dir,
                strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            replay_one(path, count) < 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    long count = 0;
    struct stat st;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        if (stat(argv[i], &st) != 0) {
            if (errno == ENOENT) {
                printf("%s: no such directory, skipped\n", argv[i]);
                continue;
            }
            fprintf(stderr, "could not stat %s: %s\n", argv[i],
                    strerror(errno));
            return EXIT_FAILURE;
        }
        if ((S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count)
                                 : replay_one(argv[i], &count)) < 0)
            return EXIT_FAILURE;
    }
    if (count == 0) {
        fprintf(stderr, "no input to replay\n");
        return EXIT_FAILURE;
    }
    printf("replayed %ld inputs\n", count);
    return EXIT_SUCCESS;
}
