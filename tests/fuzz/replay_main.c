/* replay_main.c - runs a fuzz target without libFuzzer: every file in the
 * folders given on the command line goes through LLVMFuzzerTestOneInput once,
 * plus a deterministic set of truncations and byte flips of each, so CTest
 * replays the corpus and the tests/data/bad files on every build, under the
 * sanitizers too. A crash fails the test; a clean pass prints the count. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long g_runs;

static void run_mutations(const uint8_t *buf, size_t n)
{
    LLVMFuzzerTestOneInput(buf, n);
    g_runs++;
    if (n == 0)
        return;
    uint8_t *m = malloc(n);
    if (!m)
        return;
    /* Truncations at a spread of points. */
    for (int k = 1; k <= 16; k++) {
        size_t cut = n * (size_t)k / 17;
        memcpy(m, buf, cut);
        LLVMFuzzerTestOneInput(m, cut);
        g_runs++;
    }
    /* Byte flips with a fixed seed: same inputs every run. */
    uint32_t seed = 2166136261u;
    for (int k = 0; k < 64; k++) {
        memcpy(m, buf, n);
        for (int j = 0; j < 4; j++) {
            seed = seed * 1664525u + 1013904223u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1664525u + 1013904223u;
            m[at] = (uint8_t)(seed >> 24);
        }
        LLVMFuzzerTestOneInput(m, n);
        g_runs++;
    }
    free(m);
}

static void replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        if (!d)
            return;
        while ((e = readdir(d))) {
            char sub[4096];
            if (e->d_name[0] == '.')
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            replay_path(sub);
        }
        closedir(d);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t cap = (size_t)st.st_size, n;
    uint8_t *buf = malloc(cap ? cap : 1);
    n = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (buf)
        run_mutations(buf, n);
    free(buf);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        replay_path(argv[i]);
    printf("replay: %ld inputs, 0 crashes\n", g_runs);
    return 0;
}
