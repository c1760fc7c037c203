/* test_store_fixture.h - what the store tests share: a fresh store in a
 * temporary folder, the four users (one per role) logged in, a small
 * synthetic CT written as .nii.gz to import, and folder clean-up. */
#ifndef R3D_TEST_STORE_FIXTURE_H
#define R3D_TEST_STORE_FIXTURE_H

#include "r3d/nifti.h"
#include "r3d/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FX_PASSWORD "correct horse battery staple 42"

typedef struct fx_store {
    char dir[512];      /* temporary folder: store in dir/store */
    char store[600];
    r3d_store *s;
    r3d_actor admin, clin, rev, eng;
    char tok_admin[65], tok_clin[65], tok_rev[65], tok_eng[65];
} fx_store;

static int fx_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static inline void fx_rmtree(const char *dir)
{
    nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int fx_tmpdir(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/r3d-store-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(out) != NULL;
}

/* A 24x20x12 int16 "CT": air, a body of 40 HU and a bright block of 700 HU. */
static inline int fx_write_volume(const char *path)
{
    int64_t dim[4] = {24, 20, 12, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, NULL);
    if (!v)
        return 0;
    int16_t *p = v->voxels;
    for (int k = 0; k < 12; k++)
        for (int j = 0; j < 20; j++)
            for (int i = 0; i < 24; i++) {
                int body = (i - 12) * (i - 12) + (j - 10) * (j - 10) < 64;
                int bone = i >= 10 && i < 14 && j >= 8 && j < 12;
                p[(k * 20 + j) * 24 + i] = (int16_t)(bone ? 700 : body ? 40 : -1000);
            }
    v->ijk_to_lps[0][0] = 0.8;
    v->ijk_to_lps[1][1] = 0.8;
    v->ijk_to_lps[2][2] = 2.5;
    v->ijk_to_lps[0][3] = -10;
    r3d_volume_update_spacing(v);
    r3d_status st = r3d_nifti_write(v, path, NULL, NULL);
    r3d_volume_free(v);
    return st == R3D_OK;
}

static inline int fx_login(r3d_store *s, const char *name, char tok[65], r3d_actor *a)
{
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_login(s, name, FX_PASSWORD, "test", tok, a, &e)) {
        fprintf(stderr, "  login %s: %s\n", name, e.msg);
        return 0;
    }
    return 1;
}

/* A store with admin "ada", clinician "carl", reviewer "rita", engineer
 * "emil", all logged in. key_file may be NULL. */
static inline int fx_open(fx_store *f, const char *key_file)
{
    memset(f, 0, sizeof *f);
    if (!fx_tmpdir(f->dir, sizeof f->dir))
        return 0;
    snprintf(f->store, sizeof f->store, "%s/store", f->dir);
    r3d_store_opts o = {1, key_file};
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_store_open(f->store, &o, &f->s, &e)) {
        fprintf(stderr, "  open: %s\n", e.msg);
        return 0;
    }
    if (r3d_user_create(f->s, NULL, "ada", FX_PASSWORD, R3D_ROLE_ADMIN, &e) ||
        !fx_login(f->s, "ada", f->tok_admin, &f->admin)) {
        fprintf(stderr, "  setup: %s\n", e.msg);
        return 0;
    }
    if (r3d_user_create(f->s, &f->admin, "carl", FX_PASSWORD, R3D_ROLE_CLINICIAN, &e) ||
        r3d_user_create(f->s, &f->admin, "rita", FX_PASSWORD, R3D_ROLE_REVIEWER, &e) ||
        r3d_user_create(f->s, &f->admin, "emil", FX_PASSWORD, R3D_ROLE_ENGINEER, &e)) {
        fprintf(stderr, "  users: %s\n", e.msg);
        return 0;
    }
    return fx_login(f->s, "carl", f->tok_clin, &f->clin) &&
           fx_login(f->s, "rita", f->tok_rev, &f->rev) &&
           fx_login(f->s, "emil", f->tok_eng, &f->eng);
}

static inline void fx_close(fx_store *f)
{
    r3d_store_close(f->s);
    f->s = NULL;
    fx_rmtree(f->dir);
}

/* Import the synthetic volume as the clinician; returns the case id or 0. */
static inline r3d_id fx_import(fx_store *f)
{
    char path[700];
    snprintf(path, sizeof path, "%s/ct.nii.gz", f->dir);
    if (access(path, R_OK) != 0 && !fx_write_volume(path))
        return 0;
    r3d_id id = 0;
    r3d_error e = R3D_ERROR_INIT;
    if (r3d_case_import(f->s, &f->clin, path, NULL, &id, &e)) {
        fprintf(stderr, "  import: %s\n", e.msg);
        return 0;
    }
    return id;
}

/* A label map on the case's grid: value 1 where x < split, 2 elsewhere in
 * the body block. */
static inline r3d_labelmap *fx_labels(r3d_store *s, const r3d_actor *a, r3d_id case_id, int split)
{
    r3d_volume *img = NULL;
    if (r3d_case_image(s, a, case_id, &img, NULL))
        return NULL;
    r3d_labelmap *m = r3d_labelmap_new(img, NULL);
    r3d_volume_free(img);
    if (!m)
        return NULL;
    uint16_t *p = m->vol->voxels;
    int64_t nx = m->vol->dim[0], ny = m->vol->dim[1], nz = m->vol->dim[2];
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++)
            for (int64_t i = 0; i < nx; i++)
                if (i >= 4 && i < nx - 4 && j >= 4 && j < ny - 4)
                    p[(k * ny + j) * nx + i] = i < split ? 1 : 2;
    r3d_label l1 = {1, "liver", "肝脏", {200, 80, 60}}, l2 = {2, "spleen", "脾脏", {90, 20, 160}};
    r3d_label_table_add(&m->table, &l1, NULL);
    r3d_label_table_add(&m->table, &l2, NULL);
    return m;
}

#endif
