/* r3d/dicom_write.h - writing DICOM Part 10 files, and de-identifying them.
 *
 * Writer: build a data set in memory (r3d_dcm_ds: elements sorted by tag,
 * values owned, sequences of nested data sets), then write it as a Part 10
 * file: 128-byte zero preamble, "DICM", the file meta group with a correct
 * (0002,0000) group length and our implementation UID, and the data set in
 * explicit VR little endian (or, for encapsulated pixel data, in the
 * encapsulated transfer syntax the caller names, whose data set is explicit
 * VR little endian too). Text values are padded to even length (NUL for UI,
 * space otherwise); sequences and items are written with defined lengths.
 * The SEG and encapsulated STL/OBJ writers are meant to build an r3d_dcm_ds
 * and hand it to r3d_dcm_write_file like the de-identifier does.
 *
 * UIDs: everything we create lives under "2.25." (PS3.5 §B.2: a UUID read
 * as one 128-bit decimal integer), so recon3d needs no registered root.
 * Fresh UIDs are RFC 9562 version-4 UUIDs from /dev/urandom; replacement
 * UIDs in de-identification are version-8 UUIDs made from a keyed hash.
 *
 * De-identification: DICOM PS3.15 Annex E, Basic Application Level
 * Confidentiality Profile, with the Retain Longitudinal Temporal Information
 * (full dates) option and a remove-instead-of-clean Clean Descriptors choice;
 * see src/io/dicom/deid.c for the attribute table and the rules.
 */
#ifndef R3D_DICOM_WRITE_H
#define R3D_DICOM_WRITE_H

#include "dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

/* UID root of everything recon3d creates (PS3.5 §B.2 UUID-derived UIDs). */
#define R3D_UID_ROOT "2.25"
/* (0002,0012): one fixed UUID-derived UID naming recon3d as the writer. */
#define R3D_IMPLEMENTATION_CLASS_UID "2.25.61262065476473825314314250847025212233"
/* (0002,0013), SH, at most 16 characters. */
#define R3D_IMPLEMENTATION_VERSION_NAME "RECON3D_0_1"

#define R3D_TS_EXPLICIT_LE "1.2.840.10008.1.2.1"

/* ---- UIDs ------------------------------------------------------------------ */

/* A new random UID "2.25.<decimal>" (at most 44 characters + NUL). */
r3d_status r3d_uid_new(char out[65], r3d_error *err);
/* The UID a 128-bit value stands for: "2.25." + its decimal form, with the
 * RFC 9562 version nibble set to version (4 or 8) and the variant bits to 10. */
void r3d_uid_from_128(const uint8_t v[16], int version, char out[65]);
/* 16 bytes from /dev/urandom. */
r3d_status r3d_random_bytes(void *out, size_t n, r3d_error *err);

/* SipHash-2-4 (Aumasson & Bernstein 2012) with a 16-byte key; outlen 8 or 16
 * (the 128-bit variant of the reference implementation). */
void r3d_siphash(const uint8_t key[16], const void *msg, size_t n, uint8_t *out, int outlen);

/* ---- data set builder -------------------------------------------------------- */

typedef struct r3d_dcm_ds r3d_dcm_ds; /* one data set or sequence item */

r3d_dcm_ds *r3d_dcm_ds_new(void);
void r3d_dcm_ds_free(r3d_dcm_ds *ds);

/* Every put replaces an element of the same tag. vr 0 = the dictionary's VR
 * (R3D_EARG if the dictionary has none). Values are copied. */

/* Text VRs (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT): s as given,
 * values separated by backslashes, padded by the writer. NULL or "" = an
 * empty (zero-length) value. Strings are UTF-8; the writer adds
 * SpecificCharacterSet "ISO_IR 192" when any text is not ASCII and the data
 * set has no (0008,0005) of its own. */
r3d_status r3d_dcm_ds_put_str(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const char *s,
                              r3d_error *err);
/* Text of exactly n bytes (may hold NULs or non-UTF-8 bytes copied from a
 * file in another character set); padded to even length like put_str. */
r3d_status r3d_dcm_ds_put_text(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const void *s, size_t n,
                               r3d_error *err);
/* Numbers: binary VRs (US SS UL SL UV SV FL FD, AT as group<<16|element)
 * encoded little endian; DS / IS written as text ("%.10g" / integer). */
r3d_status r3d_dcm_ds_put_nums(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const double *v, int n,
                               r3d_error *err);
r3d_status r3d_dcm_ds_put_u16(r3d_dcm_ds *ds, uint32_t tag, uint16_t v, r3d_error *err);
/* Raw value bytes, already little endian (OB OW OF OD OL OV UN, or any
 * binary VR). An odd length is padded with one zero byte. */
r3d_status r3d_dcm_ds_put_bytes(r3d_dcm_ds *ds, uint32_t tag, uint16_t vr, const void *b, size_t n,
                                r3d_error *err);
/* Encapsulated pixel data (PS3.5 §A.4): Basic Offset Table (may be empty)
 * and fragments, copied; written with undefined length, item per fragment
 * and a sequence delimiter. Needs an encapsulated transfer syntax in
 * r3d_dcm_write_opts. */
r3d_status r3d_dcm_ds_put_encapsulated(r3d_dcm_ds *ds, uint32_t tag, const uint8_t *bot,
                                       uint32_t bot_len, const uint8_t *const *frag,
                                       const uint32_t *frag_len, uint32_t n_frag, r3d_error *err);
