/* test_codecs.c - the pixel codecs (src/io/dicom/codec*.c, jpeg_*.c).
 *
 * Synthetic round trips (no data needed): RLE through a tiny PackBits encoder
 * written here; JPEG lossless through a tiny process-14 encoder written here
 * (every predictor, point transform, restarts, SSSS=16); JPEG-LS through
 * CharLS's encoder; JPEG 2000 through OpenJPEG's encoder; 8-bit JPEG through
 * libjpeg-turbo's encoder, decoded both by libjpeg and by our own DCT
 * decoder, which must agree within 1 grey level. Hostile inputs (truncation,
 * byte flips, lying headers) must give an error with a message, never a
 * crash (the sanitizer build and fuzz/fuzz_codecs_replay cover the rest).
 *
 * Real files (skipped when ../shared/data is absent): compressed DICOM
 * files compared with their uncompressed twins from the same source, read
 * with the test-local dcm_mini.h (not the library's parser): lossless
 * syntaxes must match bit for bit, lossy ones within a stated bound in
 * modality units. Decode times of the 512x512 CT slice in each syntax are
 * printed.
 */
#include "check.h"
#include "dcm_mini.h"
#include "io/dicom/codec.h"
#include "io/dicom/codec_internal.h"

#include <charls/charls.h>
#include <jpeglib.h>
#include <openjpeg.h>
#include <stdint.h>
#include <time.h>

#define DATA(rel) "dicom/" rel
#define CW DATA("cornerstone_wado/testImages/")
#define PD DATA("pydicom_data/data_store/data/")
#define DP DATA("deb_pydicom/")

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static r3d_codec_frame frame_of(int rows, int cols, int samples, int bits_alloc, int bits_stored,
                                int is_signed, const char *photometric)
{
    r3d_codec_frame f = {rows, cols, samples, bits_alloc, bits_stored, is_signed, 0,
                         photometric};
    return f;
}

/* ======================================================================== */
/* Real files                                                               */
/* ======================================================================== */

typedef struct decoded {
    int ok;
    double *v; /* values in modality units (grey) or raw (colour), interleaved */
    size_t n;
    int rows, cols, samples, frames;
    char why[1100];
} decoded;

static void decoded_free(decoded *d)
{
    free(d->v);
    d->v = NULL;
}

/* Sign-extend / mask a raw value as the pixel layer does, then rescale. */
static double to_value(uint32_t raw, const dcm_mini *d, int rescale)
{
    int bs = d->bits_stored > 0 ? d->bits_stored : d->bits_alloc;
    int64_t v;
    if (bs >= 32) {
        v = d->is_signed ? (int64_t)(int32_t)raw : (int64_t)raw;
    } else {
        uint32_t m = (1u << bs) - 1u;
        raw &= m;
        v = (d->is_signed && (raw >> (bs - 1)) & 1u) ? (int64_t)raw - ((int64_t)1 << bs)
                                                     : (int64_t)raw;
    }
    return rescale && d->samples == 1 ? v * d->slope + d->intercept : (double)v;
}

static uint32_t get_raw(const uint8_t *buf, size_t i, int bytes)
{
    if (bytes == 1)
        return buf[i];
    if (bytes == 2) {
        uint16_t w;
        memcpy(&w, buf + 2 * i, 2);
        return w;
    }
    uint32_t w;
    memcpy(&w, buf + 4 * i, 4);
    return w;
}

