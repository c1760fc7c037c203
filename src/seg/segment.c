/* segment.c - r3d_segment_ct: the driver that runs the anatomy pipelines
 * in dependency order, composes one label map on the input's grid and
 * writes the report (structures found and absent with volumes, the airway
 * tree's generations, nodules with their measurements, timings,
 * parameters, software version).
 *
 * Pipelines run on the CT turned to RAS axes (seg_internal.h); the label
 * map is turned back at the end with nearest-neighbour resampling through
 * patient space (exact: the two grids share every voxel centre). */
#include "seg_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    W_BODY = 1,
    W_LUNGS = 2,
    W_LOBES = 4,
    W_AIRWAY = 8,
    W_BONES = 16,
    W_VESSELS = 32,
    W_NODULES = 64,
    W_ALL = 127,
    /* Not in "all": segments replace their lobe's label where they are
     * known, so they are asked for by name. */
    W_SEGMENTS = 128,
    /* Not in "all" either: numbered vertebrae replace "spine" where the
     * numbering succeeded (vertebrae.c). */
    W_VERTEBRAE = 256
};

static const struct {
    const char *name;
    int bits;
} k_groups[] = {
    {"all", W_ALL},
    {"body", W_BODY},
    {"skin", W_BODY},
    {"lungs", W_LUNGS},
    {"lung_left", W_LUNGS},
    {"lung_right", W_LUNGS},
    {"lobes", W_LOBES},
    {"lung_upper_lobe_left", W_LOBES},
    {"lung_lower_lobe_left", W_LOBES},
    {"lung_upper_lobe_right", W_LOBES},
    {"lung_middle_lobe_right", W_LOBES},
    {"lung_lower_lobe_right", W_LOBES},
    {"segments", W_SEGMENTS},
    {"lung_segments", W_SEGMENTS},
    {"airway", W_AIRWAY},
    {"airways", W_AIRWAY},
    {"trachea", W_AIRWAY},
    {"bronchi", W_AIRWAY},
    {"bones", W_BONES},
    {"skeleton", W_BONES},
    {"spine", W_BONES},
    {"vertebrae", W_BONES | W_VERTEBRAE},
    {"ribs", W_BONES},
    {"sternum", W_BONES},
    {"skull", W_BONES},
    {"mandible", W_BONES},
    {"vessels", W_VESSELS},
    {"pulmonary_vessels", W_VESSELS},
    {"nodules", W_NODULES},
    {"lung_nodules", W_NODULES},
};

static r3d_status parse_structures(const char *s, int *bits, r3d_error *err)
{
    *bits = 0;
    if (!s || !*s) {
        *bits = W_ALL;
        return R3D_OK;
    }
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' '))
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            int found = 0;
            for (size_t i = 0; i < sizeof k_groups / sizeof k_groups[0]; i++)
                if (strlen(k_groups[i].name) == len && !strncmp(k_groups[i].name, p, len)) {
                    *bits |= k_groups[i].bits;
                    found = 1;
                }
            if (!found)
                return r3d_fail(err, R3D_EARG,
                                "structures: unknown name \"%.*s\" (groups: body, lungs, lobes, "
                                "segments, airway, bones, vertebrae, vessels, nodules, all)",
                                (int)(len > 60 ? 60 : len), p);
        }
        if (!e)
            break;
        p = e + 1;
    }
    return R3D_OK;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint16_t value_of(const char *name)
{
    const r3d_structure *s = r3d_structure_find(name);
    return s ? s->value : 0;
}

/* Label value of an airway voxel of branch b (generation g). */
static uint16_t airway_value(const r3d_airway_tree *t, int b)
{
    if (b < 0 || b >= t->n)
        return value_of("trachea");
    const r3d_airway_branch *x = &t->b[b];
    if (!strcmp(x->name, "LMB"))
        return value_of("bronchus_main_left");
    if (!strcmp(x->name, "RMB"))
        return value_of("bronchus_main_right");
    switch (x->generation) {
    case 0:
        return value_of("trachea");
    case 1:
        return value_of("bronchi");
    case 2:
        return value_of("bronchi_lobar");
    case 3:
        return value_of("bronchi_segmental");
    case 4:
        return value_of("bronchi_subsegmental");
    default:
        return value_of("bronchi");
    }
}