/* A sequence (empty if new); returns 0 or fails with R3D_ENOMEM. */
r3d_status r3d_dcm_ds_put_seq(r3d_dcm_ds *ds, uint32_t tag, r3d_error *err);
/* Append an item to sequence tag (created if absent); the item is owned by
 * ds and stays valid until ds is freed. NULL on failure. */
r3d_dcm_ds *r3d_dcm_ds_add_item(r3d_dcm_ds *ds, uint32_t tag, r3d_error *err);
/* Remove tag; returns 1 if it was there. */
int r3d_dcm_ds_remove(r3d_dcm_ds *ds, uint32_t tag);
int r3d_dcm_ds_has(const r3d_dcm_ds *ds, uint32_t tag);
/* Number of elements at this level. */
size_t r3d_dcm_ds_count(const r3d_dcm_ds *ds);

/* Copy every element of src into dst (deep; an element of the same tag in
 * dst is replaced). */
r3d_status r3d_dcm_ds_merge(r3d_dcm_ds *dst, const r3d_dcm_ds *src, r3d_error *err);
/* The value bytes of a top-level non-sequence element as stored (padded to
 * even length), its length and VR; NULL when absent. */
const uint8_t *r3d_dcm_ds_value(const r3d_dcm_ds *ds, uint32_t tag, uint32_t *len, uint16_t *vr);

/* ---- writing ----------------------------------------------------------------- */

typedef struct r3d_dcm_write_opts {
    /* Transfer syntax for the meta header; NULL = explicit VR little
     * endian. Anything else must be an encapsulated syntax (the data set is
     * always explicit VR little endian). */
    const char *transfer_syntax;
} r3d_dcm_write_opts;
#define R3D_DCM_WRITE_OPTS_INIT {NULL}

/* The data set must hold SOPClassUID (0008,0016) and SOPInstanceUID
 * (0008,0018): they become the meta's MediaStorage UIDs. Group 0002 and
 * group-length elements in ds are ignored (the meta is ours). */
r3d_status r3d_dcm_write_mem(const r3d_dcm_ds *ds, const r3d_dcm_write_opts *opts, uint8_t **buf,
                             size_t *n, r3d_error *err);
/* Atomic: the file appears complete or not at all. */
r3d_status r3d_dcm_write_file(const r3d_dcm_ds *ds, const char *path,
                              const r3d_dcm_write_opts *opts, r3d_error *err);

/* ---- de-identification (PS3.15 Annex E) ------------------------------------------ */

typedef struct r3d_deid_opts {
    int retain_dates;      /* Retain Longitudinal Temporal Information Full Dates Option */
    int clean_descriptors; /* descriptors the Clean Descriptors Option lists are removed */
    int allow_burned_in;   /* BurnedInAnnotation YES: warn and go on instead of refusing */
    /* Retain Safe Private Option (PS3.15 E.3.10, code 113111): keep the
     * private attributes recon3d's own conversion reads and that hold no
     * identity - Siemens CSA image header and mosaic/diffusion fields,
     * Philips scale slope/intercept (see deid.c for the list, by private
     * creator) - so series that need them still convert identically. */
    int retain_safe_private;
} r3d_deid_opts;
#define R3D_DEID_OPTS_INIT {0, 0, 0, 0}

typedef struct r3d_deid r3d_deid; /* one run: UID key, report */

/* A run with a random 16-byte key (so replacement UIDs cannot be recomputed
 * from the originals by anyone without the key). */
r3d_deid *r3d_deid_new(const r3d_deid_opts *opts, r3d_error *err);
/* The same with a given key: reproducible output, for tests. */
r3d_deid *r3d_deid_new_keyed(const r3d_deid_opts *opts, const uint8_t key[16], r3d_error *err);
void r3d_deid_free(r3d_deid *d);

/* Replacement for a UID: the same input gives the same output within the
 * run; well-known DICOM UIDs (1.2.840.10008.*) are returned unchanged. */
void r3d_deid_uid(const r3d_deid *d, const char *uid, char out[65]);

/* De-identify one parsed file into a new data set (*out, caller frees) and
 * the transfer syntax to write it with (ts, NULL opts field = explicit LE).
 * Records what was done in the run's report under the name label.
 * Fails with R3D_EUNSUPPORTED when BurnedInAnnotation is YES and
 * allow_burned_in is off. */
r3d_status r3d_deid_dataset(r3d_deid *d, const r3d_dcm_file *in, const char *label,
                            r3d_dcm_ds **out, char ts[65], r3d_error *err);
/* r3d_deid_dataset + r3d_dcm_write_file. */
r3d_status r3d_deid_file(r3d_deid *d, const r3d_dcm_file *in, const char *label,
                         const char *out_path, r3d_error *err);
/* Record a data set from r3d_deid_dataset that the caller wrote itself
 * (label: its output name; ts: the transfer syntax it was written in). */
void r3d_deid_note_written(r3d_deid *d, const char *label, const char *ts);
/* Record a file that could not be de-identified (message without values). */
void r3d_deid_note_failure(r3d_deid *d, const char *label, const r3d_error *err);
/* Record a file that was skipped (not DICOM). */
void r3d_deid_note_skipped(r3d_deid *d, const char *label, const char *why);

/* The report as JSON text (malloc'ed): options, per file what was removed,
 * emptied, replaced by a dummy, remapped (UIDs) or kept on request, by tag
 * and keyword - never a value - and per attribute totals. */
char *r3d_deid_report_json(const r3d_deid *d);

/* Counts so far: files written, failures, skipped. */
void r3d_deid_counts(const r3d_deid *d, int *written, int *failed, int *skipped);

#ifdef __cplusplus
}
#endif
#endif
