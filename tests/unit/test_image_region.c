/* test_image_region.c - region growing: reaches exactly the connected
 * voxels in range, and stops before a leak. */
#include "check.h"
#include "r3d/r3d.h"

/* A 70x24x24 CT-like volume at 0 HU with an air tube (radius 2 voxels)
 * along x from x=2 to x=39 and, when with_box, an air box x=40..67 that the
 * tube opens into: a bronchus running into emphysema. */
static r3d_volume *tube_phantom(int with_box, int64_t *tube_vox)
{
    int64_t dim[4] = {70, 24, 24, 1};
    r3d_volume *v = r3d_volume_new(dim, R3D_I16, NULL);
    for (int i = 0; i < 3; i++)
        v->ijk_to_lps[i][i] = 0.8;
    r3d_volume_update_spacing(v);
    int16_t *p = v->voxels;
    *tube_vox = 0;
    for (int z = 0; z < 24; z++)
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 70; x++) {
                int in_tube = x >= 2 && x < 40 && (y - 12) * (y - 12) + (z - 12) * (z - 12) <= 4;
                int in_box = with_box && x >= 40 && x < 68 && y >= 1 && y < 23 && z >= 1 && z < 23;
                p[x + 70 * (y + 24 * z)] = in_tube || in_box ? -950 : 0;
                *tube_vox += in_tube;
            }
    return v;
}

static int64_t count(const r3d_volume *m)
{
    int64_t n = 0;
    for (int64_t i = 0; i < r3d_volume_nvox(m); i++)
        n += ((uint8_t *)m->voxels)[i] != 0;
    return n;
}

static void test_region_grow_reaches_exactly_the_connected_range(void)
{
    int64_t tube;
    r3d_volume *v = tube_phantom(0, &tube);
    int64_t seed = 3 + 70 * (12 + 24 * 12);
    r3d_grow_opts o = {-1024, -500, 6, 0, 0};
    int leaked = -1;
    r3d_error err = R3D_ERROR_INIT;
    r3d_volume *m = r3d_image_region_grow(v, &seed, 1, &o, &leaked, &err);
    CHECK(m != NULL);
    CHECK_INT(count(m), tube);
    CHECK_INT(leaked, 0);
    r3d_volume_free(m);
    /* a seed outside the range grows nothing (not an error) */
    int64_t bad = 0;
    m = r3d_image_region_grow(v, &bad, 1, &o, &leaked, &err);
    CHECK(m && count(m) == 0);
    r3d_volume_free(m);
    r3d_volume_free(v);
}

static void test_region_grow_stops_before_a_leak(void)
{
    int64_t tube;
    r3d_volume *v = tube_phantom(1, &tube);
    int64_t seed = 3 + 70 * (12 + 24 * 12);
    r3d_error err = R3D_ERROR_INIT;
    int leaked = 0;
    r3d_grow_opts free_grow = {-1024, -500, 26, 0, 0};
    r3d_volume *all = r3d_image_region_grow(v, &seed, 1, &free_grow, &leaked, &err);
    CHECK(all && count(all) == tube + 28 * 22 * 22 && leaked == 0);

    r3d_grow_opts guarded = {-1024, -500, 26, 0, 3.0};
    r3d_volume *m = r3d_image_region_grow(v, &seed, 1, &guarded, &leaked, &err);
    CHECK(m != NULL);
    CHECK_INT(leaked, 1);
    int64_t n = count(m);
    CHECK(n >= tube && n < tube + 200); /* the whole tube, at most a rim of the box */
    CHECK(((uint8_t *)m->voxels)[60 + 70 * (12 + 24 * 12)] == 0);

    r3d_grow_opts capped = {-1024, -500, 26, 100, 0};
    r3d_volume *c = r3d_image_region_grow(v, &seed, 1, &capped, &leaked, &err);
    CHECK(c && count(c) <= 100 && count(c) > 0 && leaked == 1);
    r3d_volume_free(all);
    r3d_volume_free(m);
    r3d_volume_free(c);
    r3d_volume_free(v);
}

static void test_region_grow_refuses_bad_connectivity(void)
{
    int64_t tube;
    r3d_volume *v = tube_phantom(0, &tube);
    int64_t seed = 0;
    r3d_grow_opts o = {-1024, -500, 7, 0, 0};
    r3d_error err = R3D_ERROR_INIT;
    CHECK(r3d_image_region_grow(v, &seed, 1, &o, NULL, &err) == NULL);
    CHECK(err.code == R3D_EARG && strstr(err.msg, "connectivity"));
    r3d_volume_free(v);
}

int main(void)
{
    RUN(test_region_grow_reaches_exactly_the_connected_range);
    RUN(test_region_grow_stops_before_a_leak);
    RUN(test_region_grow_refuses_bad_connectivity);
    return CHECK_DONE("test_image_region");
}
