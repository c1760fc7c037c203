/* body.c - the body: everything denser than air that is connected to the
 * trunk, with its inner air (lungs, bowel gas) filled slice by slice.
 * Scanner table and blankets are cut off by a small opening before the
 * largest component is kept. Coarse grid. */
#include "seg_internal.h"

#include <cjson/cJSON.h>
#include <string.h>

#define BODY_HU -400.0
#define BODY_OPEN_MM 3.0

r3d_status seg_body(seg_ctx *c, r3d_error *err)
{
    r3d_volume *t = r3d_image_threshold(c->lo, BODY_HU, 1e9, err);
    if (!t)
        return err->code;
    r3d_volume *o = r3d_image_open(t, BODY_OPEN_MM, err);
    r3d_volume_free(t);
    if (!o)
        return err->code;
    r3d_volume *b = r3d_image_largest_component(o, 6, err);
    r3d_volume_free(o);
    if (!b)
        return err->code;
    seg_fill_holes_2d(b);
    c->body_lo = b;
    return R3D_OK;
}

void seg_body_params(cJSON *par)
{
    cJSON_AddNumberToObject(par, "body_hu", BODY_HU);
    cJSON_AddNumberToObject(par, "body_open_mm", BODY_OPEN_MM);
}