typedef struct timing {
    const char *stage;
    double s;
} timing;

static void free_ctx(seg_ctx *c)
{
    if (c->lo != c->ct)
        r3d_volume_free(c->lo);
    r3d_volume_free(c->body_lo), r3d_volume_free(c->lung_lo), r3d_volume_free(c->bone_lo);
    r3d_volume_free(c->bone_out_lo);
    r3d_volume_free(c->lobe_lo), r3d_volume_free(c->airway), r3d_volume_free(c->branch_of);
    r3d_volume_free(c->segment_lo), r3d_volume_free(c->vert_lo);
    r3d_volume_free(c->vessels), r3d_volume_free(c->nodules);
    r3d_airway_tree_free(&c->tree);
    free(c->nod);
}

/* The airway is the trachea and the bronchi that lead into the lungs:
 * with no lung in view (a head, a neck), a dark tube found above is the
 * pharynx, the nasal cavity or a sinus, and one that ends above the lungs'
 * top is no trachea either; both are dropped (reported absent). */
static void drop_airway_without_lungs(seg_ctx *c)
{
    if (!c->airway)
        return;
    int64_t ltop = -1;
    if (c->lung_lo) {
        const r3d_volume *l = c->lung_lo;
        const uint8_t *lv = l->voxels;
        int64_t ns = l->dim[0] * l->dim[1];
        for (int64_t p = r3d_volume_nvox(l) - 1; p >= 0 && ltop < 0; p--)
            if (lv[p])
                ltop = p / ns;
    }
    int64_t abot = -1;
    if (ltop >= 0) {
        const uint8_t *a = c->airway->voxels;
        int64_t n = r3d_volume_nvox(c->airway);
        for (int64_t p = 0; p < n; p++)
            if (a[p]) {
                abot = p / (c->airway->dim[0] * c->airway->dim[1]);
                break;
            }
    }
    if (ltop >= 0 && abot >= 0 && abot <= (ltop + 1) * c->f[2])
        return;
    r3d_volume_free(c->airway), r3d_volume_free(c->branch_of);
    c->airway = c->branch_of = NULL;
    r3d_airway_tree_free(&c->tree);
    c->tree.max_generation = -1;
    c->seed = -1;
}

static cJSON *vec3(const double v[3])
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < 3; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(round(v[i] * 100) / 100));
    return a;
}

static const char *k_lobe_names[6] = {"",
                                      "lung_upper_lobe_right",
                                      "lung_middle_lobe_right",
                                      "lung_lower_lobe_right",
                                      "lung_upper_lobe_left",
                                      "lung_lower_lobe_left"};

const char *seg_lobe_name(int lobe)
{
    return lobe >= 1 && lobe <= 5 ? k_lobe_names[lobe] : "";
}

