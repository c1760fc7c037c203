/* structures.c - the anatomical structure registry: label value, name,
 * Simplified Chinese name, display colour and the SNOMED CT codes a DICOM
 * Segmentation carries for each structure (PS3.3 C.8.20.2: Segmented
 * Property Category / Type / Type Modifier, Anatomic Region).
 *
 * Values 1..117 and names are TotalSegmentator v2's "total" task
 * (totalsegmentator/map_to_binary.py, class_map["total"]), so our label maps
 * and TotalSegmentator's compare directly. Their codes and colours are those
 * of TotalSegmentator's own SNOMED mapping
 * (totalsegmentator/resources/totalsegmentator_snomed_mapping.csv), which is
 * what its DICOM SEG output carries; two of its code meanings are corrected
 * (the "Gluteus minius" typo) and none of its code values changed. Notes on
 * codes we took over but would choose differently are beside the entries.
 *
 * Values from 200 are ours (structures TotalSegmentator's "total" task does
 * not have). Their codes come from the same mapping where it has the concept
 * (lung_trachea_bronchia -> airway, lung_vessels -> pulmonary_vessels,
 * ribs), from DICOM PS3.16 context groups (CID 6111 Bronchus 955009,
 * CID 7151/4 Entire body 38266002) or from published code tables (Skin
 * structure 39937001, Mandible 91609006, Vertebral column 421060004, Main
 * bronchus 102297006, Nodule 27925004). Where no code could be verified for
 * the exact concept (lobar / segmental / sub-segmental bronchi) the nearest
 * parent concept (Bronchus) is used and the comment says so.
 *
 * Nodules: the k-th lung nodule of a study is value R3D_LABEL_NODULE_FIRST
 * + k - 1, "lung_nodule_<k>", "肺结节<k>", category Morphologically Altered
 * Structure (49755003), type Nodule (27925004), anatomic region Lung
 * (39607008), and a colour of its own (golden-angle hues, so neighbouring k
 * differ strongly). Those 1000 entries are built once, thread-safely, on
 * first use.
 *
 * Colours are unique across the fixed table and the nodules; the unit test
 * (tests/unit/test_structures.c) checks that, and that names and values are
 * unique and every code is complete.
 */
#include "r3d/seg.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCT(v, m) {v, "SCT", m}
#define NONE {"", "", ""}
#define ANAT SCT("123037004", "Anatomical Structure")
#define MORPH SCT("49755003", "Morphologically Altered Structure")
#define LEFT SCT("7771000", "Left")
#define RIGHT SCT("24028007", "Right")
#define LUNG SCT("39607008", "Lung")
#define BRONCHUS SCT("955009", "Bronchus")
#define SEGMENT SCT("72674008", "Segment of lung")

