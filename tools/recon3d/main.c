#include "r3d/r3d.h"
#include <stdio.h>
int main(void) { printf("recon3d %s\n", r3d_version()); return 0; }