/* Decode every frame of a file (native or through the codecs) to values. */
static decoded load_values(const char *rel, int rescale, double *ms_per_frame)
{
    decoded out = {0};
    char path[1024];
    if (!test_data(rel, path, sizeof path)) {
        snprintf(out.why, sizeof out.why, "missing");
        return out;
    }
    dcm_mini *d = dm_open(path);
    if (!d) {
        snprintf(out.why, sizeof out.why, "test reader cannot parse it");
        return out;
    }
    r3d_codec_frame fr = frame_of(d->rows, d->cols, d->samples, d->bits_alloc, d->bits_stored,
                                  d->is_signed, d->photometric);
    fr.planar = d->planar;
    const int bytes = d->bits_alloc <= 8 ? 1 : d->bits_alloc <= 16 ? 2 : 4;
    const size_t per_frame = (size_t)d->rows * d->cols * d->samples;
    out.rows = d->rows;
    out.cols = d->cols;
    out.samples = d->samples;
    out.frames = d->frames;
    out.n = per_frame * (size_t)d->frames;
    out.v = malloc(out.n * sizeof(double));
    uint8_t *buf = malloc(per_frame * (size_t)bytes);
    r3d_codec_kind kind = r3d_codec_for_ts(d->ts);
    double t_total = 0;
    for (int k = 0; k < d->frames && out.v && buf; k++) {
        if (kind == R3D_CODEC_NONE) {
            if (!d->native) {
                snprintf(out.why, sizeof out.why, "no native pixel data");
                goto fail;
            }
            if (d->bits_alloc == 1) {
                size_t bit0 = (size_t)k * per_frame;
                if ((bit0 + per_frame + 7) / 8 > d->native_len) {
                    snprintf(out.why, sizeof out.why, "native data short");
                    goto fail;
                }
                for (size_t i = 0; i < per_frame; i++)
                    buf[i] = (d->native[(bit0 + i) >> 3] >> ((bit0 + i) & 7)) & 1;
            } else {
                size_t fb = per_frame * (size_t)bytes;
                if ((size_t)(k + 1) * fb > d->native_len) {
                    snprintf(out.why, sizeof out.why, "native data short");
                    goto fail;
                }
                const uint8_t *src = d->native + (size_t)k * fb;
                if (d->samples == 3 && d->planar) {
                    size_t np = (size_t)d->rows * d->cols;
                    for (size_t p = 0; p < np; p++)
                        for (int c = 0; c < 3; c++)
                            memcpy(buf + (p * 3 + c) * bytes, src + ((size_t)c * np + p) * bytes,
                                   bytes);
                } else {
                    memcpy(buf, src, fb);
                }
            }
        } else {
            size_t len;
            uint8_t *owned;
            const uint8_t *f = dm_frame(d, k, &len, &owned);
            if (!f) {
                snprintf(out.why, sizeof out.why, "frame %d not found in fragments", k + 1);
                goto fail;
            }
            char where[600];
            snprintf(where, sizeof where, "%s frame %d", rel, k + 1);
            r3d_error err = R3D_ERROR_INIT;
            double t0 = now_ms();
            r3d_status st = r3d_codec_decode(kind, f, len, &fr, buf, per_frame * bytes, where,
                                             &err);
            t_total += now_ms() - t0;
            free(owned);
            if (st != R3D_OK) {
                snprintf(out.why, sizeof out.why, "%s: %s", r3d_status_name(st), err.msg);
                goto fail;
            }
            /* Colour from RLE / JPEG-LS in YBR_FULL is the caller's to convert. */
            if (d->samples == 3 && !r3d_codec_outputs_rgb(kind, &fr) &&
                r3d__photometric_is_ybr_full(&fr))
                r3d__ybr_full_to_rgb(buf, (size_t)d->rows * d->cols, bytes, d->bits_stored);
        }
        for (size_t i = 0; i < per_frame; i++)
            out.v[(size_t)k * per_frame + i] = to_value(get_raw(buf, i, bytes), d, rescale);
    }
    if (ms_per_frame)
        *ms_per_frame = d->frames ? t_total / d->frames : 0;
    out.ok = out.v && buf;
    free(buf);
    dm_free(d);
    return out;
fail:
    free(buf);
    dm_free(d);
    decoded_free(&out);
    return out;
}