static const r3d_structure k_structures[] = {
    /* ---- TotalSegmentator v2 "total" (values 1..117) ------------------- */
    {1, "spleen", "脾", {50, 170, 60}, ANAT, SCT("78961009", "Spleen"), NONE, NONE, NONE},
    {2, "kidney_right", "右肾", {34, 102, 136}, ANAT, SCT("64033007", "Kidney"), RIGHT, NONE, NONE},
    {3, "kidney_left", "左肾", {46, 138, 184}, ANAT, SCT("64033007", "Kidney"), LEFT, NONE, NONE},
    {4, "gallbladder", "胆囊", {54, 216, 119},
     ANAT, SCT("28231008", "Gallbladder"), NONE, NONE, NONE},
    {5, "liver", "肝", {40, 140, 40}, ANAT, SCT("10200004", "Liver"), NONE, NONE, NONE},
    {6, "stomach", "胃", {180, 70, 160}, ANAT, SCT("69695003", "Stomach"), NONE, NONE, NONE},
    {7, "pancreas", "胰腺", {60, 150, 80}, ANAT, SCT("15776009", "Pancreas"), NONE, NONE, NONE},
    {8, "adrenal_gland_right", "右肾上腺", {178, 128, 26},
     ANAT, SCT("23451007", "Adrenal gland"), RIGHT, NONE, NONE},
    {9, "adrenal_gland_left", "左肾上腺", {241, 172, 34},
     ANAT, SCT("23451007", "Adrenal gland"), LEFT, NONE, NONE},
    {10, "lung_upper_lobe_left", "左肺上叶", {71, 232, 244},
     ANAT, SCT("45653009", "Upper lobe of lung"), LEFT, NONE, NONE},
    {11, "lung_lower_lobe_left", "左肺下叶", {34, 195, 207},
     ANAT, SCT("90572001", "Lower lobe of lung"), LEFT, NONE, NONE},
    {12, "lung_upper_lobe_right", "右肺上叶", {100, 218, 227},
     ANAT, SCT("45653009", "Upper lobe of lung"), RIGHT, NONE, NONE},
    {13, "lung_middle_lobe_right", "右肺中叶", {63, 181, 190},
     ANAT, SCT("72481006", "Middle lobe of right lung"), NONE, NONE, NONE},
    {14, "lung_lower_lobe_right", "右肺下叶", {26, 144, 153},
     ANAT, SCT("90572001", "Lower lobe of lung"), RIGHT, NONE, NONE},
    {15, "esophagus", "食管", {190, 90, 170}, ANAT, SCT("32849002", "Esophagus"), NONE, NONE, NONE},
    {16, "trachea", "气管", {0, 180, 200}, ANAT, SCT("44567001", "Trachea"), NONE, NONE, NONE},
    {17, "thyroid_gland", "甲状腺", {250, 210, 60},
     ANAT, SCT("69748006", "Thyroid gland"), NONE, NONE, NONE},
    {18, "small_bowel", "小肠", {160, 60, 180},
     ANAT, SCT("30315005", "Small Intestine"), NONE, NONE, NONE},
    {19, "duodenum", "十二指肠", {170, 80, 190}, ANAT, SCT("38848004", "Duodenum"), NONE, NONE, NONE},
    {20, "colon", "结肠", {150, 40, 170}, ANAT, SCT("71854001", "Colon"), NONE, NONE, NONE},
    {21, "urinary_bladder", "膀胱", {54, 94, 216},
     ANAT, SCT("89837001", "Urinary bladder"), NONE, NONE, NONE},
    {22, "prostate", "前列腺", {91, 253, 156}, ANAT, SCT("41216001", "Prostate"), NONE, NONE, NONE},
    {23, "kidney_cyst_left", "左肾囊肿", {83, 175, 221},
     MORPH, SCT("367643001", "Cyst"), NONE, SCT("64033007", "Kidney"), LEFT},
    {24, "kidney_cyst_right", "右肾囊肿", {71, 139, 173},
     MORPH, SCT("367643001", "Cyst"), NONE, SCT("64033007", "Kidney"), RIGHT},
    {25, "sacrum", "骶骨", {100, 216, 54}, ANAT, SCT("54735007", "Sacrum"), NONE, NONE, NONE},
    {26, "vertebrae_S1", "第1骶椎", {205, 180, 145},
     ANAT, SCT("65985001", "S1 vertebra"), NONE, NONE, NONE},
    {27, "vertebrae_L5", "第5腰椎", {137, 112, 77},
     ANAT, SCT("49668003", "L5 vertebra"), NONE, NONE, NONE},
    {28, "vertebrae_L4", "第4腰椎", {100, 75, 40},
     ANAT, SCT("11994002", "L4 vertebra"), NONE, NONE, NONE},
    {29, "vertebrae_L3", "第3腰椎", {63, 38, 3},
     ANAT, SCT("36470004", "L3 vertebra"), NONE, NONE, NONE},
    {30, "vertebrae_L2", "第2腰椎", {26, 1, 222},
     ANAT, SCT("14293000", "L2 vertebra"), NONE, NONE, NONE},
    {31, "vertebrae_L1", "第1腰椎", {245, 220, 185},
     ANAT, SCT("66794005", "L1 vertebra"), NONE, NONE, NONE},
    {32, "vertebrae_T12", "第12胸椎", {69, 44, 9},
     ANAT, SCT("23215003", "T12 vertebra"), NONE, NONE, NONE},
    {33, "vertebrae_T11", "第11胸椎", {32, 7, 228},
     ANAT, SCT("12989004", "T11 vertebra"), NONE, NONE, NONE},
    {34, "vertebrae_T10", "第10胸椎", {251, 226, 191},
     ANAT, SCT("7610001", "T10 vertebra"), NONE, NONE, NONE},
    {35, "vertebrae_T9", "第9胸椎", {214, 189, 154},
     ANAT, SCT("82687006", "T9 vertebra"), NONE, NONE, NONE},
    {36, "vertebrae_T8", "第8胸椎", {177, 152, 117},
     ANAT, SCT("11068009", "T8 vertebra"), NONE, NONE, NONE},
    {37, "vertebrae_T7", "第7胸椎", {140, 115, 80},
     ANAT, SCT("62487009", "T7 vertebra"), NONE, NONE, NONE},
    {38, "vertebrae_T6", "第6胸椎", {103, 78, 43},
     ANAT, SCT("45296009", "T6 vertebra"), NONE, NONE, NONE},
    {39, "vertebrae_T5", "第5胸椎", {66, 41, 6},
     ANAT, SCT("56401006", "T5 vertebra"), NONE, NONE, NONE},
    {40, "vertebrae_T4", "第4胸椎", {29, 4, 225},
     ANAT, SCT("73071006", "T4 vertebra"), NONE, NONE, NONE},
    {41, "vertebrae_T3", "第3胸椎", {248, 223, 188},
     ANAT, SCT("1626008", "T3 vertebra"), NONE, NONE, NONE},
    {42, "vertebrae_T2", "第2胸椎", {211, 186, 151},
     ANAT, SCT("53733008", "T2 vertebra"), NONE, NONE, NONE},
    {43, "vertebrae_T1", "第1胸椎", {174, 149, 114},
     ANAT, SCT("64864005", "T1 vertebra"), NONE, NONE, NONE},
    {44, "vertebrae_C7", "第7颈椎", {208, 183, 148},
     ANAT, SCT("87391001", "C7 vertebra"), NONE, NONE, NONE},
    {45, "vertebrae_C6", "第6颈椎", {171, 146, 111},
     ANAT, SCT("36054005", "C6 vertebra"), NONE, NONE, NONE},
    {46, "vertebrae_C5", "第5颈椎", {134, 109, 74},
     ANAT, SCT("36978003", "C5 vertebra"), NONE, NONE, NONE},
    {47, "vertebrae_C4", "第4颈椎", {97, 72, 37},
     ANAT, SCT("5329002", "C4 vertebra"), NONE, NONE, NONE},
    {48, "vertebrae_C3", "第3颈椎", {60, 35, 0},
     ANAT, SCT("113205007", "C3 vertebra"), NONE, NONE, NONE},
    {49, "vertebrae_C2", "第2颈椎（枢椎）", {23, 254, 219},
     ANAT, SCT("39976000", "C2 vertebra"), NONE, NONE, NONE},
    {50, "vertebrae_C1", "第1颈椎（寰椎）", {242, 217, 182},
     ANAT, SCT("14806007", "C1 vertebra"), NONE, NONE, NONE},
    {51, "heart", "心脏", {180, 0, 40}, ANAT, SCT("80891009", "Heart"), NONE, NONE, NONE},
    {52, "aorta", "主动脉", {216, 108, 54}, ANAT, SCT("15825003", "Aorta"), NONE, NONE, NONE},
    {53, "pulmonary_vein", "肺静脉", {37, 107, 237},
     ANAT, SCT("122972007", "Pulmonary vein"), NONE, NONE, NONE},
    {54, "brachiocephalic_trunk", "头臂干", {190, 10, 10},
     ANAT, SCT("12691009", "Brachiocephalic artery"), NONE, NONE, NONE},
    {55, "subclavian_artery_right", "右锁骨下动脉", {162, 26, 26},
     ANAT, SCT("29700009", "Subclavian artery"), RIGHT, NONE, NONE},
    {56, "subclavian_artery_left", "左锁骨下动脉", {218, 34, 34},
     ANAT, SCT("29700009", "Subclavian artery"), LEFT, NONE, NONE},
    {57, "common_carotid_artery_right", "右颈总动脉", {170, 17, 17},
     ANAT, SCT("32062004", "Common carotid artery"), RIGHT, NONE, NONE},
    {58, "common_carotid_artery_left", "左颈总动脉", {230, 23, 23},
     ANAT, SCT("32062004", "Common carotid artery"), LEFT, NONE, NONE},
    {59, "brachiocephalic_vein_left", "左头臂静脉", {0, 92, 241},
     ANAT, SCT("8887007", "Brachiocephalic vein"), LEFT, NONE, NONE},
    {60, "brachiocephalic_vein_right", "右头臂静脉", {0, 68, 178},
     ANAT, SCT("8887007", "Brachiocephalic vein"), RIGHT, NONE, NONE},
    {61, "atrial_appendage_left", "左心耳", {68, 248, 62},
     ANAT, SCT("68786006", "Auricular appendage"), LEFT, NONE, NONE},
    {62, "superior_vena_cava", "上腔静脉", {74, 144, 18},
     ANAT, SCT("48345005", "Superior vena cava"), NONE, NONE, NONE},
    {63, "inferior_vena_cava", "下腔静脉", {0, 70, 200},
     ANAT, SCT("64131007", "Inferior vena cava"), NONE, NONE, NONE},
    {64, "portal_vein_and_splenic_vein", "门静脉和脾静脉", {0, 90, 220},
     ANAT, SCT("110765007", "Portal vein and splenic vein"), NONE, NONE, NONE},
    {65, "iliac_artery_left", "左髂总动脉", {218, 0, 0},
     ANAT, SCT("73634005", "Common iliac artery"), LEFT, NONE, NONE},
    {66, "iliac_artery_right", "右髂总动脉", {162, 0, 0},
     ANAT, SCT("73634005", "Common iliac artery"), RIGHT, NONE, NONE},
    {67, "iliac_vena_left", "左髂总静脉", {0, 92, 230},
     ANAT, SCT("46027005", "Common iliac vein"), LEFT, NONE, NONE},
    {68, "iliac_vena_right", "右髂总静脉", {0, 68, 170},
     ANAT, SCT("46027005", "Common iliac vein"), RIGHT, NONE, NONE},
    {69, "humerus_left", "左肱骨", {71, 62, 248}, ANAT, SCT("85050009", "Humerus"), LEFT, NONE, NONE},
    {70, "humerus_right", "右肱骨", {115, 46, 184},
     ANAT, SCT("85050009", "Humerus"), RIGHT, NONE, NONE},
    {71, "scapula_left", "左肩胛骨", {253, 230, 195},
     ANAT, SCT("79601000", "Scapula"), LEFT, NONE, NONE},
    {72, "scapula_right", "右肩胛骨", {187, 170, 144},
     ANAT, SCT("79601000", "Scapula"), RIGHT, NONE, NONE},
    {73, "clavicula_left", "左锁骨", {255, 236, 201},
     ANAT, SCT("51299004", "Clavicle"), LEFT, NONE, NONE},
    {74, "clavicula_right", "右锁骨", {191, 174, 149},
     ANAT, SCT("51299004", "Clavicle"), RIGHT, NONE, NONE},
    {75, "femur_left", "左股骨", {248, 212, 62}, ANAT, SCT("71341001", "Femur"), LEFT, NONE, NONE},
    {76, "femur_right", "右股骨", {46, 184, 60}, ANAT, SCT("71341001", "Femur"), RIGHT, NONE, NONE},
    {77, "hip_left", "左髋骨", {230, 248, 62}, ANAT, SCT("29836001", "Hip"), LEFT, NONE, NONE},
    {78, "hip_right", "右髋骨", {184, 46, 184}, ANAT, SCT("29836001", "Hip"), RIGHT, NONE, NONE},
    {79, "spinal_cord", "脊髓", {255, 215, 0}, ANAT, SCT("2748008", "Spinal cord"), NONE, NONE, NONE},
    {80, "gluteus_maximus_left", "左臀大肌", {253, 115, 34},
     ANAT, SCT("181674001", "Gluteus maximus muscle"), LEFT, NONE, NONE},
    {81, "gluteus_maximus_right", "右臀大肌", {187, 85, 26},
     ANAT, SCT("181674001", "Gluteus maximus muscle"), RIGHT, NONE, NONE},
    {82, "gluteus_medius_left", "左臀中肌", {255, 126, 46},
     ANAT, SCT("78333006", "Gluteus medius muscle"), LEFT, NONE, NONE},
    {83, "gluteus_medius_right", "右臀中肌", {196, 94, 34},
     ANAT, SCT("78333006", "Gluteus medius muscle"), RIGHT, NONE, NONE},
    {84, "gluteus_minimus_left", "左臀小肌", {255, 138, 57},
     ANAT, SCT("75297007", "Gluteus minimus muscle"), LEFT, NONE, NONE},
    {85, "gluteus_minimus_right", "右臀小肌", {204, 102, 42},
     ANAT, SCT("75297007", "Gluteus minimus muscle"), RIGHT, NONE, NONE},
    {86, "autochthon_left", "左背深肌（竖脊肌群）", {241, 126, 57},
     ANAT, SCT("244849004", "Deep muscle of back"), LEFT, NONE, NONE},
    {87, "autochthon_right", "右背深肌（竖脊肌群）", {178, 94, 42},
     ANAT, SCT("244849004", "Deep muscle of back"), RIGHT, NONE, NONE},
    {88, "iliopsoas_left", "左髂腰肌", {230, 115, 46},
     ANAT, SCT("68455001", "Iliopsoas muscle"), LEFT, NONE, NONE},
    {89, "iliopsoas_right", "右髂腰肌", {170, 85, 34},
     ANAT, SCT("68455001", "Iliopsoas muscle"), RIGHT, NONE, NONE},
    {90, "brain", "脑", {216, 54, 149}, ANAT, SCT("12738006", "Brain"), NONE, NONE, NONE},
    {91, "skull", "颅骨", {245, 225, 200}, ANAT, SCT("89546000", "Skull"), NONE, NONE, NONE},
    {92, "rib_left_1", "左第1肋", {214, 54, 216},
     ANAT, SCT("48535007", "First rib"), LEFT, NONE, NONE},
    {93, "rib_left_2", "左第2肋", {181, 54, 216},
     ANAT, SCT("78247007", "Second rib"), LEFT, NONE, NONE},
    {94, "rib_left_3", "左第3肋", {216, 54, 162},
     ANAT, SCT("25888004", "Third rib"), LEFT, NONE, NONE},
    {95, "rib_left_4", "左第4肋", {54, 121, 216},
     ANAT, SCT("25523003", "Fourth rib"), LEFT, NONE, NONE},
    {96, "rib_left_5", "左第5肋", {54, 216, 146},
     ANAT, SCT("15339008", "Fifth rib"), LEFT, NONE, NONE},
    {97, "rib_left_6", "左第6肋", {121, 216, 54},
     ANAT, SCT("59558009", "Sixth rib"), LEFT, NONE, NONE},
    {98, "rib_left_7", "左第7肋", {149, 54, 216},
     ANAT, SCT("24915002", "Seventh rib"), LEFT, NONE, NONE},
    {99, "rib_left_8", "左第8肋", {216, 81, 54}, ANAT, SCT("5953002", "Eighth rib"), LEFT, NONE, NONE},
    {100, "rib_left_9", "左第9肋", {216, 54, 167},
     ANAT, SCT("22565002", "Ninth rib"), LEFT, NONE, NONE},
    {101, "rib_left_10", "左第10肋", {54, 146, 216},
     ANAT, SCT("77644006", "Tenth rib"), LEFT, NONE, NONE},
    {102, "rib_left_11", "左第11肋", {158, 253, 91},
     ANAT, SCT("58830002", "Eleventh rib"), LEFT, NONE, NONE},
    {103, "rib_left_12", "左第12肋", {216, 54, 86},
     ANAT, SCT("43993008", "Twelfth rib"), LEFT, NONE, NONE},
    {104, "rib_right_1", "右第1肋", {91, 158, 253},
     ANAT, SCT("48535007", "First rib"), RIGHT, NONE, NONE},
    {105, "rib_right_2", "右第2肋", {211, 216, 54},
     ANAT, SCT("78247007", "Second rib"), RIGHT, NONE, NONE},
    {106, "rib_right_3", "右第3肋", {216, 54, 59},
     ANAT, SCT("25888004", "Third rib"), RIGHT, NONE, NONE},
    {107, "rib_right_4", "右第4肋", {216, 54, 67},
     ANAT, SCT("25523003", "Fourth rib"), RIGHT, NONE, NONE},
    {108, "rib_right_5", "右第5肋", {157, 216, 54},
     ANAT, SCT("15339008", "Fifth rib"), RIGHT, NONE, NONE},
    {109, "rib_right_6", "右第6肋", {216, 54, 189},
     ANAT, SCT("59558009", "Sixth rib"), RIGHT, NONE, NONE},
    {110, "rib_right_7", "右第7肋", {216, 54, 132},
     ANAT, SCT("24915002", "Seventh rib"), RIGHT, NONE, NONE},
    {111, "rib_right_8", "右第8肋", {216, 203, 54},
     ANAT, SCT("5953002", "Eighth rib"), RIGHT, NONE, NONE},
    {112, "rib_right_9", "右第9肋", {216, 197, 54},
     ANAT, SCT("22565002", "Ninth rib"), RIGHT, NONE, NONE},
    {113, "rib_right_10", "右第10肋", {216, 159, 54},
     ANAT, SCT("77644006", "Tenth rib"), RIGHT, NONE, NONE},
    {114, "rib_right_11", "右第11肋", {54, 135, 216},
     ANAT, SCT("58830002", "Eleventh rib"), RIGHT, NONE, NONE},
    {115, "rib_right_12", "右第12肋", {181, 216, 54},
     ANAT, SCT("43993008", "Twelfth rib"), RIGHT, NONE, NONE},
    {116, "sternum", "胸骨", {215, 195, 165}, ANAT, SCT("56873002", "Sternum"), NONE, NONE, NONE},
    {117, "costal_cartilages", "肋软骨", {250, 220, 190},
     ANAT, SCT("50016007", "Costal cartilage"), NONE, NONE, NONE},

    /* ---- ours, from 200 --------------------------------------------------- */
    {200, "body", "身体", {221, 172, 146}, ANAT, SCT("38266002", "Entire body"), NONE, NONE, NONE},
    /* Slicer's generic-anatomy skin colour. */
    {201, "skin", "皮肤", {177, 122, 101}, ANAT, SCT("39937001", "Skin"), NONE, NONE, NONE},
    {202, "lung_left", "左肺", {128, 208, 255}, ANAT, LUNG, LEFT, NONE, NONE},
    {203, "lung_right", "右肺", {88, 170, 230}, ANAT, LUNG, RIGHT, NONE, NONE},
    /* Both lungs before the left/right split. */
    {204, "lungs", "双肺", {150, 200, 235}, ANAT, LUNG, NONE, NONE, NONE},
    /* Trachea and bronchi as one tree = TotalSegmentator's
     * "lung_trachea_bronchia" (its lung_vessels task), code and colour. */
    {205, "airway", "气道（气管及支气管）", {37, 217, 237}, ANAT,
     SCT("110726009", "Trachea and bronchus"), NONE, NONE, NONE},
    /* The bronchial tree without the trachea. */
    {206, "bronchi", "支气管", {90, 230, 250}, ANAT, BRONCHUS, NONE, NONE, NONE},
    {207, "bronchus_main_left", "左主支气管", {60, 200, 250}, ANAT, SCT("102297006", "Main bronchus"),
     LEFT, NONE, NONE},
    {208, "bronchus_main_right", "右主支气管", {30, 160, 215}, ANAT, SCT("102297006", "Main bronchus"),
     RIGHT, NONE, NONE},
    /* No verified SNOMED CT concept for lobar, segmental and sub-segmental
     * bronchi as such: the parent concept Bronchus (955009), region Lung. */
    {209, "bronchi_lobar", "肺叶支气管", {120, 240, 230}, ANAT, BRONCHUS, NONE, LUNG, NONE},
    {210, "bronchi_segmental", "肺段支气管", {150, 250, 210}, ANAT, BRONCHUS, NONE, LUNG, NONE},
    {211, "bronchi_subsegmental", "亚段支气管", {185, 255, 200}, ANAT, BRONCHUS, NONE, LUNG, NONE},
    /* TotalSegmentator has it in its heartchambers_highres task, not "total". */
    {212, "pulmonary_artery", "肺动脉", {180, 0, 0}, ANAT, SCT("81040000", "Pulmonary artery"), NONE,
     NONE, NONE},
    /* = TotalSegmentator's "lung_vessels": Blood vessel, region Lung. */
    {213, "pulmonary_vessels", "肺血管", {0, 150, 190}, ANAT, SCT("59820001", "Blood vessel"), NONE,
     LUNG, NONE},
    /* Slicer's mandible colour. */
    {214, "mandible", "下颌骨", {222, 198, 101}, ANAT, SCT("91609006", "Mandible"), NONE, NONE, NONE},
    {215, "spine", "脊柱", {200, 170, 130}, ANAT, SCT("421060004", "Vertebral column"), NONE, NONE,
     NONE},
    /* TotalSegmentator's "ribs" group code and colour. */
    {216, "ribs", "肋骨", {230, 210, 180}, ANAT, SCT("113197003", "Rib"), NONE, NONE, NONE},
    /* Slicer's generic-anatomy bone colour. */
    {217, "bones", "骨骼", {241, 214, 145}, ANAT, SCT("272673000", "Bone"), NONE, NONE, NONE},
    /* Lung segments (bronchopulmonary segments, S1..S10; left S1+2 and
     * S7+8 joined as is usual), the territories of the segmental bronchi.
     * Only three have a SNOMED CT concept we could verify (DICOM CID 6127:
     * right S2, right S3, left S3); the others are the parent concept
     * Segment of lung (72674008, CID 6110) with laterality, and their lobe
     * as anatomic region. */
    {220, "lung_segment_right_s1", "右肺上叶尖段", {120, 220, 235}, ANAT, SEGMENT, RIGHT,
     SCT("45653009", "Upper lobe of lung"), RIGHT},
    {221, "lung_segment_right_s2", "右肺上叶后段", {85, 200, 215},
     ANAT, SCT("3236000", "Posterior segment of right upper lobe"), NONE,
     NONE, NONE},
    {222, "lung_segment_right_s3", "右肺上叶前段", {150, 235, 245},
     ANAT, SCT("39743006", "Anterior segment of right upper lobe"), NONE,
     NONE, NONE},
    {223, "lung_segment_right_s4", "右肺中叶外侧段", {95, 165, 200}, ANAT, SEGMENT, RIGHT,
     SCT("72481006", "Middle lobe of right lung"), NONE},
    {224, "lung_segment_right_s5", "右肺中叶内侧段", {45, 140, 180}, ANAT, SEGMENT, RIGHT,
     SCT("72481006", "Middle lobe of right lung"), NONE},
    {225, "lung_segment_right_s6", "右肺下叶背段", {30, 120, 140}, ANAT, SEGMENT, RIGHT,
     SCT("90572001", "Lower lobe of lung"), RIGHT},
    {226, "lung_segment_right_s7", "右肺下叶内基底段", {60, 150, 130}, ANAT, SEGMENT, RIGHT,
     SCT("90572001", "Lower lobe of lung"), RIGHT},
    {227, "lung_segment_right_s8", "右肺下叶前基底段", {20, 175, 165}, ANAT, SEGMENT, RIGHT,
     SCT("90572001", "Lower lobe of lung"), RIGHT},
    {228, "lung_segment_right_s9", "右肺下叶外基底段", {90, 190, 170}, ANAT, SEGMENT, RIGHT,
     SCT("90572001", "Lower lobe of lung"), RIGHT},
    {229, "lung_segment_right_s10", "右肺下叶后基底段", {10, 100, 110}, ANAT, SEGMENT, RIGHT,
     SCT("90572001", "Lower lobe of lung"), RIGHT},
    {230, "lung_segment_left_s1_2", "左肺上叶尖后段", {110, 245, 200}, ANAT, SEGMENT, LEFT,
     SCT("45653009", "Upper lobe of lung"), LEFT},
    {231, "lung_segment_left_s3", "左肺上叶前段", {60, 225, 255},
     ANAT, SCT("22270008", "Anterior segment of left upper lobe"), NONE,
     NONE, NONE},
    {232, "lung_segment_left_s4", "左肺上叶上舌段", {170, 230, 255}, ANAT, SEGMENT, LEFT,
     SCT("45653009", "Upper lobe of lung"), LEFT},
    {233, "lung_segment_left_s5", "左肺上叶下舌段", {130, 190, 250}, ANAT, SEGMENT, LEFT,
     SCT("45653009", "Upper lobe of lung"), LEFT},
    {234, "lung_segment_left_s6", "左肺下叶背段", {50, 180, 230}, ANAT, SEGMENT, LEFT,
     SCT("90572001", "Lower lobe of lung"), LEFT},
    {235, "lung_segment_left_s7_8", "左肺下叶内前基底段", {25, 150, 210}, ANAT, SEGMENT, LEFT,
     SCT("90572001", "Lower lobe of lung"), LEFT},
    {236, "lung_segment_left_s9", "左肺下叶外基底段", {70, 130, 230}, ANAT, SEGMENT, LEFT,
     SCT("90572001", "Lower lobe of lung"), LEFT},
    {237, "lung_segment_left_s10", "左肺下叶后基底段", {40, 110, 200}, ANAT, SEGMENT, LEFT,
     SCT("90572001", "Lower lobe of lung"), LEFT},
};

