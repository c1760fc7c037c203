/* test_store_crash.c - crash safety (clause 4.7.2): kill -9 at random
 * moments loses nothing acknowledged and leaves no corrupt state.
 *
 * Each round forks a child that opens the store, authenticates with a
 * session token and makes edits as fast as it can - a new label-map
 * version whose voxels and note encode the edit number, a display
 * document, a mesh - writing one acknowledgement line to a pipe after each
 * call returned R3D_OK (that is what "acknowledged to the user" means).
 * The parent kills it with SIGKILL after a random delay from its "ready"
 * line (one round in five from its start, before it has even opened the
 * store), reads every acknowledgement, reopens the
 * store and checks that
 *   - r3d_store_check passes (SQLite integrity, every blob and its hash,
 *     version chains, the audit chain),
 *   - every acknowledged version exists, loads, and holds exactly the
 *     voxels and note that edit wrote,
 *   - the display document is at least as new as the last acknowledged one,
 *     and each acknowledged mesh is there byte for byte,
 *   - the user's open case and its head version resume at (or after) the
 *     last acknowledged edit.
 * Runs at least 60 rounds, then until R3D_CRASH_SECONDS (default 25) or
 * 400 rounds; each round's verdict is printed when it fails. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "test_store_fixture.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- the child ------------------------------------------------------------------ */

static void child(const char *store, const char *token, r3d_id case_id, int round, int fd)
{
    r3d_store *s = NULL;
    if (r3d_store_open(store, NULL, &s, NULL))
        _exit(10);
    r3d_actor a;
    if (r3d_session_check(s, token, "crash child", &a, NULL))
        _exit(11);
    r3d_labelmap *m = fx_labels(s, &a, case_id, 10);
    if (!m)
        _exit(12);
    uint16_t *p = m->vol->voxels;
    if (write(fd, "R\n", 2) != 2) /* ready: the parent times its kill from here */
        _exit(15);
    r3d_provenance prov = {"edit.brush", "{\"radius_mm\":3}"};
    for (int n = 1;; n++) {
        int edit = round * 100000 + n;
        char line[128], note[64];
        r3d_error e = R3D_ERROR_INIT;
        int ok = 0;
        switch (n % 3) {
        case 1: { /* a label-map version */
            p[0] = (uint16_t)(edit & 0xffff);
            p[1] = (uint16_t)(edit >> 16);
            snprintf(note, sizeof note, "edit %d", edit);
            r3d_id v = 0;
            if (r3d_labels_commit(s, &a, case_id, m, note, &prov, &v, &e) == R3D_OK) {
                snprintf(line, sizeof line, "L %d %lld\n", edit, (long long)v);
                ok = 1;
            }
            break;
        }
        case 2: { /* the display document */
            char json[64];
            snprintf(json, sizeof json, "{\"edit\":%d}", edit);
            if (r3d_case_doc_put(s, &a, case_id, "display", json, &e) == R3D_OK) {
                snprintf(line, sizeof line, "D %d\n", edit);
                ok = 1;
            }
            break;
        }
        default: { /* a mesh of the head version */
            char bytes[64], params[64];
            snprintf(bytes, sizeof bytes, "mesh of edit %d", edit);
            snprintf(params, sizeof params, "{\"edit\":%d}", edit);
            if (r3d_mesh_put(s, &a, case_id, 0, 1, "stl", params, bytes, strlen(bytes), &e) ==
                R3D_OK) {
                snprintf(line, sizeof line, "M %d\n", edit);
                ok = 1;
            }
            break;
        }
        }
        if (!ok) {
            /* a failure is an answer too (never a lie): report and stop */
            dprintf(fd, "E %s\n", e.msg);
            _exit(13);
        }
        if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
            _exit(14);
    }
}

/* ---- the parent's checks ----------------------------------------------------------- */

typedef struct acks {
    int edit[4096];
    r3d_id version[4096];
    char kind[4096];
    int n;
    char error[512];
} acks;

/* prefix: the lines the parent read before the kill */
static void read_acks(int fd, const char *prefix, acks *k)
{
    static char buf[1 << 18];
    size_t used = strlen(prefix);
    memcpy(buf, prefix, used);
    ssize_t r;
    while ((r = read(fd, buf + used, sizeof buf - 1 - used)) > 0)
        used += (size_t)r;
    buf[used] = 0;
    k->n = 0;
    k->error[0] = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* a line cut by the kill has no newline: strtok still gives it, so
         * only complete records count (each ack is one write(2) < PIPE_BUF) */
        if (line[0] == 'R')
            continue;
        if (line[0] == 'E') {
            snprintf(k->error, sizeof k->error, "%s", line + 2);
            continue;
        }
        if (k->n >= 4096)
            break;
        long long v = 0;
        int edit = 0;
        char kind = line[0];
        if (kind == 'L' && sscanf(line + 2, "%d %lld", &edit, &v) != 2)
            continue;
        if ((kind == 'D' || kind == 'M') && sscanf(line + 2, "%d", &edit) != 1)
            continue;
        k->kind[k->n] = kind;
        k->edit[k->n] = edit;
        k->version[k->n] = v;
        k->n++;
    }
}