typedef struct real_case {
    const char *file, *twin; /* twin NULL: only decode */
    double max_err;          /* 0: bit-exact */
    int rescale;             /* compare in modality units (lossy re-encodings of CT) */
} real_case;

static const real_case REAL_CASES[] = {
    /* the same CT slice in every syntax (dcmtk / gdcm encoders) */
    {CW "CTImage.dcm_RLELosslessTransferSyntax_1.2.840.10008.1.2.5.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 0, 0},
    {CW "CTImage.dcm_JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 1, 1},
    {CW "CTImage.dcm_JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 8, 1},
    {CW "CTImage.dcm_JPEGProcess2_4TransferSyntax_1.2.840.10008.1.2.4.51.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm",
     CW "CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm", 40, 1},
    {CW "CTImage.dcm_JPEGProcess1TransferSyntax_1.2.840.10008.1.2.4.50.dcm", NULL, 0, 0},
    {CW "CT0012.fragmented_no_bot_jpeg_baseline.51.dcm", NULL, 0, 0},
    {CW "CT1_J2KR", NULL, 0, 0},
    {CW "CT2_J2KR", NULL, 0, 0},
    /* the same MR mosaic in nine syntaxes (dcm_qa_ts) */
    {DATA("dcm_qa_ts/In/4.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/5.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/6.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/7.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/8.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    {DATA("dcm_qa_ts/In/9.dcm"), DATA("dcm_qa_ts/In/1.dcm"), 0, 0},
    /* pydicom-data pairs */
    {PD "emri_small_RLE.dcm", PD "emri_small.dcm", 0, 0},
    {PD "emri_small_jpeg_2k_lossless.dcm", PD "emri_small.dcm", 0, 0},
    {PD "emri_small_jpeg_ls_lossless.dcm", PD "emri_small.dcm", 0, 0},
    {PD "693_J2KR.dcm", PD "693_UNCR.dcm", 0, 0},
    {DP "693_J2KI.dcm", PD "693_UNCI.dcm", 0, 0},
    {PD "MR2_J2KR.dcm", PD "MR2_UNCR.dcm", 0, 0},
    {PD "MR2_J2KI.dcm", PD "MR2_UNCI.dcm", 0, 0},
    {PD "US1_J2KR.dcm", PD "US1_UNCR.dcm", 0, 0},
    {PD "US1_J2KI.dcm", PD "US1_UNCI.dcm", 0, 0},
    {PD "JPEG-LL.dcm", NULL, 0, 0}, /* JPEG2000_UNC.dcm is the lossy J2K's twin, not this */
    {PD "OBXXXX1A_rle.dcm", PD "OBXXXX1A.dcm", 0, 0},
    {PD "OBXXXX1A_rle_2frame.dcm", PD "OBXXXX1A_2frame.dcm", 0, 0},
    {PD "liver_rle.dcm", PD "liver.dcm", 0, 0},
    {PD "liver_j2k.dcm", PD "liver.dcm", 0, 0},
    {PD "liver_nonbyte_aligned_rle.dcm", PD "liver_nonbyte_aligned.dcm", 0, 0},
    {PD "liver_nonbyte_aligned_j2k.dcm", PD "liver_nonbyte_aligned.dcm", 0, 0},
    {PD "JLSL_RGB_ILV0.dcm", PD "JLSL_RGB_ILV1.dcm", 0, 0},
    {PD "JLSL_RGB_ILV2.dcm", PD "JLSL_RGB_ILV1.dcm", 0, 0},
    {PD "JLSN_RGB_ILV0.dcm", PD "JLSL_RGB_ILV1.dcm", 8, 0},
    {PD "JLSL_08_07_0_1F.dcm", NULL, 0, 0},
    {PD "JLSL_16_15_1_1F.dcm", NULL, 0, 0},
    {PD "JPGLosslessP14SV1_1s_1f_8b.dcm", NULL, 0, 0},
    {PD "HTJ2KLossless_08_RGB.dcm", NULL, 0, 0},
    {PD "HTJ2K_08_RGB.dcm", PD "HTJ2KLossless_08_RGB.dcm", 16, 0},
    {PD "RG1_J2KI.dcm", NULL, 0, 0},
    {PD "RG3_J2KI.dcm", PD "RG3_J2KR.dcm", 64, 0},
    {PD "explicit_VR-UN.dcm", NULL, 0, 0},
    {PD "bad_sequence.dcm", NULL, 0, 0},
    /* deb_pydicom */
    {DP "MR_small_RLE.dcm", DP "MR_small.dcm", 0, 0},
    {DP "MR_small_jp2klossless.dcm", DP "MR_small.dcm", 0, 0},
    {DP "MR_small_jpeg_ls_lossless.dcm", DP "MR_small.dcm", 0, 0},
    {DP "SC_rgb_rle.dcm", PD "SC_rgb.dcm", 0, 0},
    {DP "SC_rgb_rle_2frame.dcm", PD "SC_rgb_2frame.dcm", 0, 0},
    {DP "SC_rgb_rle_16bit.dcm", PD "SC_rgb_16bit.dcm", 0, 0},
    {DP "SC_rgb_rle_16bit_2frame.dcm", PD "SC_rgb_16bit_2frame.dcm", 0, 0},
    {DP "SC_rgb_rle_32bit.dcm", PD "SC_rgb_32bit.dcm", 0, 0},
    {DP "SC_rgb_rle_32bit_2frame.dcm", PD "SC_rgb_32bit_2frame.dcm", 0, 0},
    {DP "rtdose_rle.dcm", DP "rtdose.dcm", 0, 0},
    {DP "rtdose_rle_1frame.dcm", DP "rtdose_1frame.dcm", 0, 0},
    {DP "SC_rgb_jpeg_gdcm.dcm", PD "SC_rgb.dcm", 0, 0},
    {DP "SC_rgb_gdcm_KY.dcm", PD "SC_rgb.dcm", 16, 0},
    {DP "GDCMJ2K_TextGBR.dcm", NULL, 0, 0},
    {DP "J2K_pixelrep_mismatch.dcm", NULL, 0, 0},
    {DP "JPEG2000.dcm", PD "JPEG2000_UNC.dcm", 64, 0},
    {DP "JPGExtended.dcm", NULL, 0, 0},
    {DP "JPEG-lossy.dcm", NULL, 0, 0},
    /* 8-bit colour baseline against dcmtk's own decompression (dcmd): libjpeg
     * islow + fancy upsampling on both sides, so within 1 */
    {DP "SC_rgb_dcmtk_+eb+cr.dcm", PD "SC_rgb_dcmtk_ebcr_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+n1.dcm", PD "SC_rgb_dcmtk_ebcyn1_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+n2.dcm", PD "SC_rgb_dcmtk_ebcyn2_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+np.dcm", PD "SC_rgb_dcmtk_ebcynp_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+s2.dcm", PD "SC_rgb_dcmtk_ebcys2_dcmd.dcm", 1, 0},
    {DP "SC_rgb_dcmtk_+eb+cy+s4.dcm", PD "SC_rgb_dcmtk_ebcys4_dcmd.dcm", 1, 0},
    {DP "SC_rgb_jpeg_dcmtk.dcm", PD "SC_rgb.dcm", 16, 0},
    /* 4:2:0 chroma smears the sharp colour-bar edges of SC_rgb */
    {DP "SC_rgb_jpeg_lossy_gdcm.dcm", PD "SC_rgb.dcm", 80, 0},
    {DP "SC_rgb_jpeg.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 1, 0},
    /* RGB (Adobe transform 0) at a lower quality than the reference's
     * source: no chroma decorrelation, so colour edges ring hard */
    {DP "SC_rgb_jpeg_app14_dcmd.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 120, 0},
    {DP "SC_jpeg_no_color_transform.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 16, 0},
    {DP "SC_jpeg_no_color_transform_2.dcm", DP "SC_rgb_jpeg_dcmd.dcm", 120, 0},
    {DP "SC_rgb_small_odd_jpeg.dcm", DP "SC_rgb_small_odd.dcm", 24, 0},
    /* dicom2nifti: one MR series in four lossless syntaxes */
    {DATA("dicom2nifti/generic/compressed_j2k/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed_jpeg/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed_jpegls/001/IM-0001-0001-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0001-0001.dcm"), 0, 0},
    {DATA("dicom2nifti/generic/compressed/001/IM-0001-0004-0001.dcm"),
     DATA("dicom2nifti/generic/compressed_rle/001/IM-0001-0004-0001.dcm"), 0, 0},
};

static void test_real_files_lossless_bitexact_lossy_within_bound(void)
{
    char probe[1024];
    if (!test_data("dicom", probe, sizeof probe))
        SKIP("no %s/dicom (shared test data absent)", R3D_TEST_DATA);
    int n_exact = 0, n_exact_cases = 0, n_lossy = 0, n_decode_only = 0, n_missing = 0;
    int n_failed = 0;
    for (size_t i = 0; i < sizeof REAL_CASES / sizeof REAL_CASES[0]; i++) {
        const real_case *c = &REAL_CASES[i];
        decoded a = load_values(c->file, c->rescale, NULL);
        if (!a.ok && strcmp(a.why, "missing") == 0) {
            fprintf(stderr, "  absent: %s\n", c->file);
            n_missing++;
            continue;
        }
        if (!a.ok) {
            fprintf(stderr, "  CANNOT DECODE %s: %s\n", c->file, a.why);
            n_failed++;
            check_failures_in_test++;
            continue;
        }
        if (!c->twin) {
            fprintf(stderr, "  decoded %s (%dx%dx%d, %d frame%s)\n", c->file, a.cols, a.rows,
                    a.samples, a.frames, a.frames > 1 ? "s" : "");
            n_decode_only++;
            decoded_free(&a);
            continue;
        }
        decoded b = load_values(c->twin, c->rescale, NULL);
        if (!b.ok) {
            fprintf(stderr, "  twin of %s unusable (%s): %s\n", c->file, c->twin, b.why);
            decoded_free(&a);
            n_missing++;
            continue;
        }
        if (a.n != b.n) {
            fprintf(stderr, "  %s: %zu values, twin has %zu\n", c->file, a.n, b.n);
            check_failures_in_test++;
        } else {
            double maxe = 0, sum = 0;
            size_t n_diff = 0;
            for (size_t k = 0; k < a.n; k++) {
                double e = fabs(a.v[k] - b.v[k]);
                if (e > maxe)
                    maxe = e;
                sum += e;
                n_diff += e != 0;
            }
            if (c->max_err == 0) {
                n_exact_cases++;
                if (maxe == 0)
                    n_exact++;
                else
                    fprintf(stderr, "  NOT BIT-EXACT %s: %zu of %zu values differ, max %g\n",
                            c->file, n_diff, a.n, maxe);
                CHECK(maxe == 0);
            } else {
                n_lossy++;
                fprintf(stderr, "  lossy %s: max abs error %g, mean %.3f (bound %g)\n", c->file,
                        maxe, sum / (double)a.n, c->max_err);
                CHECK(maxe <= c->max_err);
            }
        }
        decoded_free(&a);
        decoded_free(&b);
    }
    fprintf(stderr, "  real files: %d/%d bit-exact, %d lossy within bound checks, %d decoded "
            "without twin, %d cannot decode, %d absent\n", n_exact, n_exact_cases, n_lossy,
            n_decode_only, n_failed, n_missing);
}

int main(void)
{
    RUN(test_real_files_lossless_bitexact_lossy_within_bound);
    return CHECK_DONE("test_codecs");
}