#define N_FIXED ((int)(sizeof k_structures / sizeof k_structures[0]))
#define N_NODULES (R3D_LABEL_NODULE_MAX - R3D_LABEL_NODULE_FIRST + 1)

/* TotalSegmentator names of structures we hold under another name. */
static const struct {
    const char *alias, *name;
} k_aliases[] = {
    {"lung_trachea_bronchia", "airway"},
    {"lung_vessels", "pulmonary_vessels"},
};

/* ---- nodules: built once ------------------------------------------------ */

static r3d_structure g_nodules[N_NODULES];
static char g_nodule_names[N_NODULES][24];
static char g_nodule_names_zh[N_NODULES][24];
static pthread_once_t g_nodules_once = PTHREAD_ONCE_INIT;

/* HSV (h in [0,1)) to 8-bit RGB. */
static void hsv_rgb(double h, double s, double v, uint8_t rgb[3])
{
    double h6 = h * 6.0;
    int i = (int)floor(h6) % 6;
    double f = h6 - floor(h6);
    double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double r, g, b;
    switch (i) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    rgb[0] = (uint8_t)lround(r * 255);
    rgb[1] = (uint8_t)lround(g * 255);
    rgb[2] = (uint8_t)lround(b * 255);
}

static int colour_taken(const uint8_t rgb[3], int n_nodules)
{
    for (int i = 0; i < N_FIXED; i++)
        if (!memcmp(k_structures[i].rgb, rgb, 3))
            return 1;
    for (int i = 0; i < n_nodules; i++)
        if (!memcmp(g_nodules[i].rgb, rgb, 3))
            return 1;
    return 0;
}