/* The full-grid label map (RAS) from the pipelines' masks. */
static r3d_status compose(seg_ctx *c, int want, r3d_volume *lab, r3d_error *err)
{
    const r3d_volume *ct = c->ct;
    int64_t n = r3d_volume_nvox(ct);
    uint16_t *o = lab->voxels;
    r3d_volume *tmp = r3d_volume_new_like(ct, R3D_U8, err);
    if (!tmp)
        return err->code;
    uint8_t *t = tmp->voxels;
    const float *hu = ct->voxels;
    if (want & W_BODY) {
        /* Body, and its outer 2 mm as skin (distance on the coarse grid,
         * where the body was found; skin voxels must be tissue, not air). */
        r3d_volume *d = r3d_image_distance(c->body_lo, err);
        r3d_volume *sk = d ? r3d_volume_new_like(c->lo, R3D_U8, err) : NULL;
        if (!sk) {
            r3d_volume_free(d), r3d_volume_free(tmp);
            return err->code;
        }
        const float *dv = d->voxels;
        const uint8_t *bl = c->body_lo->voxels;
        uint8_t *sv = sk->voxels;
        int64_t nl = r3d_volume_nvox(c->lo);
        double rim = fmax(2.0, 0.75 * fmax(c->lo->spacing_mm[0], c->lo->spacing_mm[1]));
        for (int64_t p = 0; p < nl; p++)
            sv[p] = bl[p] ? (dv[p] <= rim ? 2 : 1) : 0;
        r3d_volume_free(d);
        seg_upsample_into(sk, c->f, tmp);
        r3d_volume_free(sk);
        uint16_t vb = value_of("body"), vs = value_of("skin");
        for (int64_t p = 0; p < n; p++)
            if (t[p] == 1)
                o[p] = vb;
            else if (t[p] == 2 && hu[p] > -500)
                o[p] = vs;
    }
    if ((want & (W_LUNGS | W_LOBES)) && c->lung_lo) {
        const uint8_t *lobe = NULL;
        if ((want & W_LOBES) && c->lobe_lo) {
            seg_upsample_into(c->lobe_lo, c->f, tmp);
            lobe = t;
        } else
            seg_upsample_into(c->lung_lo, c->f, tmp);
        uint16_t vr = value_of("lung_right"), vl = value_of("lung_left");
        uint16_t lv[8];
        for (int i = 1; i <= 5; i++)
            lv[i] = value_of(k_lobe_names[i]);
        lv[6] = vr, lv[7] = vl; /* a lung whose lobes were not found (lobes.c) */
        for (int64_t p = 0; p < n; p++)
            if (t[p])
                o[p] = lobe ? lv[t[p] <= 7 ? t[p] : 1] : (t[p] == 1 ? vr : vl);
    }
    if ((want & W_SEGMENTS) && c->segment_lo) {
        /* Segments over their lobe (the same coarse voxels). */
        seg_upsample_into(c->segment_lo, c->f, tmp);
        uint16_t sv[SEG_N + 1] = {0};
        for (int k = 1; k <= SEG_N; k++)
            sv[k] = value_of(seg_segment_structure(k));
        for (int64_t p = 0; p < n; p++)
            if (t[p] >= 1 && t[p] <= SEG_N)
                o[p] = sv[t[p]];
    }
    if ((want & W_BONES) && c->bone_lo) {
        /* Edges and marrow at full resolution (bones_full.c). */
        r3d_status bst = seg_bones_full(c, tmp, err);
        if (bst != R3D_OK) {
            r3d_volume_free(tmp);
            return bst;
        }
        uint16_t v[7] = {0, value_of("spine"), value_of("ribs"), value_of("sternum"),
                         value_of("bones"), value_of("skull"), value_of("mandible")};
        for (int64_t p = 0; p < n; p++)
            if (t[p] && t[p] <= 6)
                o[p] = v[t[p]];
        if ((want & W_VERTEBRAE) && c->vert_lo) {
            /* Spine voxels take their vertebra's value (vertebrae.c). */
            seg_upsample_into(c->vert_lo, c->f, tmp);
            for (int64_t p = 0; p < n; p++)
                if (t[p] && o[p] == v[1])
                    o[p] = t[p];
        }
    }
    if ((want & W_VESSELS) && c->vessels) {
        const uint8_t *vv = c->vessels->voxels;
        uint16_t v = value_of("pulmonary_vessels");
        for (int64_t p = 0; p < n; p++)
            if (vv[p])
                o[p] = v;
    }
    if ((want & W_AIRWAY) && c->airway) {
        const uint8_t *a = c->airway->voxels;
        const int32_t *bo = c->branch_of->voxels;
        uint16_t *cache = calloc((size_t)c->tree.n + 1, sizeof *cache);
        if (!cache) {
            r3d_volume_free(tmp);
            return r3d_fail(err, R3D_ENOMEM, "segment: out of memory");
        }
        for (int b = 0; b < c->tree.n; b++)
            cache[b + 1] = airway_value(&c->tree, b);
        cache[0] = value_of("trachea");
        for (int64_t p = 0; p < n; p++)
            if (a[p])
                o[p] = cache[bo[p] <= c->tree.n ? bo[p] : 0];
        free(cache);
    }
    if ((want & W_NODULES) && c->nodules) {
        const uint8_t *nv = c->nodules->voxels;
        for (int64_t p = 0; p < n; p++)
            if (nv[p])
                o[p] = (uint16_t)(R3D_LABEL_NODULE_FIRST + nv[p] - 1);
    }
    r3d_volume_free(tmp);
    return R3D_OK;
}

/* The RAS grid is the input's with axes permuted and flipped: every input
 * voxel (i, j, k) is RAS voxel base + i*d0 + j*d1 + k*d2. Copy through that
 * integer map; 0 when the grids are not related so (then resample). */
