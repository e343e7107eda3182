/* vmx/mmio.c, the vendor-neutral handler, compiled for SVM (svm/neutral.h). */
#include "svm/neutral.h"
#include "vmx/mmio.c"