static int verify_round(const char *store, const char *token, r3d_id case_id, const acks *k,
                        int *last_doc_edit, r3d_id *last_version)
{
    int bad = 0;
    r3d_store *s = NULL;
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_store_open(store, NULL, &s, &e)) {
        fprintf(stderr, "    reopen failed: %s\n", e.msg);
        return 1;
    }
    char *rep = NULL;
    if (r3d_store_check(s, &rep, &e)) {
        fprintf(stderr, "    store check failed: %s\n%s\n", e.msg, rep ? rep : "");
        bad++;
    }
    free(rep);
    r3d_actor a;
    if (r3d_session_check(s, token, "crash parent", &a, &e)) {
        fprintf(stderr, "    session lost: %s\n", e.msg);
        r3d_store_close(s);
        return bad + 1;
    }
    for (int i = 0; i < k->n; i++) {
        if (k->kind[i] == 'L') {
            r3d_labelmap *m = NULL;
            if (r3d_labels_load(s, &a, case_id, k->version[i], &m, &e)) {
                fprintf(stderr, "    acknowledged version %lld lost: %s\n",
                        (long long)k->version[i], e.msg);
                bad++;
                continue;
            }
            const uint16_t *p = m->vol->voxels;
            int edit = p[0] | p[1] << 16;
            if (edit != k->edit[i]) {
                fprintf(stderr, "    version %lld holds edit %d, acknowledged as %d\n",
                        (long long)k->version[i], edit, k->edit[i]);
                bad++;
            }
            r3d_labelmap_free(m);
            *last_version = k->version[i];
        } else if (k->kind[i] == 'D') {
            *last_doc_edit = k->edit[i];
        } else {
            char params[64], want[64];
            snprintf(params, sizeof params, "{\"edit\":%d}", k->edit[i]);
            snprintf(want, sizeof want, "mesh of edit %d", k->edit[i]);
            uint8_t *b = NULL;
            size_t n = 0;
            /* the mesh belongs to the head at the time: find it in any version */
            r3d_version_info *vs = NULL;
            int nv = 0, found = 0;
            r3d_labels_versions(s, &a, case_id, &vs, &nv, NULL);
            for (int j = nv - 1; j >= 0 && !found && j >= nv - 50; j--) {
                if (r3d_mesh_get(s, &a, case_id, vs[j].id, 1, "stl", params, &b, &n, NULL) ==
                    R3D_OK) {
                    found = n == strlen(want) && memcmp(b, want, n) == 0;
                    free(b);
                }
            }
            free(vs);
            if (!found) {
                fprintf(stderr, "    acknowledged mesh of edit %d lost\n", k->edit[i]);
                bad++;
            }
        }
    }
    /* the newest document is at least the last acknowledged one */
    char *json = NULL;
    if (*last_doc_edit && r3d_case_doc_get(s, &a, case_id, "display", &json, &e) == R3D_OK) {
        cJSON *j = cJSON_Parse(json);
        int got = j ? cJSON_GetObjectItem(j, "edit") ? cJSON_GetObjectItem(j, "edit")->valueint : 0
                    : 0;
        cJSON_Delete(j);
        if (got < *last_doc_edit) {
            fprintf(stderr, "    display document at edit %d, acknowledged %d\n", got,
                    *last_doc_edit);
            bad++;
        }
    }
    free(json);
    /* the user's case resumes at (or after) the last acknowledged edit */
    r3d_id last_case = 0;
    r3d_case_info info;
    if (r3d_user_last_case(s, &a, &last_case, &e) || last_case != case_id) {
        fprintf(stderr, "    open case not resumed (%lld)\n", (long long)last_case);
        bad++;
    }
    if (r3d_case_get(s, &a, case_id, &info, &e) || info.head_version < *last_version) {
        fprintf(stderr, "    head version %lld is older than acknowledged %lld\n",
                (long long)info.head_version, (long long)*last_version);
        bad++;
    }
    r3d_store_close(s);
    return bad;
}