static int map_back(const r3d_volume *ras, r3d_volume *in)
{
    double inv[3][4];
    /* inverse of the RAS grid's affine (3x3 part by cofactors) */
    const double(*a)[4] = ras->ijk_to_lps;
    double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
                 a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                 a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    if (fabs(det) < 1e-12)
        return 0;
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++) {
            int r1 = (q + 1) % 3, r2 = (q + 2) % 3, c1 = (r + 1) % 3, c2 = (r + 2) % 3;
            inv[r][q] = (a[r1][c1] * a[r2][c2] - a[r1][c2] * a[r2][c1]) / det;
        }
    for (int r = 0; r < 3; r++)
        inv[r][3] = -(inv[r][0] * a[0][3] + inv[r][1] * a[1][3] + inv[r][2] * a[2][3]);
    /* RAS voxel coordinates of input voxel (i, j, k), for the 4 corners */
    double c[4][3];
    for (int e = 0; e < 4; e++) {
        double ijk[3] = {e == 1, e == 2, e == 3}, x[3];
        for (int r = 0; r < 3; r++)
            x[r] = in->ijk_to_lps[r][3] + in->ijk_to_lps[r][0] * ijk[0] +
                   in->ijk_to_lps[r][1] * ijk[1] + in->ijk_to_lps[r][2] * ijk[2];
        for (int r = 0; r < 3; r++)
            c[e][r] = inv[r][0] * x[0] + inv[r][1] * x[1] + inv[r][2] * x[2] + inv[r][3];
    }
    int64_t base[3], d[3][3];
    for (int r = 0; r < 3; r++) {
        base[r] = (int64_t)llround(c[0][r]);
        if (fabs(c[0][r] - base[r]) > 1e-3)
            return 0;
        for (int e = 0; e < 3; e++) {
            double dd = c[e + 1][r] - c[0][r];
            d[e][r] = (int64_t)llround(dd);
            if (fabs(dd - d[e][r]) > 1e-3)
                return 0;
        }
    }
    int64_t nx = in->dim[0], ny = in->dim[1], nz = in->dim[2];
    int64_t rx = ras->dim[0], ry = ras->dim[1], rz = ras->dim[2];
    /* all corners of the input must land inside the RAS grid */
    for (int corner = 0; corner < 8; corner++) {
        int64_t ijk[3] = {corner & 1 ? nx - 1 : 0, corner & 2 ? ny - 1 : 0, corner & 4 ? nz - 1 : 0};
        for (int r = 0; r < 3; r++) {
            int64_t x = base[r] + ijk[0] * d[0][r] + ijk[1] * d[1][r] + ijk[2] * d[2][r];
            if (x < 0 || x >= (r == 0 ? rx : r == 1 ? ry : rz))
                return 0;
        }
    }
    int64_t st[3], b0 = base[0] + rx * (base[1] + ry * base[2]);
    for (int e = 0; e < 3; e++)
        st[e] = d[e][0] + rx * (d[e][1] + ry * d[e][2]);
    const uint16_t *src = ras->voxels;
    uint16_t *dst = in->voxels;
    for (int64_t k = 0; k < nz; k++)
        for (int64_t j = 0; j < ny; j++) {
            int64_t q = b0 + j * st[1] + k * st[2];
            uint16_t *o = dst + nx * (j + ny * k);
            for (int64_t i = 0; i < nx; i++, q += st[0])
                o[i] = src[q];
        }
    return 1;
}

void r3d_seg_result_free(r3d_seg_result *r)
{
    if (!r)
        return;
    r3d_labelmap_free(r->labels);
    free(r->report_json);
    r->labels = NULL;
    r->report_json = NULL;
}