static void build_nodules(void)
{
    const r3d_code cat = MORPH, type = SCT("27925004", "Nodule"), lung = LUNG, none = NONE;
    /* Golden-angle hues from yellow; saturation and value step through a
     * few levels so 1000 colours stay apart, and a colour already taken is
     * skipped (the loop ends: there are far more candidate colours than
     * the 1000 + N_FIXED that can be taken). */
    int step = 0;
    for (int k = 0; k < N_NODULES; k++) {
        uint8_t rgb[3];
        do {
            double h = fmod(1.0 / 6.0 + step * 0.6180339887498949, 1.0);
            double s = 0.95 - 0.2 * (step % 3);
            double v = 1.0 - 0.15 * ((step / 3) % 3);
            hsv_rgb(h, s, v, rgb);
            step++;
        } while (colour_taken(rgb, k));
        r3d_structure *n = &g_nodules[k];
        snprintf(g_nodule_names[k], sizeof g_nodule_names[k], "lung_nodule_%d", k + 1);
        snprintf(g_nodule_names_zh[k], sizeof g_nodule_names_zh[k], "肺结节%d", k + 1);
        n->value = (uint16_t)(R3D_LABEL_NODULE_FIRST + k);
        n->name = g_nodule_names[k];
        n->name_zh = g_nodule_names_zh[k];
        memcpy(n->rgb, rgb, 3);
        n->category = cat;
        n->type = type;
        n->modifier = none;
        n->region = lung;
        n->region_modifier = none;
    }
}

