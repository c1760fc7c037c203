/* r3d/r3d.h - everything in libr3d. */
#ifndef R3D_R3D_H
#define R3D_R3D_H
#include "core.h"
#include "volume.h"
#include "nifti.h"
#include "dicom.h"
#include "input.h"
#include "mesh.h"
#include "image.h"
#include "seg.h"
#include "dicom_seg.h"
#include "store.h"
#include "analysis.h"
#endif