static void add_acq(cJSON *root, const r3d_volume *ct)
{
    const r3d_acq *a = &ct->acq;
    cJSON *q = cJSON_AddObjectToObject(root, "acquisition");
    if (a->modality[0])
        cJSON_AddStringToObject(q, "Modality", a->modality);
    if (a->manufacturer[0])
        cJSON_AddStringToObject(q, "Manufacturer", a->manufacturer);
    if (a->model[0])
        cJSON_AddStringToObject(q, "ManufacturersModelName", a->model);
    if (a->kernel[0])
        cJSON_AddStringToObject(q, "ConvolutionKernel", a->kernel);
    if (a->contrast_agent[0])
        cJSON_AddStringToObject(q, "ContrastBolusAgent", a->contrast_agent);
    if (!isnan(a->kvp))
        cJSON_AddNumberToObject(q, "KVP", a->kvp);
    if (!isnan(a->slice_thickness_mm))
        cJSON_AddNumberToObject(q, "SliceThickness", a->slice_thickness_mm);
    cJSON *g = cJSON_AddObjectToObject(q, "Geometry");
    cJSON *d = cJSON_AddArrayToObject(g, "Dimensions");
    cJSON *s = cJSON_AddArrayToObject(g, "VoxelSizeMM");
    for (int i = 0; i < 3; i++) {
        cJSON_AddItemToArray(d, cJSON_CreateNumber((double)ct->dim[i]));
        cJSON_AddItemToArray(s, cJSON_CreateNumber(ct->spacing_mm[i]));
    }
}