static const r3d_structure *nodule(int k) /* k from 1 */
{
    pthread_once(&g_nodules_once, build_nodules);
    return &g_nodules[k - 1];
}

/* ---- lookups ---------------------------------------------------------------- */

int r3d_structure_count(void)
{
    return N_FIXED;
}

const r3d_structure *r3d_structure_at(int i)
{
    return i >= 0 && i < N_FIXED ? &k_structures[i] : NULL;
}

const r3d_structure *r3d_structure_by_value(uint16_t value)
{
    if (value >= R3D_LABEL_NODULE_FIRST && value <= R3D_LABEL_NODULE_MAX)
        return nodule(value - R3D_LABEL_NODULE_FIRST + 1);
    /* The table is in value order: binary search. */
    int lo = 0, hi = N_FIXED - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (k_structures[mid].value == value)
            return &k_structures[mid];
        if (k_structures[mid].value < value)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const r3d_structure *r3d_structure_find(const char *name)
{
    if (!name)
        return NULL;
    static const char prefix[] = "lung_nodule_";
    if (!strncmp(name, prefix, sizeof prefix - 1)) {
        const char *d = name + sizeof prefix - 1;
        if (*d < '1' || *d > '9')
            return NULL;
        int k = 0;
        for (; *d >= '0' && *d <= '9'; d++) {
            k = k * 10 + (*d - '0');
            if (k > N_NODULES)
                return NULL;
        }
        return *d ? NULL : nodule(k);
    }
    for (size_t i = 0; i < sizeof k_aliases / sizeof k_aliases[0]; i++)
        if (!strcmp(name, k_aliases[i].alias))
            name = k_aliases[i].name;
    for (int i = 0; i < N_FIXED; i++)
        if (!strcmp(k_structures[i].name, name))
            return &k_structures[i];
    return NULL;
}

void r3d_structure_label(const r3d_structure *s, r3d_label *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    out->value = s->value;
    snprintf(out->name, sizeof out->name, "%s", s->name);
    snprintf(out->name_zh, sizeof out->name_zh, "%s", s->name_zh);
    memcpy(out->rgb, s->rgb, 3);
}
