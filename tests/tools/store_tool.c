/* store_tool.c - drives the case store API from scripts (the e2e tests), for
 * the steps the CLI leaves to the server: import a study, commit a label
 * map, store a mesh file; and makes update packages signed with a key the
 * test generates (never the vendor's).
 *
 *   store_tool import  STORE USER INPUT            -> prints the case id
 *   store_tool labels  STORE USER CASE LABELS.nii.gz -> prints the version id
 *   store_tool mesh    STORE USER CASE VERSION LABEL FILE
 *   store_tool keypair PUBLIC_OUT SECRET_OUT
 *   store_tool pack    SECRET NAME VERSION PAYLOAD OUT
 * The password comes from R3D_PASSWORD; R3D_KEY_FILE as for recon3d. */
#include "r3d/nifti.h"
#include "r3d/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const r3d_error *e)
{
    fprintf(stderr, "store_tool: %s\n", e->msg);
    return 2;
}

static int open_login(const char *dir, const char *user, r3d_store **s, r3d_actor *a)
{
    r3d_store_opts o = {0, getenv("R3D_KEY_FILE")};
    r3d_error e = R3D_ERROR_INIT;
    char tok[65];
    const char *pw = getenv("R3D_PASSWORD");
    if (r3d_store_open(dir, &o, s, &e) || r3d_login(*s, user, pw ? pw : "", "store_tool", tok,
                                                    a, &e))
        return fail(&e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return fprintf(stderr, "usage: see the header of store_tool.c\n"), 1;
    r3d_error e = R3D_ERROR_INIT;
    r3d_store *s = NULL;
    r3d_actor a;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "import") && argc == 5) {
        if (open_login(argv[2], argv[3], &s, &a))
            return 2;
        r3d_id c = 0;
        if (r3d_case_import(s, &a, argv[4], NULL, &c, &e))
            return fail(&e);
        printf("%lld\n", (long long)c);
    } else if (!strcmp(cmd, "labels") && argc == 6) {
        if (open_login(argv[2], argv[3], &s, &a))
            return 2;
        r3d_volume *v = r3d_nifti_read(argv[5], &e);
        if (!v)
            return fail(&e);
        r3d_labelmap *m = calloc(1, sizeof *m);
        if (v->dtype != R3D_U16) { /* label files come as any integer type */
            r3d_volume *u = r3d_volume_new(v->dim, R3D_U16, &e);
            if (!u)
                return fail(&e);
            memcpy(u->ijk_to_lps, v->ijk_to_lps, sizeof v->ijk_to_lps);
            r3d_volume_update_spacing(u);
            for (int64_t i = 0; i < r3d_volume_nvox(v); i++)
                ((uint16_t *)u->voxels)[i] = (uint16_t)r3d_volume_get(v, i);
            r3d_volume_free(v);
            v = u;
        }
        m->vol = v;
        r3d_provenance p = {"import", "{\"source\":\"file\"}"};
        r3d_id ver = 0;
        if (r3d_labels_commit(s, &a, atoll(argv[4]), m, "imported labels", &p, &ver, &e))
            return fail(&e);
        r3d_labelmap_free(m);
        printf("%lld\n", (long long)ver);
    } else if (!strcmp(cmd, "mesh") && argc == 8) {
        if (open_login(argv[2], argv[3], &s, &a))
            return 2;
        uint8_t *b = NULL;
        size_t n = 0;
        if (r3d_file_read_all(argv[7], &b, &n, &e) ||
            r3d_mesh_put(s, &a, atoll(argv[4]), atoll(argv[5]), atoi(argv[6]), "stl",
                         "{\"smooth\":5}", b, n, &e))
            return fail(&e);
        free(b);
    } else if (!strcmp(cmd, "keypair") && argc == 4) {
        uint8_t pk[32], sk[64];
        if (sodium_init() < 0)
            return 2;
        crypto_sign_keypair(pk, sk);
        if (r3d_file_write_atomic(argv[2], pk, 32, &e) || r3d_file_write_atomic(argv[3], sk, 64, &e))
            return fail(&e);
    } else if (!strcmp(cmd, "pack") && argc == 7) {
        uint8_t *sk = NULL, *payload = NULL, *pkg = NULL;
        size_t skn = 0, pn = 0, n = 0;
        if (r3d_file_read_all(argv[2], &sk, &skn, &e) ||
            r3d_file_read_all(argv[5], &payload, &pn, &e))
            return fail(&e);
        if (skn != 64)
            return fprintf(stderr, "store_tool: secret key must be 64 bytes\n"), 2;
        if (r3d_update_pack(argv[3], argv[4], payload, pn, sk, &pkg, &n, &e) ||
            r3d_file_write_atomic(argv[6], pkg, n, &e))
            return fail(&e);
        free(sk);
        free(payload);
        free(pkg);
    } else {
        fprintf(stderr, "store_tool: unknown command or wrong arguments\n");
        return 1;
    }
    r3d_store_close(s);
    return 0;
}