r3d_status r3d_segment_ct(const r3d_volume *ct_in, const r3d_seg_opts *opts, r3d_seg_result *out,
                          r3d_error *err)
{
    memset(out, 0, sizeof *out);
    if (!ct_in || !ct_in->voxels || ct_in->dim[3] > 1 || ct_in->dtype == R3D_RGB24)
        return r3d_fail(err, R3D_EARG, "segment: a 3D grey-level CT volume is needed");
    for (int i = 0; i < 3; i++)
        if (ct_in->dim[i] < 1 || !(ct_in->spacing_mm[i] > 0))
            return r3d_fail(err, R3D_EARG, "segment: voxel spacing on axis %d is not positive", i);
    if (ct_in->dim[0] < 8 || ct_in->dim[1] < 8 || ct_in->dim[2] < 3)
        return r3d_fail(err, R3D_EARG, "segment: volume too small (%lldx%lldx%lld)",
                        (long long)ct_in->dim[0], (long long)ct_in->dim[1],
                        (long long)ct_in->dim[2]);
    int want = 0;
    r3d_status st = parse_structures(opts ? opts->structures : NULL, &want, err);
    if (st != R3D_OK)
        return st;
    double t0 = now_s(), t = t0;
    timing tm[16];
    int ntm = 0;
#define LAP(name) (tm[ntm].stage = (name), tm[ntm].s = now_s() - t, t = now_s(), ntm++)

    seg_ctx c;
    memset(&c, 0, sizeof c);
    c.seed = -1;
    c.tree.max_generation = -1;
    c.progress = opts ? opts->progress : NULL;
    c.progress_ctx = opts ? opts->progress_ctx : NULL;
    r3d_volume *ras = r3d_volume_reorient_ras(ct_in, err);
    if (!ras)
        return err->code;
    r3d_volume *ct = r3d_volume_new_like(ras, R3D_F32, err);
    if (!ct) {
        r3d_volume_free(ras);
        return err->code;
    }
    {
        int64_t n = r3d_volume_nvox(ct);
        float *f = ct->voxels;
        for (int64_t p = 0; p < n; p++)
            f[p] = (float)r3d_volume_get(ras, p);
        r3d_volume_free(ras);
    }
    c.ct = ct;
    for (int a = 0; a < 3; a++) {
        c.f[a] = (int)floor(1.8 / ct->spacing_mm[a] + 0.5);
        if (c.f[a] < 1)
            c.f[a] = 1;
    }
    if (c.f[0] * c.f[1] * c.f[2] == 1)
        c.lo = ct;
    else if (!(c.lo = seg_downsample(ct, c.f, err))) {
        r3d_volume_free(ct);
        return err->code;
    }
    LAP("prepare");
    r3d_volume *lab = NULL;
    seg_progress(&c, "body", 0, 1);
    if ((st = seg_body(&c, err)) != R3D_OK)
        goto fail;
    LAP("body");
    if (want & (W_LUNGS | W_LOBES | W_SEGMENTS | W_AIRWAY | W_BONES | W_VESSELS | W_NODULES)) {
        seg_progress(&c, "airway", 0, 180);
        if ((st = seg_airway(&c, err)) != R3D_OK)
            goto fail;
        LAP("airway");
        seg_progress(&c, "lungs", 0, 1);
        if ((st = seg_lungs(&c, err)) != R3D_OK)
            goto fail;
        drop_airway_without_lungs(&c);
        LAP("lungs");
    }
    if (want & W_BONES) {
        seg_progress(&c, "bones", 0, 1);
        if ((st = seg_bones(&c, err)) != R3D_OK)
            goto fail;
        LAP("bones");
    }
    if (want & W_VERTEBRAE) {
        seg_progress(&c, "vertebrae", 0, 1);
        if ((st = seg_vertebrae(&c, err)) != R3D_OK)
            goto fail;
        LAP("vertebrae");
    }
    if (want & (W_LOBES | W_SEGMENTS | W_NODULES)) {
        seg_progress(&c, "lobes", 0, 1);
        if ((st = seg_lobes(&c, err)) != R3D_OK)
            goto fail;
        LAP("lobes");
    }
    if (want & W_SEGMENTS) {
        seg_progress(&c, "segments", 0, 1);
        if ((st = seg_segments(&c, err)) != R3D_OK)
            goto fail;
        LAP("segments");
    }
    if (want & (W_VESSELS | W_NODULES)) {
        seg_progress(&c, "vessels", 0, 1);
        if ((st = seg_vessels(&c, err)) != R3D_OK)
            goto fail;
        LAP("vessels");
    }
    if (want & W_NODULES) {
        seg_progress(&c, "nodules", 0, 1);
        if ((st = seg_nodules(&c, err)) != R3D_OK)
            goto fail;
        LAP("nodules");
    }
    seg_progress(&c, "labels", 0, 1);
    lab = r3d_volume_new_like(ct, R3D_U16, err);
    if (!lab) {
        st = err->code;
        goto fail;
    }
    if ((st = compose(&c, want, lab, err)) != R3D_OK)
        goto fail;
    r3d_labelmap *lm = r3d_labelmap_new(ct_in, err);
    if (!lm) {
        st = err->code;
        goto fail;
    }
    if (!map_back(lab, lm->vol)) {
        r3d_volume *back = r3d_image_resample(lab, ct_in, R3D_INTERP_NEAREST, 0, err);
        if (!back || back->dtype != R3D_U16) {
            r3d_volume_free(back);
            r3d_labelmap_free(lm);
            st = back ? r3d_fail(err, R3D_EDATA, "segment: label resampling changed the type")
                      : err->code;
            goto fail;
        }
        memcpy(lm->vol->voxels, back->voxels, r3d_volume_bytes(lm->vol));
        r3d_volume_free(back);
    }
    r3d_volume_free(lab);
    lab = NULL;
    LAP("labels");

    /* Label table and report. */
    int64_t *count = calloc(65536, sizeof *count);
    if (!count) {
        r3d_labelmap_free(lm);
        st = r3d_fail(err, R3D_ENOMEM, "segment: out of memory");
        goto fail;
    }
    {
        const uint16_t *lv = lm->vol->voxels;
        int64_t n = r3d_volume_nvox(lm->vol);
        for (int64_t p = 0; p < n; p++)
            count[lv[p]]++;
    }
    double vox_ml = seg_voxel_ml(ct_in);
    cJSON *root = cJSON_CreateObject();
    cJSON *sw = cJSON_AddObjectToObject(root, "software");
    cJSON_AddStringToObject(sw, "name", "recon3d");
    cJSON_AddStringToObject(sw, "version", r3d_version());
    cJSON *par = cJSON_AddObjectToObject(root, "parameters");
    cJSON_AddStringToObject(par, "structures", opts && opts->structures ? opts->structures : "all");
    cJSON *cf = cJSON_AddArrayToObject(par, "coarse_factors");
    for (int a = 0; a < 3; a++)
        cJSON_AddItemToArray(cf, cJSON_CreateNumber(c.f[a]));
    seg_body_params(par);
    seg_lungs_params(par);
    seg_bones_params(par);
    seg_bones_full_params(par);
    add_acq(root, ct_in);
    cJSON *sarr = cJSON_AddArrayToObject(root, "structures");
    cJSON *absent = cJSON_AddArrayToObject(root, "absent");
    for (int i = 0; i < r3d_structure_count(); i++) {
        const r3d_structure *s = r3d_structure_at(i);
        if (!s || !count[s->value])
            continue;
        r3d_label l;
        r3d_structure_label(s, &l);
        if ((st = r3d_label_table_add(&lm->table, &l, err)) != R3D_OK)
            break;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "value", s->value);
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "name_zh", s->name_zh);
        cJSON_AddNumberToObject(o, "voxels", (double)count[s->value]);
        cJSON_AddNumberToObject(o, "volume_ml", round(count[s->value] * vox_ml * 1000) / 1000);
        cJSON_AddItemToArray(sarr, o);
    }
    for (int k = 0; st == R3D_OK && k < c.n_nod; k++) {
        const r3d_structure *s = r3d_structure_by_value((uint16_t)(R3D_LABEL_NODULE_FIRST + k));
        if (!s || !count[s->value])
            continue;
        r3d_label l;
        r3d_structure_label(s, &l);
        st = r3d_label_table_add(&lm->table, &l, err);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "value", s->value);
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddStringToObject(o, "name_zh", s->name_zh);
        cJSON_AddNumberToObject(o, "voxels", (double)count[s->value]);
        cJSON_AddNumberToObject(o, "volume_ml", round(count[s->value] * vox_ml * 1000) / 1000);
        cJSON_AddItemToArray(sarr, o);
    }
    /* What was asked for and not found. */
    struct {
        int bit;
        const char *name;
        int present;
    } groups[] = {
        {W_BODY, "body", c.body_lo && seg_count(c.body_lo, 0) > 0},
        {W_LUNGS, "lung_right", c.lung_lo && seg_count(c.lung_lo, 1) > 0},
        {W_LUNGS, "lung_left", c.lung_lo && seg_count(c.lung_lo, 2) > 0},
        {W_LOBES, "lobes", c.lobe_lo != NULL},
        {W_SEGMENTS, "lung_segments", c.segment_lo != NULL},
        {W_AIRWAY, "airway", c.airway != NULL},
        {W_BONES, "bones", c.bone_lo && seg_count(c.bone_lo, 0) > 0},
        {W_VESSELS, "pulmonary_vessels", c.vessels && seg_count(c.vessels, 0) > 0},
        {W_NODULES, "lung_nodules", c.n_nod > 0},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        if ((want & groups[g].bit) && !groups[g].present)
            cJSON_AddItemToArray(absent, cJSON_CreateString(groups[g].name));
    if (c.lung_lo)
        cJSON_AddBoolToObject(root, "lungs_joined_and_split", c.has_lung_joined);
    if ((want & W_LOBES) && c.lung_lo) {
        static const char *how[] = {"none", "airway", "airway_and_fissures", "fissures"};
        cJSON *lo = cJSON_AddObjectToObject(root, "lobes");
        for (int s = 0; s < 2; s++) {
            cJSON *o = cJSON_AddObjectToObject(lo, s ? "left" : "right");
            cJSON_AddStringToObject(o, "method", how[c.lobe_method[s]]);
            cJSON_AddStringToObject(o, "detail", c.lobe_why[s]);
        }
    }
    if ((want & W_AIRWAY) && c.airway) {
        cJSON *aw = cJSON_AddObjectToObject(root, "airway");
        cJSON_AddNumberToObject(aw, "threshold_hu", c.airway_threshold);
        cJSON_AddBoolToObject(aw, "leak_stopped", c.airway_leaked);
        cJSON_AddNumberToObject(aw, "max_generation", c.tree.max_generation);
        cJSON *pg = cJSON_AddArrayToObject(aw, "branches_per_generation");
        for (int g = 0; g <= c.tree.max_generation && g <= R3D_AIRWAY_MAX_GEN; g++)
            cJSON_AddItemToArray(pg, cJSON_CreateNumber(c.tree.per_generation[g]));
        cJSON *bl = cJSON_AddArrayToObject(aw, "branches");
        for (int b = 0; b < c.tree.n; b++) {
            const r3d_airway_branch *x = &c.tree.b[b];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", b);
            cJSON_AddNumberToObject(o, "parent", x->parent);
            cJSON_AddNumberToObject(o, "generation", x->generation);
            if (x->name[0])
                cJSON_AddStringToObject(o, "name", x->name);
            cJSON_AddNumberToObject(o, "length_mm", round(x->length_mm * 10) / 10);
            cJSON_AddNumberToObject(o, "radius_mm", round(x->radius_mm * 100) / 100);
            cJSON_AddItemToObject(o, "start_lps", vec3(x->start));
            cJSON_AddItemToObject(o, "end_lps", vec3(x->end));
            cJSON_AddItemToArray(bl, o);
        }
    }
    if (want & W_VERTEBRAE) {
        cJSON *vo = cJSON_AddObjectToObject(root, "vertebrae");
        cJSON_AddBoolToObject(vo, "numbered", c.vert_numbered);
        if (!c.vert_numbered)
            cJSON_AddStringToObject(vo, "reason", c.vert_why);
        else {
            cJSON_AddStringToObject(vo, "anchor", c.vert_anchor == 1 ? "sacrum" : "lowest_rib_T12");
            cJSON_AddNumberToObject(vo, "pieces", c.vert_pieces);
            /* end pieces longer than one vertebra: discs not seen, kept "spine" */
            cJSON_AddNumberToObject(vo, "end_pieces_unnumbered", c.vert_ends_left);
            const r3d_structure *rs = c.vert_rib_t12 > 0 ? r3d_structure_by_value((uint16_t)c.vert_rib_t12) : NULL;
            cJSON_AddStringToObject(vo, "lowest_rib_bearing", rs ? rs->name : "none in view");
        }
        cJSON *dk = cJSON_AddArrayToObject(vo, "disc_slices_mm");
        for (int x = 0; x < c.vert_discs && x < 40; x++)
            cJSON_AddItemToArray(dk, cJSON_CreateNumber(round(c.vert_disc_k[x] * c.lo->spacing_mm[2] * 10) / 10));
    }
    if (want & W_NODULES) {
        cJSON *na = cJSON_AddArrayToObject(root, "nodules");
        for (int k = 0; k < c.n_nod; k++) {
            const r3d_nodule *q = &c.nod[k];
            cJSON *o = cJSON_CreateObject();
            char nm[32];
            snprintf(nm, sizeof nm, "lung_nodule_%d", k + 1);
            cJSON_AddStringToObject(o, "name", nm);
            cJSON_AddNumberToObject(o, "value", R3D_LABEL_NODULE_FIRST + k);
            cJSON_AddStringToObject(o, "lung", q->lung == 1 ? "right" : q->lung == 2 ? "left" : "");
            cJSON_AddStringToObject(o, "lobe", q->lobe);
            cJSON_AddItemToObject(o, "centre_lps", vec3(q->centre));
            cJSON_AddNumberToObject(o, "volume_ml", round(q->volume_mm3) / 1000);
            cJSON_AddNumberToObject(o, "diameter_mm", round(q->diameter_mm * 10) / 10);
            cJSON_AddNumberToObject(o, "long_axis_mm", round(q->long_axis_mm * 10) / 10);
            cJSON_AddNumberToObject(o, "short_axis_mm", round(q->short_axis_mm * 10) / 10);
            cJSON_AddNumberToObject(o, "mean_hu", round(q->mean_hu));
            cJSON_AddStringToObject(o, "type", q->solid ? "solid" : "sub-solid");
            cJSON_AddNumberToObject(o, "distance_to_bronchus_mm", round(q->dist_bronchus_mm * 10) / 10);
            cJSON_AddNumberToObject(o, "distance_to_vessel_mm", round(q->dist_vessel_mm * 10) / 10);
            cJSON_AddItemToArray(na, o);
        }
    }
    free(count);
    LAP("report");
    cJSON *ti = cJSON_AddObjectToObject(root, "timings_s");
    for (int i = 0; i < ntm; i++)
        cJSON_AddNumberToObject(ti, tm[i].stage, round(tm[i].s * 1000) / 1000);
    cJSON_AddNumberToObject(ti, "total", round((now_s() - t0) * 1000) / 1000);
    char *js = cJSON_Print(root);
    cJSON_Delete(root);
    if (st != R3D_OK || !js) {
        free(js);
        r3d_labelmap_free(lm);
        if (st == R3D_OK)
            st = r3d_fail(err, R3D_ENOMEM, "segment: out of memory");
        goto fail;
    }
    out->labels = lm;
    out->report_json = js;
    free_ctx(&c);
    r3d_volume_free(ct);
    return R3D_OK;
fail:
    r3d_volume_free(lab);
    free_ctx(&c);
    r3d_volume_free(ct);
    return st;
#undef LAP
}