static void test_kill9(void)
{
    fx_store f;
    CHECK(fx_open(&f, NULL));
    r3d_id case_id = fx_import(&f);
    CHECK(case_id > 0);
    /* a session for the children: no password hashing per round */
    char token[65];
    r3d_actor a;
    r3d_error e = R3D_ERROR_INIT;
    CHECK_INT(r3d_login(f.s, "carl", FX_PASSWORD, "crash test", token, &a, &e), R3D_OK);
    r3d_labelmap *first = fx_labels(f.s, &a, case_id, 10);
    CHECK(first && r3d_labels_commit(f.s, &a, case_id, first, "first", NULL, NULL, &e) == 0);
    r3d_labelmap_free(first);
    r3d_store_close(f.s);
    f.s = NULL;

    const char *env = getenv("R3D_CRASH_SECONDS");
    double budget = env ? atof(env) : 25;
    double t0 = now_s();
    unsigned seed = (unsigned)time(NULL);
    fprintf(stderr, "  seed %u\n", seed);
    srand(seed);
    int rounds = 0, acked = 0, failed_rounds = 0, early_kills = 0, versions = 0;
    int last_doc = 0;
    double alive_s = 0; /* child time after "ready", and the acks in it */
    int alive_acks = 0;
    r3d_id last_version = 0;
    /* at least 60 rounds however slow the machine, then until the budget */
    while (rounds < 400 && (rounds < 60 || now_s() - t0 < budget)) {
        int fds[2];
        if (pipe(fds) != 0)
            break;
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(f.store, token, case_id, rounds + 1, fds[1]);
            _exit(0);
        }
        close(fds[1]);
        /* one round in five: kill during start-up (opening, job recovery,
         * first reads); otherwise wait until the child is ready, then kill
         * it a few edits in, wherever it is */
        int us, early = rand() % 5 == 0;
        char seen[4096] = "";
        if (early) {
            us = rand() % 30000;
        } else {
            /* the ready line and 0..4 acknowledgements: the kill lands
             * mid-work however slow the machine is */
            int want = 1 + rand() % 5, lines = 0;
            size_t n = 0;
            char c = 0;
            struct pollfd pf = {fds[0], POLLIN, 0};
            while (lines < want && n + 1 < sizeof seen && poll(&pf, 1, 10000) == 1 &&
                   read(fds[0], &c, 1) == 1) {
                seen[n++] = c;
                lines += c == '\n';
            }
            seen[n] = 0;
            /* up to about four edits' time, learnt from earlier rounds
             * (an edit is a few fsyncs: milliseconds here, far more on a
             * loaded machine or under a sanitizer) */
            double per_edit = alive_acks > 0 ? alive_s / alive_acks : 0.02;
            if (per_edit < 0.002)
                per_edit = 0.002;
            if (per_edit > 0.5)
                per_edit = 0.5;
            us = rand() % (int)(2e6 * per_edit);
        }
        usleep((useconds_t)us);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        acks k;
        read_acks(fds[0], seen, &k);
        close(fds[0]);
        if (!early) {
            int before = 0; /* acks seen before the delay started */
            for (const char *c = seen; *c; c++)
                before += *c == '\n';
            alive_s += us * 1e-6;
            alive_acks += k.n - (before - 1);
        }
        if (WIFEXITED(status)) {
            fprintf(stderr, "  round %d: child exited %d before the kill: %s\n", rounds,
                    WEXITSTATUS(status), k.error);
            failed_rounds++;
        }
        if (k.n == 0)
            early_kills++;
        acked += k.n;
        for (int i = 0; i < k.n; i++)
            versions += k.kind[i] == 'L';
        int bad = verify_round(f.store, token, case_id, &k, &last_doc, &last_version);
        if (bad) {
            fprintf(stderr, "  round %d (killed after %d us, %d acks): %d problems\n", rounds,
                    us, k.n, bad);
            failed_rounds++;
        }
        rounds++;
    }
    fprintf(stderr, "  about %.1f ms per edit\n", alive_acks ? 1e3 * alive_s / alive_acks : 0);
    fprintf(stderr, "  %d kill -9 rounds in %.1f s: %d acknowledged edits (%d label versions), "
            "%d rounds killed before any ack, %d rounds failed\n", rounds, now_s() - t0, acked,
            versions, early_kills, failed_rounds);
    CHECK((rounds - early_kills) * 2 >= rounds); /* most kills landed mid-work */
    CHECK(acked > rounds);
    CHECK_INT(failed_rounds, 0);
    fx_close(&f);
}

int main(void)
{
    RUN(test_kill9);
    return CHECK_DONE("test_store_crash");
}
